package publish

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/subs-engine/subs/eventstore"
)

// The message headers every published event carries besides Nats-Msg-Id
// (the event id). The ce- headers are CloudEvents 1.0 attributes in binary
// content mode; the subs- headers place the event in the log.
const (
	HeaderSpecVersion     = "ce-specversion"      // always "1.0"
	HeaderID              = "ce-id"               // the event id
	HeaderType            = "ce-type"             // the event type, e.g. "subscription.renewed"
	HeaderSource          = "ce-source"           // "subs/<stream category>"
	HeaderTime            = "ce-time"             // recorded_at, RFC 3339 (UTC, microseconds)
	HeaderSubject         = "ce-subject"          // the stream id, e.g. "subscription-0190…"
	HeaderDataContentType = "ce-datacontenttype"  // "application/json"
	HeaderContentType     = "content-type"        // "application/json", the payload's media type
	HeaderPosition        = "subs-position"       // the global position, decimal
	HeaderStreamVersion   = "subs-stream-version" // the version in its stream, decimal, from 1
	HeaderSchemaVersion   = "subs-schema-version" // the payload's schema version, decimal
)

// DefaultSubjectPrefix is the subject prefix events are published under.
const DefaultSubjectPrefix = "subs.events"

// Subject returns the subject event e is published on:
// "<prefix>.<stream category>.<event type>", where an event type that starts
// with its category and a dot is not repeated: an event of type
// "subscription.renewed" in stream "subscription-0190…" goes to
// "subs.events.subscription.renewed", one of type "charge.requested" in the
// same stream to "subs.events.subscription.charge.requested". So
// "subs.events.subscription.>" is every event of every subscription; the exact
// type is always in the ce-type header. Characters a subject token cannot
// hold are replaced by '_'.
func Subject(prefix string, e eventstore.RecordedEvent) string {
	category := e.StreamID.Category()
	typ := strings.TrimPrefix(e.Type, category+".")
	return prefix + "." + subjectToken(category) + "." + subjectTokens(typ)
}

// subjectToken makes s one subject token: no '.', wildcard or whitespace.
func subjectToken(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

// subjectTokens makes each dot-separated part of s a subject token.
func subjectTokens(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = subjectToken(p)
	}
	return strings.Join(parts, ".")
}

// NewMessage returns the Watermill message event e is published as: its
// UUID is the event id (which the publisher sends as Nats-Msg-Id, so
// JetStream drops a republished event inside its duplicate window), its
// payload the event's data JSON, its metadata the headers listed above.
func NewMessage(e eventstore.RecordedEvent) *message.Message {
	id := e.ID.String()
	msg := message.NewMessage(id, message.Payload(e.Data))
	msg.Metadata = message.Metadata{
		HeaderSpecVersion:     "1.0",
		HeaderID:              id,
		HeaderType:            e.Type,
		HeaderSource:          "subs/" + e.StreamID.Category(),
		HeaderTime:            e.RecordedAt.UTC().Format(time.RFC3339Nano),
		HeaderSubject:         string(e.StreamID),
		HeaderDataContentType: "application/json",
		HeaderContentType:     "application/json",
		HeaderPosition:        strconv.FormatInt(e.Position, 10),
		HeaderStreamVersion:   strconv.FormatInt(e.Version, 10),
		HeaderSchemaVersion:   strconv.Itoa(e.SchemaVersion),
	}
	return msg
}

// StreamConfig is the JetStream stream events are kept in for other systems.
// The zero value of every field takes the default its comment names.
type StreamConfig struct {
	// Name is the stream's name; JetStream refuses '.' in it. Default
	// "SUBS_EVENTS".
	Name string
	// SubjectPrefix is the prefix of every subject published; the stream
	// takes "<SubjectPrefix>.>". Default "subs.events".
	SubjectPrefix string
	// Retention says when JetStream deletes messages. Default
	// jetstream.LimitsPolicy: only MaxAge and MaxBytes do, so consumers come
	// and go without taking events from each other.
	Retention jetstream.RetentionPolicy
	// MaxAge is how long messages are kept; negative keeps them forever.
	// Default 30 days.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size, dropping the oldest messages
	// first; negative means no bound. Default -1.
	MaxBytes int64
	// Replicas is how many servers of a JetStream cluster hold the stream.
	// Default 1.
	Replicas int
	// DuplicateWindow is how long JetStream remembers message ids to drop
	// a republished event. The publisher commits its checkpoint every batch,
	// so a restart republishes far less than a window's worth. Default 10m.
	DuplicateWindow time.Duration
	// Storage is where the stream keeps messages. Default
	// jetstream.FileStorage.
	Storage jetstream.StorageType
}

func (c *StreamConfig) setDefaults() {
	if c.Name == "" {
		c.Name = "SUBS_EVENTS"
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.MaxAge == 0 {
		c.MaxAge = 30 * 24 * time.Hour
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = -1
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
}

// Validate reports the first invalid field of c, naming it.
func (c StreamConfig) Validate() error {
	switch {
	case c.Name == "" || strings.ContainsAny(c.Name, ". *>\t\r\n/\\"):
		return fmt.Errorf("Stream.Name: %q: give a name without '.', spaces, wildcards or slashes, e.g. SUBS_EVENTS", c.Name)
	case c.SubjectPrefix == "" || strings.ContainsAny(c.SubjectPrefix, " *>\t\r\n") ||
		strings.HasPrefix(c.SubjectPrefix, ".") || strings.HasSuffix(c.SubjectPrefix, "."):
		return fmt.Errorf("Stream.SubjectPrefix: %q is not a subject without wildcards, e.g. subs.events", c.SubjectPrefix)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("Stream.Replicas: %d: JetStream allows 1 to 5", c.Replicas)
	case c.DuplicateWindow < 0:
		return fmt.Errorf("Stream.DuplicateWindow: %s is negative", c.DuplicateWindow)
	case c.MaxAge > 0 && c.DuplicateWindow > c.MaxAge:
		return fmt.Errorf("Stream.DuplicateWindow: %s exceeds MaxAge %s", c.DuplicateWindow, c.MaxAge)
	}
	return nil
}

// jetStreamConfig is c in JetStream's terms.
func (c StreamConfig) jetStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        c.Name,
		Description: "every event of the subs event log, in commit order (DESIGN §7)",
		Subjects:    []string{c.SubjectPrefix + ".>"},
		Retention:   c.Retention,
		MaxAge:      max(c.MaxAge, 0),
		MaxBytes:    c.MaxBytes,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
		Storage:     c.Storage,
		Discard:     jetstream.DiscardOld,
	}
}

// EnsureStream applies cfg's defaults, validates it and creates the stream
// on nc's server, or updates its settings if it exists (its messages stay).
func EnsureStream(ctx context.Context, nc *nats.Conn, cfg StreamConfig) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("publish: invalid config: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("publish: JetStream: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg.jetStreamConfig()); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("publish: the NATS server at %s does not run JetStream (start it with -js): %w", nc.ConnectedUrlRedacted(), err)
		}
		return fmt.Errorf("publish: create or update stream %s: %w", cfg.Name, err)
	}
	return nil
}
