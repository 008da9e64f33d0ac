package eventstore

import (
	"container/list"
	"sync"
)

// StateCache keeps the folded states of the streams a command handler, or a
// read model that folds an aggregate's events, handled last, each at its
// version, up to a size; the least recently used goes first. It is safe for
// concurrent use. A state held here is shared by every load that starts
// from it, which is sound because Evolve never changes the state it starts
// from (each aggregate's purity test).
type StateCache[S any] struct {
	mu      sync.Mutex
	size    int
	order   *list.List // of *cachedState[S], most recently used first
	streams map[StreamID]*list.Element
}

type cachedState[S any] struct {
	stream  StreamID
	state   S
	version int64
}

// NewStateCache returns a cache of size states at most (at least one).
func NewStateCache[S any](size int) *StateCache[S] {
	size = max(size, 1)
	return &StateCache[S]{size: size, order: list.New(), streams: make(map[StreamID]*list.Element, size)}
}

// Get returns the stream's cached state and its version.
func (c *StateCache[S]) Get(stream StreamID) (S, int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.streams[stream]
	if !ok {
		var zero S
		return zero, 0, false
	}
	c.order.MoveToFront(el)
	e := el.Value.(*cachedState[S])
	return e.state, e.version, true
}

// Put keeps the stream's state at version, unless a later version is kept
// already (two loads racing).
func (c *StateCache[S]) Put(stream StreamID, state S, version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.streams[stream]; ok {
		e := el.Value.(*cachedState[S])
		if version >= e.version {
			e.state, e.version = state, version
		}
		c.order.MoveToFront(el)
		return
	}
	c.streams[stream] = c.order.PushFront(&cachedState[S]{stream: stream, state: state, version: version})
	if c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.streams, oldest.Value.(*cachedState[S]).stream)
	}
}

// Forget drops the stream's state: the next load reads the stream.
func (c *StateCache[S]) Forget(stream StreamID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.streams[stream]; ok {
		c.order.Remove(el)
		delete(c.streams, stream)
	}
}

// Clear drops every state: the next loads read their streams.
func (c *StateCache[S]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	clear(c.streams)
}
