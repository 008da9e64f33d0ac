package eventstore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/subs-engine/subs/domain"
)

// EventTypes maps the event types of the domain to their stored form: the
// type name, the current schema version and the JSON payload. It is safe for
// concurrent use once built.
type EventTypes struct {
	mu    sync.RWMutex
	byTyp map[string]eventType
}

type eventType struct {
	schemaVersion int
	decode        func(json.RawMessage) (domain.Event, error)
	goType        reflect.Type
}

// NewEventTypes returns an empty codec.
func NewEventTypes() *EventTypes { return &EventTypes{byTyp: map[string]eventType{}} }

// Register adds the event types of events (zero values will do), whose
// payloads are now at schemaVersion; older versions are upcast by the
// store's Upcasters before decoding. Registering a name twice panics: it is
// a programming error.
func (t *EventTypes) Register(schemaVersion int, events ...domain.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range events {
		name := e.EventType()
		if _, dup := t.byTyp[name]; dup {
			panic(fmt.Sprintf("eventstore: event type %s registered twice", name))
		}
		goType := reflect.TypeOf(e)
		t.byTyp[name] = eventType{
			schemaVersion: max(schemaVersion, 1),
			goType:        goType,
			decode: func(data json.RawMessage) (domain.Event, error) {
				p := reflect.New(goType)
				if err := json.Unmarshal(data, p.Interface()); err != nil {
					return nil, err
				}
				return p.Elem().Interface().(domain.Event), nil
			},
		}
	}
}

// Encode returns e in its stored form; the personal fields of an event that
// implements domain.Personal are marked for the store to encrypt (AUD-5).
func (t *EventTypes) Encode(e domain.Event) (EventData, error) {
	t.mu.RLock()
	et, ok := t.byTyp[e.EventType()]
	t.mu.RUnlock()
	if !ok || et.goType != reflect.TypeOf(e) {
		return EventData{}, fmt.Errorf("eventstore: event type %s (%T) is not registered", e.EventType(), e)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return EventData{}, fmt.Errorf("eventstore: encode %s: %w", e.EventType(), err)
	}
	ed := EventData{Type: e.EventType(), SchemaVersion: et.schemaVersion, Data: data}
	if p, ok := e.(domain.Personal); ok {
		ed.Personal = &PersonalData{Subject: p.DataSubject(), Fields: p.PersonalFields()}
	}
	return ed, nil
}

// Decode returns the domain event r holds. r must be upcast to the current
// schema version (the store's reads do that).
func (t *EventTypes) Decode(r RecordedEvent) (domain.Event, error) {
	t.mu.RLock()
	et, ok := t.byTyp[r.Type]
	t.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("eventstore: event %s has unregistered type %s", r.ID, r.Type)
	}
	if r.SchemaVersion != et.schemaVersion {
		return nil, fmt.Errorf("eventstore: event %s: %s schema version %d, want %d: an upcaster is missing", r.ID, r.Type, r.SchemaVersion, et.schemaVersion)
	}
	e, err := et.decode(r.Data)
	if err != nil {
		return nil, fmt.Errorf("eventstore: decode event %s (%s): %w", r.ID, r.Type, err)
	}
	return e, nil
}
