// Package api is the engine's HTTP server: the operational endpoints
// (/healthz, /readyz, /metrics) today, the /v1 JSON API as later issues add
// it. Every route goes through the same middleware, which logs the request
// with log/slog and counts it in Prometheus metrics by route pattern, and
// every error answers RFC 9457 application/problem+json.
package api
