package eventstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/eventstore"
)

// A tally is the smallest aggregate that exercises the handler: it counts up
// to a limit and can claim a unique name.
type (
	tally      struct{ total int }
	addCommand struct {
		n    int
		name string // claimed when set
	}
	added struct {
		N    int    `json:"n"`
		Name string `json:"name,omitempty"`
	}
)

func (added) EventType() string { return "tally.added" }

func (e added) Claims() []domain.Claim {
	if e.Name == "" {
		return nil
	}
	return []domain.Claim{{Scope: "tally-name", Key: e.Name}}
}

var errLimit = errors.New("tally: limit reached")

const tallyLimit = 100

var tallyDecider = domain.Decider[tally, addCommand]{
	Decide: func(s tally, c addCommand, _ time.Time, _ policy.Policy) ([]domain.Event, error) {
		if s.total+c.n > tallyLimit {
			return nil, errLimit
		}
		return []domain.Event{added{N: c.n, Name: c.name}}, nil
	},
	Evolve: func(s tally, e domain.Event) tally {
		if a, ok := e.(added); ok {
			s.total += a.N
		}
		return s
	},
}

func newTallyHandler(t *testing.T, s *eventstore.Store, c clock.Clock) *eventstore.CommandHandler[tally, addCommand] {
	t.Helper()
	return newCachingTallyHandler(t, s, c, 0)
}

// newCachingTallyHandler is a tally handler that keeps cacheSize states.
func newCachingTallyHandler(t *testing.T, s *eventstore.Store, c clock.Clock, cacheSize int) *eventstore.CommandHandler[tally, addCommand] {
	t.Helper()
	h, err := eventstore.NewCommandHandler(tallyDecider, tallyConfig(s, c, cacheSize))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func tallyConfig(s *eventstore.Store, c clock.Clock, cacheSize int) eventstore.HandlerConfig {
	types := eventstore.NewEventTypes()
	types.Register(1, added{})
	return eventstore.HandlerConfig{Store: s, Types: types, Clock: c, Policy: policy.Default(), MaxAttempts: 100, CacheSize: cacheSize}
}

var system = eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem}}

// rule TIM-1: the command's events carry the injected clock's one instant.
func TestCommandHandler_DecidesAppendsAtClockTime(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	c := clock.NewSimulated(t0)
	h := newTallyHandler(t, s, c)
	out, err := h.Handle(context.Background(), "tally-1", addCommand{n: 5}, system)
	if err != nil {
		t.Fatal(err)
	}
	if out.State.total != 5 || len(out.Events) != 1 || out.Append.LastVersion != 1 {
		t.Errorf("outcome %+v", out)
	}
	if err := c.Advance(48 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(context.Background(), "tally-1", addCommand{n: 1}, system); err != nil {
		t.Fatal(err)
	}
	evs := mustReadStream(t, s, "tally-1")
	if !evs[0].RecordedAt.Equal(t0) || !evs[1].RecordedAt.Equal(t0.Add(48*time.Hour)) {
		t.Errorf("recorded at %v and %v, want the simulated clock's instants", evs[0].RecordedAt, evs[1].RecordedAt)
	}
}

func TestCommandHandler_ConcurrentCommands_RetriedOnConflict(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	h := newTallyHandler(t, s, clock.NewSimulated(t0))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := h.Handle(context.Background(), "tally-busy", addCommand{n: 1}, system); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	state, version, err := h.Load(context.Background(), "tally-busy")
	if err != nil || state.total != 20 || version != 20 {
		t.Errorf("state %+v at version %d (%v), want 20 and 20", state, version, err)
	}
}

func TestCommandHandler_RefusalReturnedAsIs_NothingAppended(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	h := newTallyHandler(t, s, clock.NewSimulated(t0))
	if _, err := h.Handle(context.Background(), "tally-full", addCommand{n: tallyLimit + 1}, system); !errors.Is(err, errLimit) {
		t.Fatalf("err = %v, want the decider's error", err)
	}
	if n := len(mustReadStream(t, s, "tally-full")); n != 0 {
		t.Errorf("a refused command appended %d events", n)
	}
}

func TestCommandHandler_CommandIDRetried_FirstOutcomeStands(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	h := newTallyHandler(t, s, clock.NewSimulated(t0))
	meta := system
	meta.CommandID = "add-all"
	first, err := h.Handle(context.Background(), "tally-once", addCommand{n: tallyLimit}, meta)
	if err != nil {
		t.Fatal(err)
	}
	// Deciding again would be refused (limit reached); the retry must not decide.
	again, err := h.Handle(context.Background(), "tally-once", addCommand{n: tallyLimit}, meta)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !again.Append.Replayed || again.Append.LastPosition != first.Append.LastPosition || again.State.total != tallyLimit {
		t.Errorf("retry outcome %+v, want the first append replayed", again)
	}
}

func TestCommandHandler_ClaimHeldByAnotherStream_Refused(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	h := newTallyHandler(t, s, clock.NewSimulated(t0))
	if _, err := h.Handle(context.Background(), "tally-a", addCommand{n: 1, name: "ann"}, system); err != nil {
		t.Fatal(err)
	}
	_, err := h.Handle(context.Background(), "tally-b", addCommand{n: 1, name: "ann"}, system)
	var conflict *eventstore.ReservationConflictError
	if !errors.As(err, &conflict) || conflict.Owner != "tally-a" {
		t.Fatalf("err = %v, want the claim refused, naming tally-a", err)
	}
}

func TestCommandHandler_HandleFrom_DecidesOnTheStateGiven_ReadsAgainAfterAConflict(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	h := newTallyHandler(t, s, clock.NewSimulated(t0))
	ctx := context.Background()
	out, err := h.Handle(ctx, "tally-from", addCommand{n: 5}, system)
	if err != nil {
		t.Fatal(err)
	}
	next, err := h.HandleFrom(ctx, "tally-from", out.State, out.Append.LastVersion, addCommand{n: 2}, system)
	if err != nil || next.State.total != 7 || next.Append.LastVersion != 2 {
		t.Fatalf("HandleFrom on the last outcome: %+v, %v; want total 7 at version 2", next, err)
	}
	// A stale state (version 1, total 5): the append conflicts, the stream
	// is read again and the command decided on what it holds.
	stale, err := h.HandleFrom(ctx, "tally-from", out.State, out.Append.LastVersion, addCommand{n: 1}, system)
	if err != nil || stale.State.total != 8 || stale.Append.LastVersion != 3 {
		t.Fatalf("HandleFrom on a stale state: %+v, %v; want total 8 at version 3", stale, err)
	}
}

// Two processes, each with a handler that keeps states in memory, share
// streams: each load still sees every event the other appended, and a
// stream dropped from a full cache is read whole again.
func TestCommandHandler_CachedStates_NeverStale(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	c := clock.NewSimulated(t0)
	ctx := context.Background()
	a, b := newCachingTallyHandler(t, s, c, 2), newCachingTallyHandler(t, s, c, 2)
	handle := func(h *eventstore.CommandHandler[tally, addCommand], stream eventstore.StreamID, n int) tally {
		t.Helper()
		out, err := h.Handle(ctx, stream, addCommand{n: n}, system)
		if err != nil {
			t.Fatalf("add %d to %s: %v", n, stream, err)
		}
		return out.State
	}
	handle(a, "tally-shared", 10) // a keeps it at version 1
	handle(b, "tally-shared", 20)
	handle(b, "tally-shared", 30)
	if got := handle(a, "tally-shared", 1); got.total != 61 {
		t.Fatalf("a decided on a total of %d after b's adds; want 61", got.total-1)
	}
	// a's cache holds two streams: a third drops tally-shared from it.
	handle(a, "tally-other-1", 1)
	handle(a, "tally-other-2", 1)
	handle(b, "tally-shared", 5)
	state, version, err := a.Load(ctx, "tally-shared")
	if err != nil || state.total != 66 || version != 5 {
		t.Fatalf("a loads tally-shared as %+v at version %d (%v); want 66 at version 5", state, version, err)
	}
	// The limit is decided on the whole total, wherever it was folded.
	if _, err := a.Handle(ctx, "tally-shared", addCommand{n: tallyLimit - 65}, system); !errors.Is(err, errLimit) {
		t.Fatalf("adding past the limit: %v, want errLimit", err)
	}
}

// A handler that is its streams' sole writer trusts the states it keeps: a
// load reads nothing for them, so an event appended behind its back goes
// unseen until a command conflicts with it; the conflict forgets the
// state, and the command is decided again on the whole stream.
func TestCommandHandler_SoleWriter_TrustsItsStates_AConflictReadsTheStreamAgain(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	c := clock.NewSimulated(t0)
	ctx := context.Background()
	cfg := tallyConfig(s, c, 10)
	cfg.SoleWriter = true
	sole, err := eventstore.NewCommandHandler(tallyDecider, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sole.Handle(ctx, "tally-sole", addCommand{n: 10}, system); err != nil {
		t.Fatal(err)
	}
	if _, err := newTallyHandler(t, s, c).Handle(ctx, "tally-sole", addCommand{n: 20}, system); err != nil { // the promise broken
		t.Fatal(err)
	}
	if state, version, err := sole.Load(ctx, "tally-sole"); err != nil || state.total != 10 || version != 1 {
		t.Fatalf("sole writer loads %+v at version %d (%v); want its own 10 at version 1, nothing read", state, version, err)
	}
	out, err := sole.Handle(ctx, "tally-sole", addCommand{n: 1}, system)
	if err != nil || out.State.total != 31 || out.Append.LastVersion != 3 {
		t.Fatalf("after the conflict: %+v, %v; want a total of 31 at version 3", out, err)
	}
	if state, version, err := sole.Load(ctx, "tally-sole"); err != nil || state.total != 31 || version != 3 {
		t.Fatalf("sole writer loads %+v at version %d (%v); want 31 at version 3", state, version, err)
	}
	cfg.CacheSize = 0
	if _, err := eventstore.NewCommandHandler(tallyDecider, cfg); err == nil || !strings.Contains(err.Error(), "SoleWriter needs a CacheSize") {
		t.Fatalf("a sole writer keeping no state: %v, want refused", err)
	}
}

// LoadMany answers, in one query, what Load answers for each stream:
// cached or not, moved on by another process, named twice, or empty.
func TestCommandHandler_LoadMany_AnswersAsLoadForEachStream(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	c := clock.NewSimulated(t0)
	ctx := context.Background()
	cached, other := newCachingTallyHandler(t, s, c, 10), newTallyHandler(t, s, c)
	for _, add := range []struct {
		h      *eventstore.CommandHandler[tally, addCommand]
		stream eventstore.StreamID
		n      int
	}{
		{cached, "tally-a", 1}, {cached, "tally-a", 2}, // cached at version 2
		{other, "tally-a", 4},                         // then moved on elsewhere
		{other, "tally-b", 8}, {other, "tally-b", 16}, // never cached
		{cached, "tally-c", 32}, // cached, current
	} {
		if _, err := add.h.Handle(ctx, add.stream, addCommand{n: add.n}, system); err != nil {
			t.Fatal(err)
		}
	}
	streams := []eventstore.StreamID{"tally-b", "tally-a", "tally-none", "tally-c", "tally-b"}
	loaded, err := cached.LoadMany(ctx, streams)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		total   int
		version int64
	}{{24, 2}, {7, 3}, {0, 0}, {32, 1}, {24, 2}}
	for i, stream := range streams {
		got := loaded[i]
		if got.State.total != want[i].total || got.Version != want[i].version {
			t.Errorf("%s: total %d at version %d, want %d at version %d", stream, got.State.total, got.Version, want[i].total, want[i].version)
		}
		state, version, err := other.Load(ctx, stream)
		if err != nil || state.total != got.State.total || version != got.Version {
			t.Errorf("%s: Load gives %d at version %d (%v), LoadMany %d at %d", stream, state.total, version, err, got.State.total, got.Version)
		}
	}
}

// HandleBatch answers each command as HandleFrom would: appended in one
// batch when none conflicts; a refusal for that command alone; and, when a
// stream moved on since its state was read, each command handled on its
// own (the moved one decided again on the stream as it is).
func TestCommandHandler_HandleBatch_AnswersAsHandleFromForEachCommand(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	c := clock.NewSimulated(t0)
	ctx := context.Background()
	h := newCachingTallyHandler(t, s, c, 10)
	for _, stream := range []eventstore.StreamID{"tally-a", "tally-b", "tally-full"} {
		if _, err := h.Handle(ctx, stream, addCommand{n: 90}, system); err != nil {
			t.Fatal(err)
		}
	}
	loaded, err := h.LoadMany(ctx, []eventstore.StreamID{"tally-a", "tally-b", "tally-full"})
	if err != nil {
		t.Fatal(err)
	}
	batch := func() []eventstore.BatchCommand[tally, addCommand] {
		return []eventstore.BatchCommand[tally, addCommand]{
			{Stream: "tally-a", From: loaded[0], Cmd: addCommand{n: 1}, Meta: system},
			{Stream: "tally-b", From: loaded[1], Cmd: addCommand{n: 2}, Meta: system},
			{Stream: "tally-full", From: loaded[2], Cmd: addCommand{n: 20}, Meta: system}, // over the limit
		}
	}
	check := func(what string, out []eventstore.BatchOutcome[tally], totals []int, versions []int64) {
		t.Helper()
		for i, o := range out[:2] {
			if o.Err != nil || o.State.total != totals[i] || o.Append.LastVersion != versions[i] {
				t.Errorf("%s: command %d: total %d at version %d (%v), want %d at %d", what, i, o.State.total, o.Append.LastVersion, o.Err,
					totals[i], versions[i])
			}
		}
		if !errors.Is(out[2].Err, errLimit) {
			t.Errorf("%s: over the limit: %v, want the decider's refusal", what, out[2].Err)
		}
	}

	out := h.HandleBatch(ctx, batch())
	check("one batch", out, []int{91, 92}, []int64{2, 2})
	if out[0].Append.TransactionID != out[1].Append.TransactionID {
		t.Errorf("appended in transactions %d and %d, want one", out[0].Append.TransactionID, out[1].Append.TransactionID)
	}

	// A stream named twice: the second command adds to the first's total,
	// in the same batch.
	twice := h.HandleBatch(ctx, []eventstore.BatchCommand[tally, addCommand]{
		{Stream: "tally-twice", Cmd: addCommand{n: 5}, Meta: system},
		{Stream: "tally-twice", Cmd: addCommand{n: 6}, Meta: system},
	})
	if twice[0].Err != nil || twice[1].Err != nil || twice[1].State.total != 11 || twice[1].Append.LastVersion != 2 ||
		twice[0].Append.TransactionID != twice[1].Append.TransactionID {
		t.Errorf("one stream twice: %+v", twice)
	}

	// tally-a moved on since loaded: the batch is handled command by command.
	out = h.HandleBatch(ctx, batch())
	check("after a conflict", out, []int{92, 94}, []int64{3, 3})
	for _, stream := range []eventstore.StreamID{"tally-a", "tally-b", "tally-full"} {
		state, version, err := newTallyHandler(t, s, c).Load(ctx, stream)
		want := map[eventstore.StreamID]int{"tally-a": 92, "tally-b": 94, "tally-full": 90}[stream]
		if err != nil || state.total != want {
			t.Errorf("%s in the log: total %d at version %d (%v), want %d", stream, state.total, version, err, want)
		}
	}
}
