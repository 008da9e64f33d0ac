package eventstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// BrokenLink is the first place where the log is not what was appended.
type BrokenLink struct {
	Position int64
	Stream   StreamID
	Version  int64
	EventID  uuid.UUID
	// Reason says what is wrong: the content no longer matches its hash, or
	// a version is missing or repeated.
	Reason string
}

func (b BrokenLink) String() string {
	return fmt.Sprintf("event %s (position %d, %s version %d): %s", b.EventID, b.Position, b.Stream, b.Version, b.Reason)
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	Events  int64
	Streams int64
	// Broken is the broken link with the lowest global position, or nil when
	// every link holds.
	Broken *BrokenLink
}

// VerifyProgress is called now and then with the number of events checked.
type VerifyProgress func(checked int64)

// Verify walks the whole log stream by stream and checks every hash link and
// that each stream's versions run from 1 without gap (AUD-3). It recomputes
// each hash from the stored columns, independently of the SQL that wrote it.
// It returns an error only when it cannot read the log; a tampered log is a
// report with Broken set.
func (s *Store) Verify(ctx context.Context, progress VerifyProgress) (VerifyReport, error) {
	rows, err := s.pool.Query(ctx, `SELECT global_position, stream_id, stream_version, event_id, event_type,
schema_version, recorded_at, data::text, metadata::text, hash
FROM events ORDER BY stream_id, stream_version`)
	if err != nil {
		return VerifyReport{}, fmt.Errorf("eventstore: verify: %w", err)
	}
	defer rows.Close()
	var (
		report     VerifyReport
		stream     string
		prevHash   []byte
		prevVer    int64
		buf        []byte
		pos, ver   int64
		id         uuid.UUID
		typ        string
		sv         int32
		at         time.Time
		data, meta []byte
		hash       []byte
	)
	broken := func(reason string) {
		if report.Broken == nil || pos < report.Broken.Position {
			report.Broken = &BrokenLink{Position: pos, Stream: StreamID(stream), Version: ver, EventID: id, Reason: reason}
		}
	}
	for rows.Next() {
		var st string
		if err := rows.Scan(&pos, &st, &ver, &id, &typ, &sv, &at, &data, &meta, &hash); err != nil {
			return report, fmt.Errorf("eventstore: verify: %w", err)
		}
		if st != stream {
			stream, prevHash, prevVer = st, nil, 0
			report.Streams++
		}
		report.Events++
		if ver != prevVer+1 {
			broken(fmt.Sprintf("version %d follows version %d: events are missing or repeated", ver, prevVer))
		}
		buf = canonical(buf[:0], prevHash, stream, ver, id, typ, sv, at, data, meta)
		sum := sha256.Sum256(buf)
		if !bytes.Equal(sum[:], hash) {
			broken("content does not match its hash: the event or its predecessor was changed")
		}
		// Chain on the stored hash, so one changed event is reported once.
		prevHash, prevVer = append(prevHash[:0], hash...), ver
		if progress != nil && report.Events%10000 == 0 {
			progress(report.Events)
		}
	}
	if err := rows.Err(); err != nil {
		return report, fmt.Errorf("eventstore: verify: %w", err)
	}
	if progress != nil {
		progress(report.Events)
	}
	return report, nil
}

// canonical appends the bytes an event's hash covers: the previous hash of
// its stream, then its stored columns separated by newlines (none of them
// can hold a raw newline: JSON text escapes it, the others are validated).
// It must match subs_append (migrations/0002_append.sql) and subs_append_batch
// (0015_append_batch.sql).
func canonical(buf, prevHash []byte, stream string, version int64, id uuid.UUID, typ string, schemaVersion int32, at time.Time, data, meta []byte) []byte {
	buf = append(buf, prevHash...)
	buf = append(buf, stream...)
	buf = append(buf, '\n')
	buf = strconv.AppendInt(buf, version, 10)
	buf = append(buf, '\n')
	buf = append(buf, id.String()...)
	buf = append(buf, '\n')
	buf = append(buf, typ...)
	buf = append(buf, '\n')
	buf = strconv.AppendInt(buf, int64(schemaVersion), 10)
	buf = append(buf, '\n')
	buf = strconv.AppendInt(buf, at.UnixMicro(), 10)
	buf = append(buf, '\n')
	buf = append(buf, data...)
	buf = append(buf, '\n')
	return append(buf, meta...)
}
