package machine

import (
	"syscall"
	"testing"
)

func TestMemory_AtMostTheMachinesAndKnown(t *testing.T) {
	t.Parallel()
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		t.Fatal(err)
	}
	total := uint64(info.Totalram) * uint64(info.Unit)
	if got := Memory(); got == 0 || got > total {
		t.Fatalf("Memory() = %d, want between 1 and the machine's %d", got, total)
	}
}
