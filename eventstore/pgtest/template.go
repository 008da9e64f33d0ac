package pgtest

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/eventstore"
)

// templateLockID serializes template builds across test processes. Advisory
// locks are per database; every process takes it in the server URL's
// database, which is the same for all of them.
const templateLockID int64 = 0x5ab5_7e57

// templateName names the template after the schema, so a change to the
// migrations gets a new template instead of a stale one.
func templateName() string {
	return "subs_tmpl_" + eventstore.MigrationsChecksum()[:16]
}

// template returns the name of the migrated template database, building it
// once per server and schema.
func (s *server) template(ctx context.Context) (string, error) {
	s.tmplOnce.Do(func() {
		s.tmpl = templateName()
		s.tmplErr = s.ensureTemplate(ctx, s.tmpl)
	})
	return s.tmpl, s.tmplErr
}

func (s *server) ensureTemplate(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(s.url), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Held until the deferred Close ends the session, which releases it.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockID); err != nil {
		return fmt.Errorf("wait for the template lock: %w", err)
	}

	// A template is complete once marked IS_TEMPLATE, the last step below;
	// an unmarked one was left by a process that died while migrating.
	var isTemplate bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&isTemplate)
	switch {
	case err == nil && isTemplate:
		return nil
	case err == nil:
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop the unfinished template %s: %w", name, err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("look for template %s: %w", name, err)
	}
	return buildTemplate(ctx, conn, s.url, name)
}

func buildTemplate(ctx context.Context, conn *pgx.Conn, serverURL, name string) error {
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return fmt.Errorf("create template %s: %w", name, err)
	}
	if err := migrate(ctx, withDatabase(serverURL, name)); err != nil {
		return fmt.Errorf("migrate template %s: %w", name, err)
	}
	// No connections from now on: CREATE DATABASE … TEMPLATE fails while
	// anyone is connected to the template.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("mark %s as a template: %w", name, err)
	}
	return nil
}

// migrate applies the migrations and closes its connections before
// returning, so that nobody stays connected to the template.
func migrate(ctx context.Context, dbURL string) error {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = eventstore.Migrate(ctx, pool)
	return err
}
