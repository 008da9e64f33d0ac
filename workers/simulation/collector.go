package simulation

import (
	"os"
	"runtime/debug"

	"github.com/subs-engine/subs/eventstore/machine"
)

// Collector settings of the year (collectLessOften).
const (
	gcPercent = 1000
	// The heap may grow to a third of the machine's memory (memoryShare),
	// and to minMemoryLimit at least, also where that memory is unknown.
	memoryShare    = 3
	minMemoryLimit = 4 << 30
)

// collectLessOften sets the Go collector's target to gcPercent, its heap
// held under heapLimit of the machine's memory, unless the process was
// given GOGC or GOMEMLIMIT, and returns the function that puts the
// process's settings back. The year keeps every customer's state in memory
// several times over (the command handlers', the read models'; about 0.9 GB
// live at 100,000 customers) and allocates some 230 MB/s as it goes: at the
// default target (GOGC=100) collecting took 31% of the process's CPU at
// 100,000 customers. Under a 4 GiB limit the collector still ran every 3 GB
// allocated, 55 times in that year, for 44 s of CPU, 25 s of them in idle
// workers that took the cores from the database server; with the heap
// allowed 8 GiB (a third of a 24 GB machine) 21 times, for 17 s (day 16).
func collectLessOften() (restore func()) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	percent, limit := debug.SetGCPercent(gcPercent), debug.SetMemoryLimit(heapLimit(machine.Memory()))
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// heapLimit is the year's memory limit on a machine with memory bytes
// (0: unknown).
func heapLimit(memory uint64) int64 {
	return max(minMemoryLimit, int64(min(memory/memoryShare, 1<<62)))
}
