package pgcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// searchGlobs are the places PostgreSQL packages put their server binaries,
// tried after $PG_BINDIR, PATH and pg_config. Tests empty it to provoke a
// NoBinariesError on a machine that has PostgreSQL.
var searchGlobs = []string{
	"/usr/lib/postgresql/*/bin", // Debian, Ubuntu: one directory per major version
	"/usr/pgsql-*/bin",          // PGDG packages on Fedora, RHEL
	"/usr/local/pgsql/bin",      // built from source
	"/opt/homebrew/bin",         // Homebrew on Apple silicon
	"/usr/local/bin",            // Homebrew on Intel, hand-made links
}

// NoBinariesError is returned by Start and StopDir when neither initdb nor
// pg_ctl could be found. Searched lists where the search looked, in order.
// The fix is to install PostgreSQL's server package, to point $PG_BINDIR at
// its binaries, or to set DATABASE_URL to use an existing server instead.
type NoBinariesError struct {
	Searched []string
}

func (e *NoBinariesError) Error() string {
	return fmt.Sprintf("pgcluster: PostgreSQL server binaries (initdb, pg_ctl) not found; searched %s. "+
		"Install PostgreSQL (Debian/Ubuntu: apt-get install postgresql; Fedora/RHEL: dnf install postgresql-server; "+
		"macOS: brew install postgresql), set PG_BINDIR to the directory holding initdb and pg_ctl, "+
		"or set DATABASE_URL to use an existing PostgreSQL server",
		strings.Join(e.Searched, ", "))
}

// binaries are the absolute paths of the PostgreSQL programs a cluster needs.
// pg_ctl finds postgres in its own directory, so both come from one dir.
type binaries struct {
	dir    string
	initdb string
	pgCtl  string
}

// findBinaries looks for a directory holding both initdb and pg_ctl, in the
// order documented on NoBinariesError's callers.
func findBinaries() (binaries, error) {
	var searched []string
	try := func(dir string) (binaries, bool) {
		if dir == "" {
			return binaries{}, false
		}
		b := binaries{dir: dir, initdb: filepath.Join(dir, "initdb"), pgCtl: filepath.Join(dir, "pg_ctl")}
		return b, isExecutable(b.initdb) && isExecutable(b.pgCtl)
	}

	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		searched = append(searched, "$PG_BINDIR ("+dir+")")
		if b, ok := try(dir); ok {
			return b, nil
		}
	}

	searched = append(searched, "PATH")
	if p, err := exec.LookPath("initdb"); err == nil {
		// Resolve links such as /usr/local/bin/initdb -> .../15/bin/initdb so
		// that pg_ctl comes from the same installation.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if b, ok := try(filepath.Dir(p)); ok {
			return b, nil
		}
	}

	searched = append(searched, "pg_config --bindir")
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if b, ok := try(strings.TrimSpace(string(out))); ok {
			return b, nil
		}
	}

	for _, pattern := range searchGlobs {
		searched = append(searched, pattern)
		matches, _ := filepath.Glob(pattern)
		sortByVersionDesc(matches)
		for _, dir := range matches {
			if b, ok := try(dir); ok {
				return b, nil
			}
		}
	}
	return binaries{}, &NoBinariesError{Searched: searched}
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// sortByVersionDesc orders paths such as /usr/lib/postgresql/9.6/bin and
// /usr/lib/postgresql/15/bin highest version first, comparing the first
// path element that differs numerically where both are numbers.
func sortByVersionDesc(paths []string) {
	sort.SliceStable(paths, func(i, j int) bool {
		return versionLess(paths[j], paths[i])
	})
}

func versionLess(a, b string) bool {
	na, nb := leadingVersion(a), leadingVersion(b)
	for k := 0; k < len(na) && k < len(nb); k++ {
		if na[k] != nb[k] {
			return na[k] < nb[k]
		}
	}
	if len(na) != len(nb) {
		return len(na) < len(nb)
	}
	return a < b
}

// leadingVersion extracts the numbers of the first path element that
// contains a digit: "/usr/pgsql-16/bin" gives [16], ".../9.6/bin" [9 6].
func leadingVersion(path string) []int {
	for _, elem := range strings.Split(path, string(filepath.Separator)) {
		start := strings.IndexAny(elem, "0123456789")
		if start < 0 {
			continue
		}
		var nums []int
		for _, part := range strings.Split(elem[start:], ".") {
			n, err := strconv.Atoi(part)
			if err != nil {
				break
			}
			nums = append(nums, n)
		}
		return nums
	}
	return nil
}
