package eventstore

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// notifier wakes live subscribers after appends commit: those of this
// process at once, through a channel, and those of other processes through
// NOTIFY on notifyChannel, sent outside the append's transaction and at most
// once per remoteInterval however many appends commit meanwhile. (A NOTIFY
// inside the append would hold a cluster-wide lock through the commit's WAL
// flush and serialize all appends.) Subscribers poll as well, so a lost
// notification costs latency, never an event.
type notifier struct {
	pool  *pgxpool.Pool
	local broadcast // told at each append

	mu      sync.Mutex
	sending bool // a sender goroutine is running
	dirty   bool // an append committed since the last NOTIFY
}

// remoteInterval bounds how often this process sends NOTIFY.
const remoteInterval = 5 * time.Millisecond

func newNotifier(pool *pgxpool.Pool) *notifier {
	return &notifier{pool: pool}
}

// wait returns a channel closed at the next append of this process.
func (n *notifier) wait() <-chan struct{} { return n.local.wait() }

// appended wakes this process's subscribers and has the others woken.
func (n *notifier) appended() {
	n.local.tell()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sending {
		n.dirty = true
		return
	}
	n.sending = true
	go n.sendRemote()
}

// sendRemote sends NOTIFY until no append committed since the last one; it
// ends by itself, so it needs no shutdown.
func (n *notifier) sendRemote() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		// An error only delays other processes until their next poll.
		_, _ = n.pool.Exec(ctx, "SELECT pg_notify($1, '')", notifyChannel)
		cancel()
		time.Sleep(remoteInterval)
		n.mu.Lock()
		if !n.dirty {
			n.sending = false
			n.mu.Unlock()
			return
		}
		n.dirty = false
		n.mu.Unlock()
	}
}

// broadcast tells whoever waits that something happened, as often as it
// happens. The zero value is ready.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{} // closed and replaced at each tell; nil: none waits
}

// wait returns a channel closed at the next tell.
func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// tell wakes the waiters.
func (b *broadcast) tell() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
