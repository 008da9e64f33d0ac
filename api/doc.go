// Package api is the engine's HTTP server: the operational endpoints
// (/healthz, /readyz, /metrics) and the /v1 JSON API (DESIGN §9). Every
// route goes through the same middleware, which limits the request body,
// logs the request with log/slog (method, route pattern, status, size,
// duration; never headers or bodies) and counts it in Prometheus metrics by
// route pattern, and every error answers RFC 9457 application/problem+json.
//
// # Conventions for an endpoint
//
// Register it with Server.Route, which puts the handler on the mux behind
// the authentication its Auth names (and, for POST, the Idempotency-Key
// middleware) and adds its operation to the OpenAPI document served at
// /v1/openapi.json. Describe the request and response bodies by Go type; a
// field without omitempty/omitzero is documented as required, so a request
// type's handler must refuse its absence. A route registered with plain
// Handle under /v1/ is undocumented: UndocumentedRoutes lists it, and the
// test of the full server asserts the list is empty.
//
//	s.Route(api.Route{
//		Method: http.MethodPost, Pattern: "/v1/accounts", Summary: "Sign up",
//		Auth: api.AuthNone, Request: signUpRequest{},
//		Responses: map[int]any{http.StatusCreated: accountView{}},
//		Handler: api.HandlerFunc(h.signUp),
//	})
//
// Write the handler as an api.HandlerFunc, which returns its error instead
// of writing it. Decode the body with DecodeJSON (strict: JSON content type,
// size limit, unknown/duplicate/miscased fields, type errors and trailing
// data are refused naming the field) and return its error as it is. Return
// domain errors as they are too: WriteError, the one mapping from error kind
// to status and problem type, answers them (FieldsError 400, UnauthorizedError
// 401, ForbiddenError 403, NotFoundError 404, ConflictError 409,
// RateLimitedError 429, *Problem as it is, anything else 500 with the cause
// logged and a generic detail shown). Write a success with WriteJSON.
//
//	func (h *handlers) signUp(w http.ResponseWriter, r *http.Request) error {
//		var in signUpRequest
//		if err := api.DecodeJSON(w, r, &in); err != nil {
//			return err
//		}
//		acct, err := h.accounts.SignUp(r.Context(), …)
//		if err != nil {
//			return err
//		}
//		return api.WriteJSON(w, http.StatusCreated, view(acct))
//	}
//
// On an AuthCustomer route, SessionFrom(r.Context()) returns the customer's
// Session (its AccountID); on an AuthAgent route, AgentFrom returns the
// agent. Read the time from Server.Clock, once per request. Sessions are
// made, revoked and checked through Server.Sessions. Passwords are hashed
// with package api/password under Server.Policy().Argon2id.
//
// Idempotency-Key: every POST honours the header without the handler doing
// anything. The first answer below 500 (except 429) is stored, its body
// encrypted under a key derived from ServerConfig.SecretKey, and replayed to
// a repeat of the same request with Idempotent-Replayed: true; the handler
// must therefore put nothing in a POST answer that may not be shown again
// to the same caller with the same request.
package api
