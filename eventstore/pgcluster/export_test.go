package pgcluster

import "testing"

// SetSearchGlobs replaces the fallback places findBinaries looks in for the
// rest of the test, so a test can provoke NoBinariesError on a machine that
// has PostgreSQL.
func SetSearchGlobs(tb testing.TB, globs []string) {
	old := searchGlobs
	searchGlobs = globs
	tb.Cleanup(func() { searchGlobs = old })
}
