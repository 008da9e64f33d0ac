package outbox_test

import (
	"bytes"
	"context"
	"errors"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/projections"
	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/mail/mailtest"
	"github.com/subs-engine/subs/workers/outbox"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

type fixture struct {
	store    *eventstore.Store
	accounts *eventstore.CommandHandler[account.Account, account.Command]
	runner   *projections.Runner
	clock    *clock.Simulated
	maildir  *mail.Maildir
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store := eventstore.New(pgtest.NewPool(t), eventstore.Config{})
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	c := clock.NewSimulated(time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC))
	accounts, err := eventstore.NewCommandHandler(account.Decider, eventstore.HandlerConfig{Store: store, Types: types, Clock: c, Policy: policy.Default()})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := projections.NewRunner(projections.RunnerConfig{Store: store, Types: types,
		Projections: []projections.Projection{projections.EmailOutbox{}}, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	md, err := mail.NewMaildir(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, accounts: accounts, runner: runner, clock: c, maildir: md}
}

func (f *fixture) worker(t *testing.T, sender mail.Sender) *outbox.Worker {
	t.Helper()
	return f.workerBatching(t, sender, 0)
}

// workerBatching is worker with a claim of batchSize messages (0: the
// default).
func (f *fixture) workerBatching(t *testing.T, sender mail.Sender, batchSize int) *outbox.Worker {
	t.Helper()
	return f.workerWith(t, sender, func(c *outbox.Config) { c.BatchSize = batchSize })
}

// workerWith is worker with its config changed by set.
func (f *fixture) workerWith(t *testing.T, sender mail.Sender, set func(*outbox.Config)) *outbox.Worker {
	t.Helper()
	cfg := f.config(t, sender)
	set(&cfg)
	w, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// config is the config of a worker sending with sender.
func (f *fixture) config(t *testing.T, sender mail.Sender) outbox.Config {
	t.Helper()
	templates, err := mail.NewTemplates()
	if err != nil {
		t.Fatal(err)
	}
	return outbox.Config{Store: f.store, Accounts: f.accounts, Sender: sender, Templates: templates,
		Clock: f.clock, Policy: policy.Default(), SecretKey: secret, PublicURL: "https://account.example.com"}
}

// A PublicURL the e-mails' links cannot be joined to is refused when the
// worker is made, naming the field, not at the first message.
func TestNew_RefusesAPublicURLThatIsNotOne(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config(t, f.maildir)
	cfg.PublicURL = "http://[::1"
	if _, err := outbox.New(cfg); err == nil || !strings.Contains(err.Error(), "PublicURL") {
		t.Fatalf("New with PublicURL %q: %v, want an error naming PublicURL", cfg.PublicURL, err)
	}
}

// moreResets asks n more resets of the account of stream, once the outbox
// projection has seen them.
func (f *fixture) moreResets(t *testing.T, stream eventstore.StreamID, n int) {
	t.Helper()
	ctx := context.Background()
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: "ann"}}
	var last eventstore.Checkpoint
	for range n {
		resetID := uuid.New()
		out, err := f.accounts.Handle(ctx, stream, account.RequestPasswordReset{ResetID: resetID,
			TokenHash: account.HashResetToken(account.ResetToken(secret, resetID))}, meta)
		if err != nil {
			t.Fatal(err)
		}
		last = out.Append.Checkpoint()
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.runner.WaitFor(wait, last); err != nil {
		t.Fatal(err)
	}
}

// requestReset opens an account and asks for a reset; it returns the token
// the e-mail must carry, once the outbox projection has seen the request.
func (f *fixture) requestReset(t *testing.T) (eventstore.StreamID, string) {
	t.Helper()
	ctx := context.Background()
	id := uuid.New()
	stream := eventstore.StreamID("account-" + id.String())
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: id.String()}}
	email, _ := account.ParseEmail("ann@example.com")
	name, _ := account.ParseName("Ann Lee")
	country, _ := account.ParseCountry("US")
	if _, err := f.accounts.Handle(ctx, stream, account.Register{AccountID: id, Email: email, Name: name, Country: country, PasswordHash: "h"}, meta); err != nil {
		t.Fatal(err)
	}
	resetID := uuid.New()
	token := account.ResetToken(secret, resetID)
	out, err := f.accounts.Handle(ctx, stream, account.RequestPasswordReset{ResetID: resetID, TokenHash: account.HashResetToken(token)}, meta)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.runner.WaitFor(wait, out.Append.Checkpoint()); err != nil {
		t.Fatal(err)
	}
	return stream, token
}

func (f *fixture) delivered(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(f.maildir.Dir(), "new", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// rule EML-1: the reset e-mail is caused by the request and recorded as an
// event when sent.
func TestRule_EML1_ResetEmailSentAndRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stream, token := f.requestReset(t)
	w := f.worker(t, f.maildir)
	if n, err := w.RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("first run sent %d (%v), want 1", n, err)
	}
	if n, err := w.RunOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("second run sent %d (%v), want 0", n, err)
	}
	msgs := f.delivered(t)
	if len(msgs) != 1 || !strings.Contains(mailtest.PlainText(t, msgs[0]), "https://account.example.com/reset-password?token="+token) {
		t.Fatalf("delivered %d messages; want one carrying the reset link", len(msgs))
	}
	evs, err := f.store.ReadStream(context.Background(), stream, eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Type != "account.email_sent" || last.Metadata.CausationID != evs[1].ID.String() {
		t.Errorf("last event %s caused by %s, want account.email_sent caused by the reset request %s", last.Type, last.Metadata.CausationID, evs[1].ID)
	}
}

// failingRecord sends, then makes the recording fail as a crash would, once.
type crashAfterSend struct {
	mail.Sender
	cancel context.CancelFunc
	sends  atomic.Int32
}

func (c *crashAfterSend) Send(ctx context.Context, m mail.Message) error {
	c.sends.Add(1)
	err := c.Sender.Send(ctx, m)
	c.cancel() // the process dies before the send is recorded
	return err
}

// rule EML-2: a crash between send and record resends at most the run's
// messages not recorded (here one), each with the same Message-ID.
func TestRule_EML2_CrashBetweenSendAndRecord_ResendsSameMessageID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.requestReset(t)
	ctx, cancel := context.WithCancel(context.Background())
	crashing := &crashAfterSend{Sender: f.maildir, cancel: cancel}
	if n, _ := f.worker(t, crashing).RunOnce(ctx); n != 0 {
		t.Fatalf("the crashed run reported %d sent", n)
	}
	if err := f.clock.Advance(2 * time.Minute); err != nil { // the lease runs out
		t.Fatal(err)
	}
	if n, err := f.worker(t, f.maildir).RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("restart sent %d (%v), want the one message again", n, err)
	}
	if n, _ := f.worker(t, f.maildir).RunOnce(context.Background()); n != 0 {
		t.Fatalf("a recorded send was repeated")
	}
	if msgs := f.delivered(t); len(msgs) != 1 {
		t.Fatalf("maildir holds %d messages, want 1 (same Message-ID)", len(msgs))
	}
	if crashing.sends.Load() != 1 {
		t.Fatalf("crashing sender used %d times", crashing.sends.Load())
	}
}

// sendsAfter lets first run before it sends, once.
type sendsAfter struct {
	mail.Sender
	first func()
	once  sync.Once
}

func (s *sendsAfter) Send(ctx context.Context, m mail.Message) error {
	s.once.Do(s.first)
	return s.Sender.Send(ctx, m)
}

// rule EML-2: a send recorded by another worker meanwhile (it claimed the
// message once this one's lease had run out on its clock) is not recorded
// twice: the record decides nothing on the state that record left. The
// record's command id is in its metadata (AUD-1), and the commands table
// keeps no row of it: the deciders, not the table, make a second record a
// no-op.
func TestRule_EML2_ASendRecordedMeanwhileIsRecordedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stream, _ := f.requestReset(t)
	ctx := context.Background()
	later := f.workerWith(t, f.maildir, func(c *outbox.Config) { c.LeaseClock = clock.NewSimulated(f.clock.Now().Add(2 * time.Minute)) })
	sender := &sendsAfter{Sender: f.maildir, first: func() {
		if n, err := later.RunOnce(ctx); err != nil || n != 1 {
			t.Errorf("the other worker sent %d (%v), want the message", n, err)
		}
	}}
	if _, err := f.worker(t, sender).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := f.store.ReadStream(ctx, stream, eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var records []eventstore.RecordedEvent
	for _, e := range evs {
		if e.Type == "account.email_sent" {
			records = append(records, e)
		}
	}
	if len(records) != 1 {
		t.Fatalf("%d records of the send, want 1", len(records))
	}
	if want := "email/password_reset/" + records[0].Metadata.CausationID; records[0].Metadata.CommandID != want {
		t.Errorf("the record's command id is %q, want %q", records[0].Metadata.CommandID, want)
	}
	var kept int
	if err := f.store.Pool().QueryRow(ctx, `SELECT count(*) FROM commands WHERE command_id LIKE 'email/%'`).Scan(&kept); err != nil || kept != 0 {
		t.Errorf("the commands table keeps %d e-mail records (%v), want none", kept, err)
	}
	if msgs := f.delivered(t); len(msgs) != 1 {
		t.Errorf("maildir holds %d messages, want 1", len(msgs))
	}
}

func TestOutbox_SendFailure_RetriedAfterLease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.requestReset(t)
	broken := failingSender{}
	if n, _ := f.worker(t, broken).RunOnce(context.Background()); n != 0 {
		t.Fatal("a failed send counted as sent")
	}
	if n, _ := f.worker(t, f.maildir).RunOnce(context.Background()); n != 0 {
		t.Fatal("a leased message was sent again before its lease ran out")
	}
	if err := f.clock.Advance(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := f.worker(t, f.maildir).RunOnce(context.Background()); n != 1 || err != nil {
		t.Fatalf("retry sent %d (%v), want 1", n, err)
	}
}

// Drain sends every pending message, a batch after another, and stops
// when none is left to claim or none of a batch went out (rule EML-1: each
// is sent and recorded once).
func TestOutbox_Drain_SendsEveryBatchThenStops(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	stream, _ := f.requestReset(t)
	f.moreResets(t, stream, 4)
	if n, err := f.workerBatching(t, failingSender{}, 2).Drain(ctx); n != 0 || err != nil {
		t.Fatalf("a drain whose sends all fail sent %d (%v), want 0 and a return", n, err)
	}
	if err := f.clock.Advance(2 * time.Minute); err != nil { // the failed runs' leases run out
		t.Fatal(err)
	}
	w := f.workerBatching(t, f.maildir, 2)
	if n, err := w.Drain(ctx); n != 5 || err != nil {
		t.Fatalf("drain sent %d (%v), want the 5 resets in 3 batches of 2", n, err)
	}
	if got := len(f.delivered(t)); got != 5 {
		t.Fatalf("%d messages delivered, want 5", got)
	}
	if n, err := w.RunOnce(ctx); n != 0 || err != nil {
		t.Fatalf("a run after the drain sent %d (%v), want none left", n, err)
	}
}

// slowSender sends, then moves clock on by took, as a slow mail server
// would have taken that long.
type slowSender struct {
	mail.Sender
	clock *clock.Simulated
	took  time.Duration
}

func (s slowSender) Send(ctx context.Context, m mail.Message) error {
	err := s.Sender.Send(ctx, m)
	if advanceErr := s.clock.Advance(s.took); advanceErr != nil {
		return advanceErr
	}
	return err
}

// rule EML-2: a run starts a send only in the first half of its lease, so
// that no send outlasts the lease while another worker claims and sends the
// same message; what it did not reach goes out in a later run, each message
// once.
func TestRule_EML2_NoSendStartsLateInItsLease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stream, _ := f.requestReset(t)
	f.moreResets(t, stream, 2)
	slow := slowSender{Sender: f.maildir, clock: f.clock, took: 40 * time.Second}
	one := func(c *outbox.Config) { c.Concurrency = 1 }
	if n, err := f.workerWith(t, slow, one).RunOnce(context.Background()); n != 1 || err != nil {
		t.Fatalf("a run of 40-s sends on a 1-min lease sent %d (%v), want 1: the others would have started past half the lease", n, err)
	}
	if n, _ := f.worker(t, f.maildir).RunOnce(context.Background()); n != 0 {
		t.Fatalf("another worker sent %d messages still leased", n)
	}
	if err := f.clock.Advance(30 * time.Second); err != nil { // the lease runs out
		t.Fatal(err)
	}
	if n, err := f.worker(t, f.maildir).RunOnce(context.Background()); n != 2 || err != nil {
		t.Fatalf("the next run sent %d (%v), want the 2 left", n, err)
	}
	if got := len(f.delivered(t)); got != 3 {
		t.Fatalf("%d messages delivered, want 3, each once", got)
	}
}

// rule EML-2: leases are measured on the lease clock: moving the engine's
// (simulated) clock on by days does not end them, so a second drainer on the
// same process cannot send a message the first is sending.
func TestRule_EML2_LeasesRunOnTheLeaseClock(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.requestReset(t)
	leases := clock.NewSimulated(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	onLeases := func(c *outbox.Config) { c.LeaseClock = leases }
	if n, _ := f.workerWith(t, failingSender{}, onLeases).RunOnce(context.Background()); n != 0 {
		t.Fatal("a failed send counted as sent")
	}
	if err := f.clock.Advance(48 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.workerWith(t, f.maildir, onLeases).RunOnce(context.Background()); n != 0 {
		t.Fatal("two days on the engine's clock ended a lease of one minute on the lease clock")
	}
	if err := leases.Advance(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := f.workerWith(t, f.maildir, onLeases).RunOnce(context.Background()); n != 1 || err != nil {
		t.Fatalf("after the lease sent %d (%v), want 1", n, err)
	}
}

// stuckSender gets no answer from its server: a send ends when its
// context does (or, to keep a failing test short, after giveUp), and
// reports when that was.
type stuckSender struct {
	ended  chan time.Time
	giveUp time.Duration
}

// wallClock is the machine's clock, which leases run on in production.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (s stuckSender) Send(ctx context.Context, _ mail.Message) error {
	select {
	case <-ctx.Done():
	case <-time.After(s.giveUp):
	}
	s.ended <- time.Now()
	return errors.New("smtp: no answer")
}

// rule EML-2: a send that would outlast its lease (a server that does not
// answer) is cut off before the lease ends, and is not counted as sent: no
// other worker can claim the message while the first still sends it.
func TestRule_EML2_NoSendOutlastsItsLease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.requestReset(t)
	const lease = 2 * time.Second
	stuck := stuckSender{ended: make(chan time.Time, 1), giveUp: 3 * lease}
	onLease := func(c *outbox.Config) { c.Lease, c.LeaseClock = lease, wallClock{} }
	started := time.Now()
	if n, _ := f.workerWith(t, stuck, onLease).RunOnce(context.Background()); n != 0 {
		t.Fatalf("a send that never ended counted %d as sent", n)
	}
	if ended := <-stuck.ended; ended.Sub(started) >= lease {
		t.Fatalf("the send ended %v after the claim, past its %v lease", ended.Sub(started), lease)
	}
}

type failingSender struct{}

func (failingSender) Send(context.Context, mail.Message) error {
	return errors.New("smtp: connection refused")
}

// rule EML-2, over a real SMTP wire: the reset e-mail arrives once with its
// Message-ID, although its first send failed and the outbox ran again.
func TestRule_EML2_ResetEmailOverSMTP_ArrivesOnceWithItsMessageID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stream, token := f.requestReset(t)
	server := mailtest.NewServer(t, mailtest.ServerConfig{Username: "subs", Password: "smtp-secret"})

	// No mail server listens yet: the first send fails and stays queued.
	down, err := mail.NewSMTP("smtp://127.0.0.1:1", "", mail.SMTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := f.worker(t, down).RunOnce(context.Background()); n != 0 {
		t.Fatal("a send to a closed port counted as sent")
	}
	if err := f.clock.Advance(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	up, err := mail.NewSMTP(server.URL(), "", mail.SMTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w := f.worker(t, up)
	for range 3 {
		if _, err := w.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := f.clock.Advance(2 * time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	got := server.Received()
	if len(got) != 1 {
		t.Fatalf("the SMTP server received %d messages, want 1", len(got))
	}
	evs, err := f.store.ReadStream(context.Background(), stream, eventstore.ReadStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "<" + evs[1].ID.String() + ".password_reset@subs.localhost>"
	msg, err := netmail.ReadMessage(bytes.NewReader(got[0].Raw))
	if err != nil {
		t.Fatal(err)
	}
	if id := msg.Header.Get("Message-ID"); id != want {
		t.Errorf("Message-ID %s, want %s (derived from the reset request)", id, want)
	}
	if !strings.Contains(mailtest.PlainText(t, string(got[0].Raw)), token) {
		t.Error("the delivered e-mail lacks the reset link")
	}
}

// crashAtSend sends, and at its crashAt-th send makes the run end as a
// crash would once that message is delivered.
type crashAtSend struct {
	mail.Sender
	cancel  context.CancelFunc
	crashAt int32
	sends   atomic.Int32
}

func (c *crashAtSend) Send(ctx context.Context, m mail.Message) error {
	err := c.Sender.Send(ctx, m)
	if c.sends.Add(1) == c.crashAt {
		c.cancel() // the process dies before this send is recorded
	}
	return err
}

// rule EML-2: over SMTP, which delivers a message as often as it is sent, a
// crash between a send and its record repeats that one message alone: the
// run's earlier sends were recorded each before the next, and the message
// repeated keeps its Message-ID.
func TestRule_EML2_CrashOverSMTPResendsOnlyTheMessageBetweenSendAndRecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stream, _ := f.requestReset(t)
	f.moreResets(t, stream, 2)
	server := mailtest.NewServer(t, mailtest.ServerConfig{})
	smtp, err := mail.NewSMTP(server.URL(), "", mail.SMTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	crashing := &crashAtSend{Sender: smtp, cancel: cancel, crashAt: 2}
	one := func(c *outbox.Config) { c.Concurrency = 1 }
	_, _ = f.workerWith(t, crashing, one).RunOnce(ctx)       // ends with the crash
	if err := f.clock.Advance(2 * time.Minute); err != nil { // the lease runs out
		t.Fatal(err)
	}
	// The restart counts the first message too when the projection has not
	// marked its row yet (it finds the send recorded and sends nothing).
	if _, err := f.workerWith(t, smtp, one).RunOnce(context.Background()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	deliveries := map[string]int{}
	for _, r := range server.Received() {
		deliveries[mailtest.MustParse(t, r.Raw).Header.Get("Message-ID")]++
	}
	var twice int
	for _, n := range deliveries {
		if n > 1 {
			twice++
		}
	}
	if len(deliveries) != 3 || twice != 1 || len(server.Received()) != 4 {
		t.Errorf("deliveries by Message-ID %v, want 3 messages, one of them (the crash's) twice", deliveries)
	}
}

// heldSender delivers each message once release is closed, telling started
// when it holds one.
type heldSender struct {
	mail.Sender
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *heldSender) Send(ctx context.Context, m mail.Message) error {
	h.once.Do(func() { close(h.started) })
	<-h.release
	return h.Sender.Send(ctx, m)
}

// rule TIM-2: a Drain that starts while another run of the same worker is
// sending (the serve loop's, during an advance of the test clock) returns
// only once that run's messages are out, so that the advance answers with
// every e-mail of its instants sent.
func TestRule_TIM2_DrainWaitsForTheWorkersRunInFlight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.requestReset(t)
	held := &heldSender{Sender: f.maildir, started: make(chan struct{}), release: make(chan struct{})}
	w := f.worker(t, held)
	loop := make(chan error, 1)
	go func() { _, err := w.RunOnce(context.Background()); loop <- err }()
	<-held.started // the loop's run claimed the message and is sending it

	drained := make(chan error, 1)
	go func() { _, err := w.Drain(context.Background()); drained <- err }()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while the loop's run was still sending", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(held.release)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if n := len(f.delivered(t)); n != 1 {
		t.Fatalf("%d messages delivered when Drain returned, want the loop's one", n)
	}
	if err := <-loop; err != nil {
		t.Fatal(err)
	}
}
