package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

// observe logs each request and records it in the HTTP metrics. It logs the
// method, the route pattern (not the raw path, which may carry keys), the
// status, the size and the duration; never headers or bodies. Operational
// endpoints log at debug level so that probes do not flood the log.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		elapsed := time.Since(start)
		route := routeLabel(r)
		s.metrics.observe(r.Method, route, rec.status, elapsed)

		level := slog.LevelInfo
		switch {
		case rec.status >= 500:
			level = slog.LevelError
		case route == "/healthz" || route == "/readyz" || route == "/metrics":
			level = slog.LevelDebug
		}
		s.log.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", elapsed),
		)
	})
}

// recoverPanics turns a handler panic into a logged error and a 500 problem,
// so one bad request cannot take the process down.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "http handler panicked",
				slog.String("method", r.Method),
				slog.String("route", routeLabel(r)),
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())),
			)
			WriteProblem(w, Problem{
				Type:   ProblemTypeInternal,
				Title:  "Internal server error",
				Status: http.StatusInternalServerError,
				Detail: "The server failed to handle this request; try again later.",
			})
		}()
		next.ServeHTTP(w, r)
	})
}

// statusLabel formats an HTTP status code as a metric label.
func statusLabel(code int) string {
	return strconv.Itoa(code)
}

// requestEnv is what the package-level helpers (DecodeJSON, WriteError)
// need from the server that serves the request: they take no server
// argument, so the server puts it in the request's context.
type requestEnv struct {
	log     *slog.Logger
	maxBody int64
}

type envKey struct{}

// envFrom returns the serving server's environment, or defaults for a
// request that no Server handles (a handler tested on its own).
func envFrom(ctx context.Context) requestEnv {
	if e, ok := ctx.Value(envKey{}).(*requestEnv); ok {
		return *e
	}
	return requestEnv{log: slog.Default(), maxBody: DefaultMaxBodyBytes}
}

// withEnv puts the server's environment in the request's context and limits
// every request body to MaxBodyBytes, so that no handler can be made to read
// an unbounded body.
func (s *Server) withEnv(next http.Handler) http.Handler {
	env := &requestEnv{log: s.log, maxBody: s.cfg.MaxBodyBytes}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), envKey{}, env)))
	})
}
