package machine

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Memory is the memory the process may use, in bytes: the machine's, or
// its control group's limit when lower (a container sees the host's memory
// in sysinfo). 0 when unknown.
func Memory() uint64 {
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		return 0
	}
	memory := uint64(info.Totalram) * uint64(info.Unit)
	for _, path := range []string{
		"/sys/fs/cgroup/memory.max",                   // cgroup v2
		"/sys/fs/cgroup/memory/memory.limit_in_bytes", // cgroup v1
	} {
		if limit, ok := readLimit(path); ok && limit < memory {
			memory = limit
		}
	}
	return memory
}

// readLimit reads a control group's memory limit; "max" (none) or an
// unreadable file is no limit.
func readLimit(path string) (uint64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	return n, err == nil && n > 0
}
