// Package eventstore is the PostgreSQL event log: append with optimistic
// concurrency, reservations and command idempotency; reading a stream or the
// global log without ever skipping a late commit; catch-up-then-live
// subscriptions; the per-stream hash chain and its verification.
package eventstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
)

// StreamID names one stream: "<category>-<id>", e.g. "account-0190…".
type StreamID string

// Category is the part of the stream id before the first '-' ("account").
func (s StreamID) Category() string {
	c, _, _ := strings.Cut(string(s), "-")
	return c
}

// Validate reports whether s has the "<category>-<id>" form.
func (s StreamID) Validate() error {
	c, id, ok := strings.Cut(string(s), "-")
	if !ok || c == "" || id == "" || len(s) > 200 || strings.IndexFunc(string(s), unicode.IsControl) >= 0 {
		return fmt.Errorf("eventstore: stream id %q is not of the form <category>-<id>", string(s))
	}
	return nil
}

// ActorKind says who caused an event (AUD-1).
type ActorKind string

// The kinds of actor an event can record.
const (
	ActorCustomer ActorKind = "customer"
	ActorAgent    ActorKind = "agent"
	ActorSystem   ActorKind = "system"
)

// Metadata is what every event records besides its payload (AUD-1). The
// clock time and the schema version are columns of their own.
type Metadata struct {
	ActorKind     ActorKind `json:"actor_kind"`
	ActorID       string    `json:"actor_id,omitempty"`
	Reason        string    `json:"reason,omitempty"`   // an agent's reason (AGT-1)
	LogCode       string    `json:"log_code,omitempty"` // an agent's log code (CNV-4)
	CommandID     string    `json:"command_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
}

func (m Metadata) validate() error {
	switch m.ActorKind {
	case ActorCustomer, ActorSystem:
	case ActorAgent:
		if m.ActorID == "" || m.Reason == "" {
			return fmt.Errorf("metadata: an agent's event needs actor_id and reason (AGT-1)")
		}
	default:
		return fmt.Errorf("metadata: actor_kind %q is not customer, agent or system (AUD-1)", m.ActorKind)
	}
	return nil
}

// EventData is an event about to be appended.
type EventData struct {
	// ID is the event id; a zero value gets a fresh UUIDv7 on append.
	ID uuid.UUID
	// Type is the stable event type name, e.g. "subscription.renewed".
	Type string
	// SchemaVersion is the version of Data's shape; 0 means 1.
	SchemaVersion int
	// Data is the JSON payload.
	Data json.RawMessage
	// Metadata is merged over AppendOptions.Metadata (its non-empty fields win).
	Metadata Metadata
	// Personal, when set, names the fields of Data that the store encrypts
	// under the data subject's key (AUD-5).
	Personal *PersonalData
}

// RecordedEvent is an event as stored in the log.
type RecordedEvent struct {
	Position      int64           // global position (unique, increasing in insert order)
	TransactionID uint64          // the writing transaction's id (xid8)
	StreamID      StreamID        // the stream it belongs to
	Version       int64           // its version in the stream, from 1 with no gap
	ID            uuid.UUID       // the event id
	Type          string          // the event type name
	SchemaVersion int             // the version of Data's shape as stored
	Data          json.RawMessage // the payload, personal fields decrypted or erased (AUD-5)
	Metadata      Metadata        // actor, reason, command/causation/correlation ids
	RecordedAt    time.Time       // the engine clock's time of the append (UTC, microseconds)
	Hash          []byte          // SHA-256 link of the stream's hash chain (AUD-3)
}

// Checkpoint is a reader's place in the global log: the (transaction id,
// position) pair of the last event it has seen. The zero value is the start.
type Checkpoint struct {
	TransactionID uint64
	Position      int64
}

// Reached reports whether a reader at c has seen every event up to and
// including the one at target.
func (c Checkpoint) Reached(target Checkpoint) bool {
	if c.TransactionID != target.TransactionID {
		return c.TransactionID > target.TransactionID
	}
	return c.Position >= target.Position
}

// Of returns the checkpoint just after e.
func Of(e RecordedEvent) Checkpoint {
	return Checkpoint{TransactionID: e.TransactionID, Position: e.Position}
}
