package eventstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/policy"
)

// HandlerConfig configures a CommandHandler.
type HandlerConfig struct {
	// Store is the event log. Required.
	Store *Store
	// Types encodes and decodes the aggregate's events. Required.
	Types *EventTypes
	// Clock gives each command its one instant (TIM-1). Required.
	Clock clock.Clock
	// Policy is passed to every decision.
	Policy policy.Policy
	// MaxAttempts bounds how often a command is decided again after a
	// concurrency conflict. Default 5.
	MaxAttempts int
	// CacheSize is how many streams' states the handler keeps in memory
	// (the least recently used go first): a load then reads and folds only
	// the events appended since the version kept, rather than the whole
	// stream. Zero keeps none. Only for an aggregate whose events hold no
	// personal data: an erased subject's fields must not outlive its key in
	// a process's memory (AUD-5).
	CacheSize int
	// SoleWriter promises that every event of the aggregate's streams is
	// appended through this handler (one process owns the log, as a
	// simulation does): a state the cache keeps is then current, and a
	// load reads only the streams it does not keep, instead of the events
	// after the version kept. A conflict, the promise broken, forgets the
	// stream's state, so the next attempt reads the stream. Requires a
	// CacheSize.
	SoleWriter bool
}

func (c *HandlerConfig) setDefaults() {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
}

// Validate reports a config the handler cannot run with.
func (c HandlerConfig) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("handler config: Store is required")
	case c.Types == nil:
		return errors.New("handler config: Types is required")
	case c.Clock == nil:
		return errors.New("handler config: Clock is required")
	case c.MaxAttempts < 1:
		return errors.New("handler config: MaxAttempts must be at least 1")
	case c.CacheSize < 0:
		return errors.New("handler config: CacheSize must not be negative")
	case c.SoleWriter && c.CacheSize == 0:
		return errors.New("handler config: SoleWriter needs a CacheSize: it trusts the states the cache keeps")
	}
	return nil
}

// CommandHandler runs one aggregate's commands: load the stream, fold it,
// decide, append with the version read; on a concurrency conflict, load and
// decide again (DESIGN §3). It is safe for concurrent use.
type CommandHandler[S, C any] struct {
	decider domain.Decider[S, C]
	cfg     HandlerConfig
	cache   *StateCache[S] // nil without CacheSize
}

// NewCommandHandler returns a handler of d's commands.
func NewCommandHandler[S, C any](d domain.Decider[S, C], cfg HandlerConfig) (*CommandHandler[S, C], error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("eventstore: invalid config: %w", err)
	}
	h := &CommandHandler[S, C]{decider: d, cfg: cfg}
	if cfg.CacheSize > 0 {
		h.cache = NewStateCache[S](cfg.CacheSize)
	}
	return h, nil
}

// CommandMeta is what a command carries besides itself.
type CommandMeta struct {
	// CommandID makes the command idempotent: a retry with the same id
	// returns the first outcome and appends nothing, whatever deciding it
	// again would give.
	CommandID string
	// Metadata is recorded with every event the command causes (AUD-1).
	Metadata Metadata
}

// Outcome is what a handled command did.
type Outcome[S any] struct {
	// State is the aggregate's state after the command.
	State S
	// Events are the events the command appended (none on a replay).
	Events []domain.Event
	// Append says where they landed; Append.Replayed marks a retried
	// command id whose first outcome stands.
	Append AppendResult
}

// Handle decides cmd on stream and appends what it decides. A refusal by
// the rules is returned as the decider's error, unwrapped. After
// MaxAttempts conflicts the last *ConflictError is returned.
func (h *CommandHandler[S, C]) Handle(ctx context.Context, stream StreamID, cmd C, meta CommandMeta) (Outcome[S], error) {
	return h.handle(ctx, stream, nil, cmd, meta)
}

// HandleFrom is Handle for a caller that holds the stream's state at
// version already (from Load, or the State and Append.LastVersion of a
// previous Outcome): the first attempt decides on it instead of reading
// the stream again. When the stream has moved on since, the append
// conflicts and the next attempts read it, as Handle's do.
func (h *CommandHandler[S, C]) HandleFrom(ctx context.Context, stream StreamID, state S, version int64, cmd C, meta CommandMeta) (Outcome[S], error) {
	return h.handle(ctx, stream, &Loaded[S]{State: state, Version: version}, cmd, meta)
}

// Loaded is a stream's state at a version.
type Loaded[S any] struct {
	State   S
	Version int64
}

func (h *CommandHandler[S, C]) handle(ctx context.Context, stream StreamID, from *Loaded[S], cmd C, meta CommandMeta) (Outcome[S], error) {
	now := h.cfg.Clock.Now() // one instant for the whole command, retries included
	var lastConflict error
	for attempt := range h.cfg.MaxAttempts {
		if attempt > 0 {
			if err := conflictPause(ctx, attempt); err != nil {
				return Outcome[S]{}, err
			}
		}
		state, version, err := h.loadFrom(ctx, stream, from)
		if err != nil {
			return Outcome[S]{}, err
		}
		from = nil // a conflict: the stream moved on
		events, req, refusal, err := h.decide(stream, Loaded[S]{State: state, Version: version}, cmd, meta, now)
		if refusal != nil {
			return h.refused(ctx, stream, meta, refusal)
		}
		if err != nil {
			return Outcome[S]{}, err
		}
		res, err := h.cfg.Store.Append(ctx, stream, req.Expected, req.Events, req.Options)
		var conflict *ConflictError
		if errors.As(err, &conflict) {
			lastConflict = err
			if h.cfg.SoleWriter {
				h.cache.Forget(stream)
			}
			continue
		}
		if err != nil {
			return Outcome[S]{}, err
		}
		return h.appended(ctx, stream, state, events, res)
	}
	return Outcome[S]{}, lastConflict
}

// conflictPause waits before the attempt after a conflict: a random while,
// growing with the attempts, so that commands racing on one stream spread
// out instead of meeting again at once.
func conflictPause(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(attempt) * time.Millisecond * time.Duration(1+rand.IntN(4)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// decide decides cmd on from at now and returns the events and their
// append, or the decider's refusal, or an error encoding an event.
func (h *CommandHandler[S, C]) decide(stream StreamID, from Loaded[S], cmd C, meta CommandMeta, now time.Time) (events []domain.Event, req AppendRequest,
	refusal, err error) {
	events, refusal = h.decider.Decide(from.State, cmd, now, h.cfg.Policy)
	if refusal != nil {
		return nil, req, refusal, nil
	}
	data := make([]EventData, len(events))
	for i, e := range events {
		if data[i], err = h.cfg.Types.Encode(e); err != nil {
			return nil, req, nil, err
		}
	}
	claims, releases := domain.ClaimsOf(events)
	return events, AppendRequest{Stream: stream, Expected: ExpectedVersion(from.Version), Events: data, Options: AppendOptions{
		CommandID:  meta.CommandID,
		Metadata:   meta.Metadata,
		RecordedAt: now,
		Reserve:    reservations(claims),
		Release:    reservations(releases),
	}}, nil, nil
}

// appended is the outcome of events decided on state and appended as res.
func (h *CommandHandler[S, C]) appended(ctx context.Context, stream StreamID, state S, events []domain.Event, res AppendResult) (Outcome[S], error) {
	if res.Replayed { // the same command id won a race meanwhile
		return h.replay(ctx, stream, res, nil)
	}
	state = h.decider.FoldFrom(state, events...)
	if h.cache != nil && len(events) > 0 {
		h.cache.Put(stream, state, res.LastVersion)
	}
	return Outcome[S]{State: state, Events: events, Append: res}, nil
}

// BatchCommand is one command of HandleBatch, on a stream whose state the
// caller holds (as HandleFrom's).
type BatchCommand[S, C any] struct {
	Stream StreamID
	From   Loaded[S]
	Cmd    C
	Meta   CommandMeta
}

// BatchOutcome is what one command of HandleBatch did, or why it did not.
type BatchOutcome[S any] struct {
	Outcome[S]
	Err error
}

// HandleBatch is HandleFrom for each of cmds, at one instant, their
// appends made in one round trip (Store.AppendBatch): for a worker that
// moves a batch of aggregates on at once. The outcomes are in cmds'
// order; a stream named twice has its second command decided on the state
// the first leaves. When the batch cannot be appended as a whole (a stream
// moved on, a command id was recorded by another stream meanwhile), each
// command is handled on its own, as HandleFrom handles it.
func (h *CommandHandler[S, C]) HandleBatch(ctx context.Context, cmds []BatchCommand[S, C]) []BatchOutcome[S] {
	now := h.cfg.Clock.Now()
	out := make([]BatchOutcome[S], len(cmds))
	decided := make([][]domain.Event, len(cmds))
	from := make([]Loaded[S], len(cmds))
	// A stream named again is decided on the state its earlier command
	// leaves: the appends run in order, in one transaction.
	last := map[StreamID]int{} // the command last decided on each stream
	var reqs []AppendRequest
	var at []int // the command of each request
	for i, c := range cmds {
		from[i] = c.From
		if j, ok := last[c.Stream]; ok { // folded only here: most streams come once
			from[i] = Loaded[S]{State: h.decider.FoldFrom(from[j].State, decided[j]...), Version: from[j].Version + int64(len(decided[j]))}
		}
		events, req, refusal, err := h.decide(c.Stream, from[i], c.Cmd, c.Meta, now)
		switch {
		case refusal != nil:
			out[i].Outcome, out[i].Err = h.refused(ctx, c.Stream, c.Meta, refusal)
			continue
		case err != nil:
			out[i].Err = err
			continue
		}
		decided[i] = events
		reqs, at = append(reqs, req), append(at, i)
		last[c.Stream] = i
	}
	results, err := h.cfg.Store.AppendBatch(ctx, reqs)
	for j, i := range at {
		c := cmds[i]
		if err != nil { // nothing of the batch was written
			out[i].Outcome, out[i].Err = h.HandleFrom(ctx, c.Stream, c.From.State, c.From.Version, c.Cmd, c.Meta)
			continue
		}
		out[i].Outcome, out[i].Err = h.appended(ctx, c.Stream, from[i].State, decided[i], results[j])
	}
	return out
}

// Load returns the aggregate's current state and stream version.
func (h *CommandHandler[S, C]) Load(ctx context.Context, stream StreamID) (S, int64, error) {
	return h.load(ctx, stream)
}

// loadFrom returns from's state and version when set, else loads them.
func (h *CommandHandler[S, C]) loadFrom(ctx context.Context, stream StreamID, from *Loaded[S]) (S, int64, error) {
	if from != nil {
		return from.State, from.Version, nil
	}
	return h.load(ctx, stream)
}

// load folds the stream from the start, or from the state the cache keeps:
// either way it reads the events up to the stream's current version, so a
// cached state is never stale (but for a SoleWriter's, current by promise).
func (h *CommandHandler[S, C]) load(ctx context.Context, stream StreamID) (S, int64, error) {
	loaded, err := h.LoadMany(ctx, []StreamID{stream})
	if err != nil {
		return h.decider.Initial, 0, err
	}
	return loaded[0].State, loaded[0].Version, nil
}

// LoadMany returns the current state and version of each of streams, in
// their order, reading all of them in one query: for a worker that handles
// a batch of aggregates (Load's answer for each, in one round trip).
func (h *CommandHandler[S, C]) LoadMany(ctx context.Context, streams []StreamID) ([]Loaded[S], error) {
	loaded := make([]Loaded[S], len(streams))
	kept := make([]int64, len(streams))         // the version each was kept at, if any
	from := make([]StreamFrom, 0, len(streams)) // the streams to read
	at := make(map[StreamID]int, len(streams))  // the first index of each stream
	for i, stream := range streams {
		loaded[i].State = h.decider.Initial
		cached := false
		if h.cache != nil {
			var s S
			if s, kept[i], cached = h.cache.Get(stream); cached {
				loaded[i] = Loaded[S]{State: s, Version: kept[i]}
			}
		}
		if _, ok := at[stream]; !ok {
			at[stream] = i
			if !cached || !h.cfg.SoleWriter {
				from = append(from, StreamFrom{Stream: stream, FromVersion: loaded[i].Version + 1})
			}
		}
	}
	if len(from) == 0 {
		return loaded, nil
	}
	records, err := h.cfg.Store.ReadStreams(ctx, from)
	if err != nil {
		return nil, err
	}
	for _, r := range records {
		e, err := h.cfg.Types.Decode(r)
		if err != nil {
			return nil, err
		}
		l := &loaded[at[r.StreamID]]
		l.State, l.Version = h.decider.Evolve(l.State, e), r.Version
	}
	for i, stream := range streams {
		first := at[stream]
		if first != i { // named twice: the same answer
			loaded[i] = loaded[first]
			continue
		}
		if h.cache != nil && loaded[i].Version > kept[i] {
			h.cache.Put(stream, loaded[i].State, loaded[i].Version)
		}
	}
	return loaded, nil
}

// refused returns the decider's refusal of a command, unless the command
// is a retry whose first outcome stands: deciding it again on the state its
// first run left may well be refused, and the first outcome is the answer.
// The command id is looked up only here: a command the decider accepts
// learns of a first run from its append (Replayed), which saves every
// first run a round trip.
func (h *CommandHandler[S, C]) refused(ctx context.Context, stream StreamID, meta CommandMeta, refusal error) (Outcome[S], error) {
	if meta.CommandID != "" {
		if first, done, err := h.cfg.Store.CommandResult(ctx, meta.CommandID); err != nil || done {
			return h.replay(ctx, stream, first, err)
		}
	}
	return Outcome[S]{}, refusal
}

func (h *CommandHandler[S, C]) replay(ctx context.Context, stream StreamID, first AppendResult, err error) (Outcome[S], error) {
	if err != nil {
		return Outcome[S]{}, err
	}
	state, _, err := h.load(ctx, stream)
	if err != nil {
		return Outcome[S]{}, err
	}
	return Outcome[S]{State: state, Append: first}, nil
}

func reservations(claims []domain.Claim) []Reservation {
	if len(claims) == 0 {
		return nil
	}
	out := make([]Reservation, len(claims))
	for i, c := range claims {
		out[i] = Reservation(c)
	}
	return out
}
