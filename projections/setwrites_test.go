package projections_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

// history is a stretch of the log as a projection is handed it: events of
// subscription (and account) streams, with their records.
type history struct {
	recs   []eventstore.RecordedEvent
	events []domain.Event
	at     time.Time
}

func (h *history) add(stream string, e domain.Event) {
	h.at = h.at.Add(time.Minute)
	h.recs = append(h.recs, eventstore.RecordedEvent{Position: int64(len(h.recs) + 1), StreamID: eventstore.StreamID(stream),
		Version: int64(len(h.recs) + 1), ID: uuid.New(), Type: e.EventType(), RecordedAt: h.at})
	h.events = append(h.events, e)
}

// The projections that write a batch's rows set-based (a statement per
// kind of write, not per event) leave their tables as applying the events
// one at a time does, however the log is cut into batches: an attempt
// requested and decided in one batch, or in two; a decline with no
// request; a refund after its charge; e-mails called for, addressed and
// marked sent in the same batch or a later one.
func TestBatchApplier_SetBasedWritesEqualEventByEvent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	charges, outbox := chargesHistory(), outboxHistory()
	for _, tc := range []struct {
		name  string
		p     projections.BatchApplier
		h     history
		query string
	}{
		// rule ARS-8: the ledger the reconciliation reads
		{"charges", projections.Charges{}, charges, `SELECT subscription_id, period, attempt, idempotency_key, status,
    coalesce(decline_code, '-'), coalesce(charge_id, '-'), amount_minor, currency, refunded_minor, charged_at FROM charges`},
		// rule EML-1: every e-mail called for, and which are sent
		{"email outbox", projections.EmailOutbox{}, outbox, `SELECT o.cause, o.kind, coalesce(o.account_id::text, '-'), o.data::text, o.created_at,
    coalesce(o.sent_at::text, '-') FROM email_outbox o`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oneByOne := make([][]int, len(tc.h.recs))
			for i := range oneByOne {
				oneByOne[i] = []int{i, i + 1}
			}
			want := applyInBatches(t, ctx, w, tc.p, tc.h, oneByOne, tc.query)
			if len(want) == 0 {
				t.Fatal("the events one by one wrote no row")
			}
			for cut := 0; cut <= len(tc.h.recs); cut++ {
				got := applyInBatches(t, ctx, w, tc.p, tc.h, [][]int{{0, cut}, {cut, len(tc.h.recs)}}, tc.query)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("batches [0,%d) and [%d,%d) wrote\n%v\nwant, as one by one,\n%v", cut, cut, len(tc.h.recs), got, want)
				}
			}
		})
	}
}

// applyInBatches applies h to p in the batches given (their [from, to)
// bounds) in a transaction it rolls back, and returns the rows query then
// reads, sorted.
func applyInBatches(t *testing.T, ctx context.Context, w *world, p projections.BatchApplier, h history, batches [][]int, query string) []string {
	t.Helper()
	var rows []string
	err := pgx.BeginFunc(ctx, w.store.Pool(), func(tx pgx.Tx) error {
		for _, b := range batches {
			if b[0] == b[1] {
				continue
			}
			if err := p.ApplyBatch(ctx, tx, h.recs[b[0]:b[1]], h.events[b[0]:b[1]]); err != nil {
				return err
			}
		}
		r, err := tx.Query(ctx, query+` ORDER BY 1, 2, 3`)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			v, err := r.Values()
			if err != nil {
				return err
			}
			rows = append(rows, fmt.Sprint(v))
		}
		if err := r.Err(); err != nil {
			return err
		}
		return errRollback
	})
	if err != errRollback {
		t.Fatal(err)
	}
	return rows
}

var errRollback = fmt.Errorf("rolled back")

func chargesHistory() history {
	h := history{at: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)}
	usd := money.New(4999, money.USD)
	a, b, c, d := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	request := func(id uuid.UUID, period, attempt int) {
		h.add(subscription.StreamName(id), subscription.ChargeRequested{Period: period, Attempt: attempt,
			IdempotencyKey: subscription.IdempotencyKey(id, period, attempt), Token: "tok", Amount: usd, At: h.at})
	}
	// a: charged, then refunded; b: declined by the gateway, then charged
	// at the retry; c: declined with no payment method, then charged;
	// d: requested, the outcome still pending.
	request(a, 1, 1)
	request(b, 1, 1)
	h.add(subscription.StreamName(a), subscription.ChargeSucceeded{Period: 1, Attempt: 1, ChargeID: "ch_a", Amount: usd, At: h.at})
	h.add(subscription.StreamName(b), subscription.ChargeDeclined{Period: 1, Attempt: 1, ChargeID: "ch_b1", DeclineCode: "card_declined", At: h.at})
	h.add(subscription.StreamName(c), subscription.ChargeDeclined{Period: 1, Attempt: 1, DeclineCode: "no_payment_method", At: h.at})
	h.add(subscription.StreamName(a), subscription.Refunded{ChargeID: "ch_a", Amount: money.New(1000, money.USD), At: h.at})
	request(b, 1, 2)
	request(c, 1, 2)
	request(d, 1, 1)
	h.add(subscription.StreamName(b), subscription.ChargeSucceeded{Period: 1, Attempt: 2, ChargeID: "ch_b2", Amount: usd, At: h.at})
	h.add(subscription.StreamName(c), subscription.ChargeSucceeded{Period: 1, Attempt: 2, ChargeID: "ch_c2", Amount: usd, At: h.at})
	return h
}

func outboxHistory() history {
	h := history{at: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)}
	usd := money.New(4999, money.USD)
	acct, other := uuid.New(), uuid.New()
	a, b := uuid.New(), uuid.New()
	// a is in an account from the start; b is registered in one midway,
	// so that the e-mail it called for before goes to no one, and the one
	// after to the account.
	h.add(subscription.StreamName(a), subscription.Registered{AccountID: acct, At: h.at})
	h.add(subscription.StreamName(a), subscription.ChargeSucceeded{Period: 1, Attempt: 1, ChargeID: "ch_a", Amount: usd, At: h.at})
	h.add(subscription.StreamName(b), subscription.RenewalNoticeIssued{Period: 1, Amount: usd, At: h.at})
	h.add(subscription.StreamName(a), subscription.EmailSent{Kind: projections.EmailRenewalReceipt, Cause: h.recs[1].ID, MessageID: "m1"})
	h.add(subscription.StreamName(b), subscription.Registered{AccountID: other, At: h.at})
	h.add(subscription.StreamName(b), subscription.ChargeDeclined{Period: 1, Attempt: 1, DeclineCode: "card_declined", At: h.at})
	h.add(account.StreamName(other), account.EmailSent{Kind: projections.EmailPasswordReset, Cause: uuid.New(), MessageID: "m2"})
	h.add(subscription.StreamName(b), subscription.EmailSent{Kind: projections.EmailChargeDeclined, Cause: h.recs[5].ID, MessageID: "m3"})
	return h
}
