package eventstore

import (
	"encoding/json"
	"fmt"
	"sync"
)

// Upcaster rewrites one event type's payload from one schema version to the
// next. It must be pure: the same input always gives the same output.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

// Upcasters is the registry of upcasters: events are upcast as they are
// read, version by version, and never rewritten in the log (DESIGN §3). It
// is safe for concurrent use.
type Upcasters struct {
	mu sync.RWMutex
	m  map[upcastKey]Upcaster
}

type upcastKey struct {
	eventType string
	from      int
}

// NewUpcasters returns an empty registry.
func NewUpcasters() *Upcasters { return &Upcasters{m: map[upcastKey]Upcaster{}} }

// Register adds the upcaster from schema version from to from+1 of
// eventType. Registering the same step twice is a programming error and
// panics.
func (u *Upcasters) Register(eventType string, from int, f Upcaster) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := upcastKey{eventType, from}
	if _, dup := u.m[k]; dup {
		panic(fmt.Sprintf("eventstore: upcaster for %s v%d registered twice", eventType, from))
	}
	u.m[k] = f
}

// Upcast applies every registered step to e, from its stored schema version
// up, and returns it with the resulting data and version.
func (u *Upcasters) Upcast(e RecordedEvent) (RecordedEvent, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	for {
		f, ok := u.m[upcastKey{e.Type, e.SchemaVersion}]
		if !ok {
			return e, nil
		}
		data, err := f(e.Data)
		if err != nil {
			return e, fmt.Errorf("eventstore: upcast %s v%d (event %s): %w", e.Type, e.SchemaVersion, e.ID, err)
		}
		e.Data = data
		e.SchemaVersion++
	}
}
