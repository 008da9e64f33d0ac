package main

import "testing"

func TestRedactDatabaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"postgres://subs@db:5432/subs?sslmode=disable", "postgres://subs@db:5432/subs?sslmode=disable"},
		{"postgres://subs:hunter2@db:5432/subs", "postgres://subs:xxxxx@db:5432/subs"},
		{"postgresql://subs:p%40ss@db/subs", "postgresql://subs:xxxxx@db/subs"},
		{"postgres://subs@db/subs?password=hunter2&sslmode=require", "postgres://subs@db/subs?password=xxxxx&sslmode=require"},
		{"host=db user=subs password=hunter2 dbname=subs", "host=db user=subs password=xxxxx dbname=subs"},
		{"host=db password = 'hun ter2' dbname=subs", "host=db password = xxxxx dbname=subs"},
		{"postgres://subs:hunter2@db:badport/subs", "(unparsable database URL, not shown)"},
	}
	for _, tt := range tests {
		if got := redactDatabaseURL(tt.in); got != tt.want {
			t.Errorf("redactDatabaseURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
