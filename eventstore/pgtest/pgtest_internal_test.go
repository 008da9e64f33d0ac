package pgtest

import (
	"slices"
	"testing"
)

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/t_1?sslmode=disable"},
		{"postgresql://h/x?dbname=y", "postgresql://h/t_1"},
		{"postgres://h", "postgres://h/t_1"},
		{"postgres://postgres@/postgres?host=%2Ftmp&port=5440&sslmode=disable", "postgres://postgres@/t_1?host=%2Ftmp&port=5440&sslmode=disable"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=t_1"},
	} {
		if got := withDatabase(tc.in, "t_1"); got != tc.want {
			t.Errorf("withDatabase(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The machine's own server is tried over its Unix sockets before TCP, as
// postgres before the current user.
func TestLocalCandidates_SocketsBeforeTCP(t *testing.T) {
	got := localCandidates()
	want := []string{
		"postgres://postgres@/postgres?host=%2Fvar%2Frun%2Fpostgresql&port=5432&sslmode=disable",
		"postgres://postgres@/postgres?host=%2Ftmp&port=5432&sslmode=disable",
		"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
	}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Errorf("localCandidates() = %q, want it to begin with %q", got, want)
	}
	if len(got) != len(want) && len(got) != 2*len(want) {
		t.Errorf("localCandidates() = %q: want the same three for the current user, if not postgres", got)
	}
}
