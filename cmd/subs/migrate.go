package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/subs-engine/subs/eventstore"
)

// migrateDatabase applies the embedded migrations the database lacks,
// repairs the log's transaction ids if it was restored into this cluster
// from another (DESIGN §4), and returns the versions applied and the schema
// version reached.
func (m *Main) migrateDatabase(ctx context.Context, db *database) (applied []int, version int, err error) {
	applied, err = eventstore.Migrate(ctx, db.pool)
	if err != nil {
		return applied, 0, fmt.Errorf("migrate the database %s: %w", db.shown, err)
	}
	repaired, err := eventstore.New(db.pool, eventstore.Config{}).RepairAfterRestore(ctx)
	if err != nil {
		return applied, 0, err
	}
	if repaired {
		m.logger().Warn("the event log was restored from another cluster: transaction ids renumbered and checkpoints re-seeded from positions")
	}
	version = eventstore.SchemaVersion()
	m.logger().Info("database migrated", slog.Any("applied", applied), slog.Int("schema_version", version))
	return applied, version, nil
}

// runMigrate is `subs migrate`: it applies the migrations and prints what it
// applied.
func (m *Main) runMigrate(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, m.Close()) }()
	db, err := m.openDatabase(ctx)
	if err != nil {
		return err
	}
	applied, version, err := m.migrateDatabase(ctx, db)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		_, err = fmt.Fprintf(m.Stdout, "database %s is up to date: schema version %d\n", db.shown, version)
		return err
	}
	_, err = fmt.Fprintf(m.Stdout, "database %s migrated to schema version %d: applied %s\n", db.shown, version, joinInts(applied))
	return err
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
