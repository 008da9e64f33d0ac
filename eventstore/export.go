package eventstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// ExportOptions narrow an export.
type ExportOptions struct {
	// Stream, when set, exports only that stream.
	Stream StreamID
	// After exports the events past this global position.
	After int64
	// Limit bounds the events exported; 0 means no bound.
	Limit int
}

// Export hands emit each stored event, in position order, as one JSON object
// with every column as stored: global_position, transaction_id, stream_id,
// stream_version, event_id, event_type, schema_version, data, metadata,
// recorded_at (RFC 3339 UTC to the microsecond) and hash (hex). data keeps
// the exact text the hash covers, personal fields encrypted (AUD-5), so an
// export can be verified elsewhere and never shows erased personal data. The
// line passed to emit is reused after emit returns.
//
// It reads the table itself rather than through ReadAll, which returns
// commit order and only committed transactions older than every one in
// flight; an export wants every stored row as it is, by position.
func (s *Store) Export(ctx context.Context, opts ExportOptions, emit func(line []byte) error) error {
	sql := `SELECT global_position, transaction_id, stream_id, stream_version, event_id::text, event_type,
schema_version, data::text, metadata::text, recorded_at, hash FROM events WHERE global_position > $1`
	args := []any{opts.After}
	if opts.Stream != "" {
		if err := opts.Stream.Validate(); err != nil {
			return err
		}
		sql += ` AND stream_id = $2`
		args = append(args, string(opts.Stream))
	}
	sql += ` ORDER BY global_position`
	if opts.Limit > 0 {
		sql += ` LIMIT ` + strconv.Itoa(opts.Limit)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("eventstore: export: %w", err)
	}
	defer rows.Close()
	var line []byte
	for rows.Next() {
		var (
			pos, version int64
			txid         uint64
			stream, id   string
			typ          string
			sv           int
			data, meta   string
			at           time.Time
			hash         []byte
		)
		if err := rows.Scan(&pos, &txid, &stream, &version, &id, &typ, &sv, &data, &meta, &at, &hash); err != nil {
			return fmt.Errorf("eventstore: export: %w", err)
		}
		// Built by hand so that data and metadata keep the exact text the
		// hash covers (jsonb's output form, never holding a raw newline);
		// encoding/json would compact it.
		line = append(line[:0], `{"global_position":`...)
		line = strconv.AppendInt(line, pos, 10)
		line = append(line, `,"transaction_id":`...)
		line = strconv.AppendUint(line, txid, 10)
		line = append(line, `,"stream_id":`...)
		line = appendJSONString(line, stream)
		line = append(line, `,"stream_version":`...)
		line = strconv.AppendInt(line, version, 10)
		line = append(line, `,"event_id":"`...)
		line = append(line, id...)
		line = append(line, `","event_type":`...)
		line = appendJSONString(line, typ)
		line = append(line, `,"schema_version":`...)
		line = strconv.AppendInt(line, int64(sv), 10)
		line = append(line, `,"data":`...)
		line = append(line, data...)
		line = append(line, `,"metadata":`...)
		line = append(line, meta...)
		line = append(line, `,"recorded_at":"`...)
		line = at.UTC().AppendFormat(line, time.RFC3339Nano)
		line = append(line, `","hash":"`...)
		line = hex.AppendEncode(line, hash)
		line = append(line, `"}`...)
		if err := emit(line); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("eventstore: export: %w", err)
	}
	return nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
