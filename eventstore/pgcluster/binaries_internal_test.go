package pgcluster

import (
	"slices"
	"testing"
)

func TestSortByVersionDesc(t *testing.T) {
	got := []string{
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/16/bin",
	}
	sortByVersionDesc(got)
	want := []string{
		"/usr/lib/postgresql/16/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.6/bin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("sortByVersionDesc = %v, want %v", got, want)
	}
}
