package outbox

import (
	"context"
	"fmt"
	"sync"

	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
)

// records collects the records of a run's sends, to append them per kind
// of aggregate in one round trip each (HandleBatch) once every message of
// the run went out: for a sender that delivers each Message-ID once, which
// a crash before the records cannot make deliver twice (EML-2).
type records struct {
	mu            sync.Mutex
	accounts      recordBatch[account.Account, account.Command]
	orders        recordBatch[order.Order, order.Command]
	subscriptions recordBatch[subscription.Subscription, subscription.Command]
}

// recordBatch is the records on one kind of aggregate.
type recordBatch[S, C any] struct {
	cmds []eventstore.BatchCommand[S, C]
	msgs []int // the message of each command, by its index in the run
}

// add queues msg's record, cmd on stream from its state as loaded.
func add[S, C any](r *records, b *recordBatch[S, C], msg int, stream eventstore.StreamID, from eventstore.Loaded[S], cmd C, meta eventstore.CommandMeta) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b.cmds = append(b.cmds, eventstore.BatchCommand[S, C]{Stream: stream, From: from, Cmd: cmd, Meta: meta})
	b.msgs = append(b.msgs, msg)
}

// append records b's sends with h, and sets errs[msg] of each message
// whose send could not be recorded.
func (b *recordBatch[S, C]) append(ctx context.Context, h *eventstore.CommandHandler[S, C], errs []error) {
	if len(b.cmds) == 0 {
		return
	}
	for i, out := range h.HandleBatch(ctx, b.cmds) {
		if out.Err != nil {
			errs[b.msgs[i]] = fmt.Errorf("record the send: %w", out.Err)
		}
	}
}

// append records every send queued, and sets errs[msg] of each message
// whose send could not be recorded.
func (r *records) append(ctx context.Context, w *Worker, errs []error) {
	r.accounts.append(ctx, w.cfg.Accounts, errs)
	r.orders.append(ctx, w.cfg.Orders, errs)
	r.subscriptions.append(ctx, w.cfg.Subscriptions, errs)
}
