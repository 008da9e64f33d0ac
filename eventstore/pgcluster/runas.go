package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// serviceUser is the system user the cluster runs as when we are root:
// PostgreSQL refuses to run as root, and distributions create this user.
const serviceUser = "postgres"

// account is who runs initdb, pg_ctl and postgres. The zero value means the
// current user, the case whenever we are not root.
type account struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32
}

func (a account) isCurrentUser() bool { return a.name == "" }

// clusterAccount picks the account the cluster runs as.
func clusterAccount() (account, error) {
	if os.Geteuid() != 0 {
		return account{}, nil
	}
	u, err := user.Lookup(serviceUser)
	if err != nil {
		return account{}, fmt.Errorf("pgcluster: running as root, and PostgreSQL refuses to run as root, "+
			"but there is no %q system user to run it as (%v): run as a non-root user, "+
			"create the user (useradd --system --home-dir /var/lib/postgresql %s), or set DATABASE_URL",
			serviceUser, err, serviceUser)
	}
	a := account{name: u.Username}
	if a.uid, err = parseID(u.Uid); err != nil {
		return account{}, err
	}
	if a.gid, err = parseID(u.Gid); err != nil {
		return account{}, err
	}
	gids, _ := u.GroupIds() // without them the primary group alone decides
	for _, g := range gids {
		if id, err := parseID(g); err == nil {
			a.groups = append(a.groups, id)
		}
	}
	return a, nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("pgcluster: user %s: id %q is not numeric", serviceUser, s)
	}
	return uint32(n), nil
}

// checkTraversable reports the first ancestor of dir that the account cannot
// enter. We do not chmod it ourselves: it may be someone's home directory.
func (a account) checkTraversable(dir string) error {
	if a.isCurrentUser() {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		if !a.canEnter(fi) {
			return fmt.Errorf("pgcluster: directory %s (mode %v) cannot be entered by user %s, "+
				"which runs the PostgreSQL cluster because PostgreSQL refuses to run as root: "+
				"put the data directory under a path %s can enter, or allow it with chmod o+x %s",
				p, fi.Mode().Perm(), a.name, a.name, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (a account) canEnter(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true // not a Unix file system: let PostgreSQL find out
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return perm&0o100 != 0
	case st.Gid == a.gid || slices.Contains(a.groups, st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// chown gives path to the account; a no-op for the current user.
func (a account) chown(path string) error {
	if a.isCurrentUser() {
		return nil
	}
	if err := os.Lchown(path, int(a.uid), int(a.gid)); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

// command builds a command that runs as the account, in its own session so
// that a Ctrl-C meant for us does not also stop the server under us: the
// server is stopped by Stop, or left running on purpose.
func (a account) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "/" // our working directory may be closed to the account
	cmd.Env = append(withoutPGEnv(os.Environ()), "LC_ALL=C", "LANG=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if !a.isCurrentUser() {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}
		cmd.Env = append(cmd.Env, "HOME=/", "USER="+a.name, "LOGNAME="+a.name)
	}
	return cmd
}

// withoutPGEnv drops PG* variables: PGDATA, PGPORT and friends would
// otherwise change which cluster pg_ctl talks to or how postgres starts.
func withoutPGEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		return strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "PG_BINDIR=")
	})
}

// run runs a command and returns its combined output, with the output in
// the error when it fails.
func run(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return string(out), fmt.Errorf("%s: %w: %s", filepath.Base(cmd.Path), err, strings.TrimSpace(string(out)))
		}
		return string(out), fmt.Errorf("%s: %w", filepath.Base(cmd.Path), err)
	}
	return string(out), nil
}
