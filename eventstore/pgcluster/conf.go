package pgcluster

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// managedConf is the file, included from postgresql.conf, that holds the
// settings Start owns. It is rewritten at each start, so the only state it
// carries over is the port.
const managedConf = "subs.conf"

const includeLine = "include '" + managedConf + "' # managed by subs (eventstore/pgcluster)"

// serverSettings are the settings Start writes into managedConf.
type serverSettings struct {
	port          int
	socketDir     string // the Unix socket's directory; "" for none
	noFsync       bool
	sharedBuffers uint64 // bytes
}

// The cluster serves the engine alone, as a dedicated server: its buffers
// take a quarter of the machine's memory (PostgreSQL's advice for one),
// from the server's default up to 8 GB; and it checkpoints every 15
// minutes or 4 GB of write-ahead log rather than every 5 minutes or 1 GB.
// A checkpoint writes out every changed page, and the first change of each
// page after it logs the whole page again: at the defaults the
// 100,000-customer year (workers/simulation) checkpointed 36 times and
// logged 2.2 million whole pages, and its backends wrote out 900,000 pages
// themselves for want of free buffers.
const (
	sharedBuffersShare = 4
	minSharedBuffers   = 128 << 20
	maxSharedBuffers   = 8 << 30
	maxWALSize         = "4GB"
	checkpointTimeout  = "15min"
)

// sharedBuffersFor is the buffers of a cluster on a machine with memory
// bytes (0: unknown, the minimum), in whole megabytes.
func sharedBuffersFor(memory uint64) uint64 {
	return min(max(memory/sharedBuffersShare, minSharedBuffers), maxSharedBuffers) >> 20 << 20
}

func (s serverSettings) render() []byte {
	var b bytes.Buffer
	b.WriteString("# Managed by subs (eventstore/pgcluster): rewritten at every start, edits are lost.\n")
	b.WriteString("# The port is kept from one start to the next unless another program took it.\n")
	fmt.Fprintf(&b, "port = %d\n", s.port)
	b.WriteString("listen_addresses = '127.0.0.1'\n")
	fmt.Fprintf(&b, "unix_socket_directories = '%s'\n", s.socketDir) // socketDirFor: nothing to escape
	b.WriteString("max_connections = 200\n")
	fmt.Fprintf(&b, "shared_buffers = %dMB\n", max(s.sharedBuffers, minSharedBuffers)>>20)
	b.WriteString("max_wal_size = " + maxWALSize + "\ncheckpoint_timeout = " + checkpointTimeout + "\n")
	if s.noFsync {
		// A throwaway test cluster: losing it in a machine crash costs
		// nothing, and waiting for the disk costs every test.
		b.WriteString("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
	} else {
		b.WriteString("fsync = on\n")
	}
	return b.Bytes()
}

// readPort returns the port recorded in dir's managed configuration, or 0.
func readPort(dir string) int {
	data, err := os.ReadFile(filepath.Join(dir, managedConf))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(key) == "port" {
			if n, err := strconv.Atoi(strings.TrimSpace(value)); err == nil {
				return n
			}
		}
	}
	return 0
}

// writeConf writes managedConf and makes sure postgresql.conf includes it.
func writeConf(dir string, s serverSettings, owner account) error {
	path := filepath.Join(dir, managedConf)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, s.render(), 0o600); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if err := owner.chown(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return ensureInclude(filepath.Join(dir, "postgresql.conf"))
}

func ensureInclude(conf string) error {
	data, err := os.ReadFile(conf)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if bytes.Contains(data, []byte(includeLine)) {
		return nil
	}
	// Appending keeps the file's owner; the last setting of a name wins.
	f, err := os.OpenFile(conf, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n%s\n", includeLine)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgcluster: %s: %w", conf, err)
	}
	return nil
}

// portFree reports whether nothing listens on 127.0.0.1:port.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// freePort asks the kernel for a port nothing listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// socketDirFor is the directory the Unix socket of a cluster in dir goes
// in: dir itself, which belongs to the server's account and to nobody else.
// It is "", no socket, and clients connect over TCP only, when the socket's
// path would be longer than a socket address holds (107 bytes on Linux,
// 103 on the BSDs), or when dir holds a character the setting would have
// to escape or would split on (a list of directories, trimmed).
func socketDirFor(dir string) string {
	const maxSocketPath = 103
	if len(filepath.Join(dir, ".s.PGSQL.65535")) > maxSocketPath ||
		strings.ContainsAny(dir, `\'",`) || strings.TrimSpace(dir) != dir {
		return ""
	}
	return dir
}

// runningServer reads the port of a running server, and the directory of
// its Unix socket ("" for none), from its postmaster.pid, whose fourth
// and fifth lines they are.
func runningServer(dir string) (port int, socketDir string, err error) {
	data, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, "", fmt.Errorf("pgcluster: read the running server's port: %w", err)
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 5 {
		return 0, "", fmt.Errorf("pgcluster: %s/postmaster.pid has no port and socket lines yet", dir)
	}
	port, err = strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, "", fmt.Errorf("pgcluster: %s/postmaster.pid: port %q: %w", dir, lines[3], err)
	}
	return port, strings.TrimSpace(lines[4]), nil
}
