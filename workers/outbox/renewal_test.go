package outbox_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/mail/mailtest"
	"github.com/subs-engine/subs/workers/outbox"
)

// renewals is a fixture with subscriptions going through their renewal
// lifecycle, as the renewal worker would drive them.
type renewals struct {
	*fixture
	subs    *eventstore.CommandHandler[subscription.Subscription, subscription.Command]
	account uuid.UUID
	t       *testing.T
}

func newRenewals(t *testing.T) *renewals {
	t.Helper()
	f := newFixture(t)
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	subs, err := eventstore.NewCommandHandler(subscription.Decider, eventstore.HandlerConfig{Store: f.store, Types: types, Clock: f.clock, Policy: policy.Default()})
	if err != nil {
		t.Fatal(err)
	}
	r := &renewals{fixture: f, subs: subs, account: uuid.New(), t: t}
	email, _ := account.ParseEmail("ann@example.com")
	name, _ := account.ParseName("Ann Lee")
	country, _ := account.ParseCountry("US")
	r.accountCmd(account.Register{AccountID: r.account, Email: email, Name: name, Country: country, PasswordHash: "h"})
	return r
}

func (r *renewals) accountCmd(cmd account.Command) {
	r.t.Helper()
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: r.account.String()}}
	if _, err := r.accounts.Handle(context.Background(), eventstore.StreamID("account-"+r.account.String()), cmd, meta); err != nil {
		r.t.Fatal(err)
	}
}

var usd89 = func() money.Money {
	usd, _ := money.ParseCurrency("USD")
	return money.New(8999, usd)
}()

// create makes a Norton Security Deluxe subscription of term, registered
// in the fixture's account, starting now.
func (r *renewals) create(term string, autoRenew bool) uuid.UUID {
	r.t.Helper()
	key, err := subscription.NewProductKey(rand.Reader)
	if err != nil {
		r.t.Fatal(err)
	}
	serial, err := subscription.NewSerialNumber(rand.Reader)
	if err != nil {
		r.t.Fatal(err)
	}
	id, now := uuid.New(), r.clock.Now()
	expires := now.AddDate(1, 0, 0)
	if term == "trial" {
		expires = now.Add(policy.Default().TrialLength)
	}
	r.cmd(id, subscription.Create{Created: subscription.Created{SubscriptionID: id, Product: "NS-DLX", ProductName: "Norton Security Deluxe",
		Term: term, Platform: "windows", Seats: 5, Registrable: true, Key: key, Serial: serial, StartsAt: now, ExpiresAt: expires,
		AutoRenew: autoRenew, Storefront: "US", Price: usd89, PaymentToken: "tok_card_1"}})
	r.cmd(id, subscription.Register{AccountID: r.account})
	return id
}

// cmd runs a subscription command as the renewal worker would.
func (r *renewals) cmd(id uuid.UUID, cmd subscription.Command) []eventstore.RecordedEvent {
	r.t.Helper()
	meta := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem, ActorID: "renewal-worker"}}
	stream := eventstore.StreamID(subscription.StreamName(id))
	out, err := r.subs.Handle(context.Background(), stream, cmd, meta)
	if err != nil {
		r.t.Fatal(err)
	}
	recs, err := r.store.ReadStream(context.Background(), stream, eventstore.ReadStreamOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	var appended []eventstore.RecordedEvent
	for _, rec := range recs {
		if len(out.Events) > 0 && rec.Version >= out.Append.FirstVersion {
			appended = append(appended, rec)
		}
	}
	return appended
}

func (r *renewals) advanceTo(t time.Time) {
	r.t.Helper()
	if err := r.clock.Advance(t.Sub(r.clock.Now())); err != nil {
		r.t.Fatal(err)
	}
}

// caughtUp waits until the outbox projection has seen the whole log.
func (r *renewals) caughtUp() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	head, err := r.store.Head(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.runner.WaitFor(ctx, head); err != nil {
		r.t.Fatal(err)
	}
}

func (r *renewals) worker(sender mail.Sender) *outbox.Worker {
	r.t.Helper()
	templates, err := mail.NewTemplates()
	if err != nil {
		r.t.Fatal(err)
	}
	w, err := outbox.New(outbox.Config{Store: r.store, Accounts: r.accounts, Subscriptions: r.subs, Sender: sender, Templates: templates,
		Clock: r.clock, Policy: policy.Default(), SecretKey: secret, PublicURL: "https://account.example.com"})
	if err != nil {
		r.t.Fatal(err)
	}
	return w
}

// emailsSent returns the subscription.email_sent events of subscription
// id by kind.
func (r *renewals) emailsSent(id uuid.UUID) map[string]eventstore.RecordedEvent {
	r.t.Helper()
	recs, err := r.store.ReadStream(context.Background(), eventstore.StreamID(subscription.StreamName(id)), eventstore.ReadStreamOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]eventstore.RecordedEvent{}
	for _, rec := range recs {
		if rec.Type == "subscription.email_sent" {
			var sent subscription.EmailSent
			if err := json.Unmarshal(rec.Data, &sent); err != nil {
				r.t.Fatal(err)
			}
			if _, dup := out[sent.Kind]; dup {
				r.t.Errorf("%s recorded twice on %s", sent.Kind, id)
			}
			out[sent.Kind] = rec
		}
	}
	return out
}

// rule EML-1: each e-mail of the renewal lifecycle — pre-billing notice,
// card warning, charge declined, renewal receipt, refund confirmation,
// manual-renewal reminder, trial ending — is caused by its event, states
// that event's facts, goes to the account's address and is recorded as an
// event on the subscription, caused by the event that called for it.
func TestRule_EML1_RenewalEmailsStateTheirFactsAndAreRecorded(t *testing.T) {
	t.Parallel()
	r := newRenewals(t)
	start := r.clock.Now() // March 1, 2027
	annual := r.create("annual", true)
	manual := r.create("annual", false)
	trial := r.create("trial", true)
	expires := start.AddDate(1, 0, 0)
	causes := map[string]uuid.UUID{} // kind → causing event

	r.advanceTo(start.Add(27 * 24 * time.Hour)) // 3 days before the trial ends (TRI-3)
	causes["trial_ending"] = r.cmd(trial, subscription.RunDue{})[0].ID
	r.advanceTo(expires.AddDate(0, 0, -30))
	expiring, err := payment.NewCardMethod("tok_card_2", payment.OtherBrand, "4242", 1, 2028, "Ann Lee")
	if err != nil {
		t.Fatal(err)
	}
	notice := r.cmd(annual, subscription.RunDue{Method: expiring})
	if len(notice) != 2 {
		t.Fatalf("notice time appended %d events, want the notice and the card warning", len(notice))
	}
	causes["renewal_notice"], causes["card_expiring"] = notice[0].ID, notice[1].ID
	causes["renewal_reminder"] = r.cmd(manual, subscription.RunDue{})[0].ID
	r.advanceTo(expires.AddDate(0, 0, -7))
	r.cmd(annual, subscription.RunDue{})
	causes["charge_declined"] = r.cmd(annual, subscription.RecordChargeOutcome{Period: 1, Attempt: 1,
		Outcome: payment.ChargeOutcome{ChargeID: "ch_1", Status: payment.Declined, DeclineCode: payment.CodeCardDeclined, Amount: usd89}})[0].ID
	r.advanceTo(expires.AddDate(0, 0, -6))
	r.cmd(annual, subscription.RunDue{})
	causes["renewal_receipt"] = r.cmd(annual, subscription.RecordChargeOutcome{Period: 1, Attempt: 2,
		Outcome: payment.ChargeOutcome{ChargeID: "ch_2", Status: payment.Succeeded, Amount: usd89}})[0].ID
	r.cmd(annual, subscription.RequestRefund{AccountID: r.account})
	causes["refund_confirmation"] = r.cmd(annual, subscription.RecordRefund{
		Outcome: payment.RefundOutcome{RefundID: "re_1", ChargeID: "ch_2", Amount: usd89}})[0].ID

	r.caughtUp()
	w := r.worker(r.maildir)
	if n, err := w.RunOnce(context.Background()); err != nil || n != 7 {
		t.Fatalf("the outbox sent %d (%v), want 7 e-mails", n, err)
	}
	r.caughtUp()
	if n, err := w.RunOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("a second run sent %d (%v)", n, err)
	}

	want := map[string][]string{
		"renewal_notice":      {"will renew on March 1, 2028 for USD 89.99", "one more annual term on March 1, 2028", "charged on February 23, 2028"},
		"card_expiring":       {"card ending 4242", "expires 01/2028", "charged on\nFebruary 23, 2028", "https://account.example.com/account/billing"},
		"charge_declined":     {"update your billing information", "declined\n(card_declined)", "try again on February 24, 2028"},
		"renewal_receipt":     {"renewed until March 1, 2029", "Amount charged: USD 89.99", "Now expires on: March 1, 2029"},
		"refund_confirmation": {"Refund of USD 89.99", "now expires on March 1, 2028", "automatic renewal is off"},
		"renewal_reminder":    {"expires on March 1, 2028", "in 30 days, and automatic renewal is off"},
		"trial_ending": {"trial ends on March 31, 2027", "standard price of USD 89.99", "charged on March 31, 2027",
			"to the card in\nyour account's billing information or, if it has none, to the card you gave"}, // TRI-4: the account's card first
	}
	msgs := r.delivered(t)
	if len(msgs) != len(want) {
		t.Fatalf("maildir holds %d messages, want %d", len(msgs), len(want))
	}
	sent := map[uuid.UUID]map[string]eventstore.RecordedEvent{annual: r.emailsSent(annual), manual: r.emailsSent(manual), trial: r.emailsSent(trial)}
	for kind, facts := range want {
		messageID := mail.MessageID(causes[kind], kind, "")
		var body string
		for _, m := range msgs {
			if strings.Contains(m, "Message-ID: "+messageID) {
				body = strings.ReplaceAll(mailtest.PlainText(t, m), "\r\n", "\n")
				if !strings.Contains(m, "To: \"Ann Lee\" <ann@example.com>") {
					t.Errorf("%s not addressed to the account", kind)
				}
			}
		}
		if body == "" {
			t.Errorf("no %s e-mail with Message-ID %s", kind, messageID)
			continue
		}
		for _, f := range facts {
			if !strings.Contains(body, f) && !strings.Contains(subjectOf(msgs, messageID), f) {
				t.Errorf("%s lacks %q:\n%s", kind, f, body)
			}
		}
		var rec eventstore.RecordedEvent
		for _, byKind := range sent {
			if e, ok := byKind[kind]; ok {
				rec = e
			}
		}
		if rec.Metadata.CausationID != causes[kind].String() {
			t.Errorf("%s recorded with causation %q, want %s", kind, rec.Metadata.CausationID, causes[kind])
		}
	}
}

// subjectOf is the Subject header of the message with messageID.
func subjectOf(msgs []string, messageID string) string {
	for _, m := range msgs {
		if strings.Contains(m, "Message-ID: "+messageID) {
			for line := range strings.SplitSeq(m, "\n") {
				if s, ok := strings.CutPrefix(line, "Subject: "); ok {
					return strings.TrimSpace(s)
				}
			}
		}
	}
	return ""
}

// rule EML-2: a renewal e-mail is sent at most once per cause; a crash
// between its send and its record resends that one message with the same
// Message-ID, and the send is recorded once.
func TestRule_EML2_RenewalEmailCrashBetweenSendAndRecordResendsTheSameMessageID(t *testing.T) {
	t.Parallel()
	r := newRenewals(t)
	manual := r.create("annual", false)
	r.advanceTo(r.clock.Now().AddDate(1, 0, -30))
	r.cmd(manual, subscription.RunDue{}) // the reminder (ARS-3)
	r.caughtUp()

	ctx, cancel := context.WithCancel(context.Background())
	crashing := &crashAfterSend{Sender: r.maildir, cancel: cancel}
	if n, _ := r.worker(crashing).RunOnce(ctx); n != 0 {
		t.Fatalf("the crashed run reported %d sent", n)
	}
	if err := r.clock.Advance(2 * time.Minute); err != nil { // the lease runs out
		t.Fatal(err)
	}
	if n, err := r.worker(r.maildir).RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("restart sent %d (%v), want the one message again", n, err)
	}
	r.caughtUp()
	if n, _ := r.worker(r.maildir).RunOnce(context.Background()); n != 0 {
		t.Fatal("a recorded send was repeated")
	}
	if msgs := r.delivered(t); len(msgs) != 1 {
		t.Fatalf("maildir holds %d messages, want 1 (same Message-ID)", len(msgs))
	}
	if crashing.sends.Load() != 1 {
		t.Fatalf("crashing sender used %d times", crashing.sends.Load())
	}
	if n := len(r.emailsSent(manual)); n != 1 {
		t.Fatalf("%d sends recorded, want 1", n)
	}
}

// rule ARS-3 (and EML-1): a reminder states the days actually left. Renewal
// turned off 20 days before expiry, after the 30-day reminder's instant,
// gets its reminder at once, saying 20 days, not 30.
func TestRule_ARS3_LateReminderStatesTheDaysLeft(t *testing.T) {
	t.Parallel()
	r := newRenewals(t)
	id := r.create("annual", true)
	expires := r.clock.Now().AddDate(1, 0, 0)
	r.advanceTo(expires.AddDate(0, 0, -20))
	r.cmd(id, subscription.SetAutoRenewal{AccountID: r.account, On: false})
	if events := r.cmd(id, subscription.RunDue{}); len(events) != 1 || events[0].Type != "subscription.renewal_reminder_issued" {
		t.Fatalf("renewal off 20 days before expiry appended %+v, want the reminder", events)
	}
	r.caughtUp()
	if n, err := r.worker(r.maildir).RunOnce(context.Background()); err != nil || n != 1 {
		t.Fatalf("the outbox sent %d (%v), want the reminder", n, err)
	}
	msgs := r.delivered(t)
	if len(msgs) != 1 {
		t.Fatalf("maildir holds %d messages, want 1", len(msgs))
	}
	body := strings.ReplaceAll(mailtest.PlainText(t, msgs[0]), "\r\n", "\n")
	if !strings.Contains(body, "in 20 days, and automatic renewal is off") {
		t.Fatalf("the reminder does not say 20 days:\n%s", body)
	}
}

// rule EML-1 with AUD-5: an erased account gets no renewal e-mail.
func TestRule_EML1_ErasedAccountGetsNoRenewalEmail(t *testing.T) {
	t.Parallel()
	r := newRenewals(t)
	manual := r.create("annual", false)
	r.accountCmd(account.Erase{})
	r.advanceTo(r.clock.Now().AddDate(1, 0, -30))
	r.cmd(manual, subscription.RunDue{})
	r.caughtUp()
	if n, err := r.worker(r.maildir).RunOnce(context.Background()); err != nil || n != 0 {
		t.Fatalf("sent %d (%v) to an erased account", n, err)
	}
	if msgs := r.delivered(t); len(msgs) != 0 {
		t.Fatalf("maildir holds %d messages", len(msgs))
	}
}
