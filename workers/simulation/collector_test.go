package simulation

import "testing"

func TestHeapLimit_AThirdOfTheMachineAndNeverBelowTheMinimum(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	for _, tc := range []struct {
		name   string
		memory uint64
		want   int64
	}{
		{"unknown", 0, minMemoryLimit},
		{"small machine", 8 * gib, minMemoryLimit},
		{"24 GiB", 24 * gib, 8 * gib},
		{"64 GiB", 64 * gib, 64 * gib / 3},
		{"beyond int64", ^uint64(0), 1 << 62},
	} {
		if got := heapLimit(tc.memory); got != tc.want {
			t.Errorf("%s: heapLimit(%d) = %d, want %d", tc.name, tc.memory, got, tc.want)
		}
	}
}
