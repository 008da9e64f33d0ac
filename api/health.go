package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
)

// readiness is the body of /readyz: "ready", or "not_ready" with the reason.
type readiness struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// handleHealthz answers 200 while the process runs: liveness, no
// dependencies checked.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, readiness{Status: "ok"})
}

// handleReadyz answers 200 when the database answers and its schema is
// migrated, 503 with the reason otherwise.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if reason := s.notReadyReason(r.Context()); reason != "" {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "not_ready", Reason: reason})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, readiness{Status: "ready"})
}

// notReadyReason checks the database and returns why the engine cannot serve
// traffic, or "" when it can. Causes are logged, not shown to the caller.
func (s *Server) notReadyReason(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadinessTimeout)
	defer cancel()
	if err := s.cfg.DB.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "readiness: database ping failed", slog.Any("error", err))
		return "the database does not answer; check that PostgreSQL is running and reachable"
	}
	var migrated bool
	var version int
	err := s.cfg.DB.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&migrated)
	if err == nil && migrated {
		err = s.cfg.DB.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version)
	}
	if err != nil {
		s.log.WarnContext(ctx, "readiness: reading the schema version failed", slog.Any("error", err))
		return "the database's schema version cannot be read; check the server log"
	}
	want := max(s.cfg.SchemaVersion, 1)
	if !migrated || version < want {
		return fmt.Sprintf("the database schema is at version %d, this engine needs %d; run `subs migrate`", version, want)
	}
	return ""
}
