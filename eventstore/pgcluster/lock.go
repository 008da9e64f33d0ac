package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockDir takes an exclusive lock on "<dir>.lock", beside the data directory
// (inside it, the file would make initdb refuse a non-empty directory). It
// serializes init, start and stop between processes: parallel test binaries
// of one `go test ./...` all start the same test cluster. The lock is
// released by the returned function, or by the kernel if we die.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	path := dir + ".lock"
	// Read-only is enough for flock, and lets any user open a lock file
	// that another user created.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: lock %s: %w", path, err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("pgcluster: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("pgcluster: waiting for another process to finish starting or stopping the cluster in %s (lock %s): %w", dir, path, ctx.Err())
		case <-tick.C:
		}
	}
}
