package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/eventstore/pgcluster"
)

// runPostgres is `subs postgres start|stop|status`: it manages the private
// cluster in <data-dir>/postgres.
func (m *Main) runPostgres(ctx context.Context) error {
	dir, err := filepath.Abs(m.Config.clusterDir())
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	switch m.args[0] {
	case "start":
		return m.postgresStart(ctx, dir)
	case "stop":
		return m.postgresStop(ctx, dir)
	default:
		return m.postgresStatus(ctx, dir)
	}
}

// postgresStart starts the cluster and leaves it running.
func (m *Main) postgresStart(ctx context.Context, dir string) error {
	cluster, err := pgcluster.Start(ctx, pgcluster.Config{Dir: dir, Logger: m.logger()})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(m.Stdout, "PostgreSQL is running in %s\nDATABASE_URL=%s\nStop it with: subs postgres stop --data-dir %s\n",
		dir, cluster.URL(), m.Config.DataDir)
	return err
}

// postgresStop stops the cluster, whoever started it.
func (m *Main) postgresStop(ctx context.Context, dir string) error {
	running, _ := clusterPort(dir)
	ctx, cancel := context.WithTimeout(ctx, stopClusterTimeout)
	defer cancel()
	if err := pgcluster.StopDir(ctx, dir); err != nil {
		return err
	}
	if running == 0 {
		_, err := fmt.Fprintf(m.Stdout, "no PostgreSQL cluster is running in %s\n", dir)
		return err
	}
	_, err := fmt.Fprintf(m.Stdout, "stopped the PostgreSQL cluster in %s\n", dir)
	return err
}

// postgresStatus reports whether dir holds a cluster and whether its server
// accepts connections.
func (m *Main) postgresStatus(ctx context.Context, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		_, err := fmt.Fprintf(m.Stdout, "no PostgreSQL cluster in %s (`subs postgres start` or `subs serve` creates one)\n", dir)
		return err
	}
	port, err := clusterPort(dir)
	if err != nil || port == 0 {
		_, err := fmt.Fprintf(m.Stdout, "the PostgreSQL cluster in %s is stopped\n", dir)
		return err
	}
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		_, err := fmt.Fprintf(m.Stdout, "the PostgreSQL cluster in %s has a server process on port %d that does not accept connections: %v\n", dir, port, err)
		return err
	}
	_ = conn.Close(ctx)
	_, err = fmt.Fprintf(m.Stdout, "the PostgreSQL cluster in %s is running on 127.0.0.1:%d\n", dir, port)
	return err
}

// clusterPort reads the port of the server running in dir from its
// postmaster.pid (line 4), or 0 when no server has the directory.
func clusterPort(dir string) (int, error) {
	f, err := os.Open(filepath.Join(dir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for line := 1; s.Scan(); line++ {
		if line == 4 {
			return strconv.Atoi(s.Text())
		}
	}
	return 0, fmt.Errorf("%s/postmaster.pid has no port line", dir)
}
