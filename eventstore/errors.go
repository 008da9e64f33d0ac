package eventstore

import "fmt"

// ConflictError is returned by Append when the stream is not at the version
// the caller expected: another command appended first (optimistic
// concurrency). Nothing was written; reload the stream and decide again.
type ConflictError struct {
	Stream   StreamID
	Expected ExpectedVersion
	Actual   int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: stream %s: expected version %s, actual version %d", e.Stream, e.Expected, e.Actual)
}

// ReservationConflictError is returned by Append when a reservation it asked
// for is held by another stream (ACC-1 unique e-mail, KEY-2 a key in one
// account only). Nothing of the append was written.
type ReservationConflictError struct {
	Scope string
	Key   string
	Owner StreamID
}

func (e *ReservationConflictError) Error() string {
	return fmt.Sprintf("eventstore: %s %q is already reserved by %s", e.Scope, e.Key, e.Owner)
}
