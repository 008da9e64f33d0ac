package pgtest

import "testing"

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/t_1?sslmode=disable"},
		{"postgresql://h/x?dbname=y", "postgresql://h/t_1"},
		{"postgres://h", "postgres://h/t_1"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=t_1"},
	} {
		if got := withDatabase(tc.in, "t_1"); got != tc.want {
			t.Errorf("withDatabase(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
