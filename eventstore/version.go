package eventstore

import "strconv"

// ExpectedVersion is the stream version an append requires: the number of
// events the caller has read, NoStream for a stream that must not exist yet,
// or Any to skip the check.
type ExpectedVersion int64

const (
	// NoStream requires the stream to have no event yet.
	NoStream ExpectedVersion = 0
	// Any appends whatever the stream's version is.
	Any ExpectedVersion = -1
)

func (v ExpectedVersion) String() string {
	switch v {
	case Any:
		return "any"
	case NoStream:
		return "0 (no stream)"
	}
	return strconv.FormatInt(int64(v), 10)
}
