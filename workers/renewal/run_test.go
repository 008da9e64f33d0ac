package renewal_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain/catalog"
)

// A run claims batch after batch until every subscription due is visited
// once, then stops after a claim short of a full batch, whether the last
// batch is full or not (rule ARS-2: each gets its pre-billing notice).
func TestRun_VisitsEveryDueSubscriptionBatchAfterBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		due  int
	}{{"two full batches of two", 4}, {"two full batches and one short", 5}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			token := w.card(t, "4242424242424242")
			var ids []uuid.UUID
			for range tc.due {
				ids = append(ids, w.subscribe(t, "NS-STD", catalog.Annual, token))
			}
			w.settle(t)
			if err := w.clock.Advance(340 * 24 * time.Hour); err != nil { // into the 30 days before the renewal
				t.Fatal(err)
			}
			res, err := w.workerBatching(t, w.gateway, 2).Run(context.Background(), w.clock.Now())
			if err != nil || res.Visited != tc.due || res.Failed != 0 {
				t.Fatalf("run: %+v, %v; want %d visited, none failed", res, err, tc.due)
			}
			for _, id := range ids {
				if types := w.eventTypes(t, id); !slices.Contains(types, "subscription.renewal_notice_issued") {
					t.Errorf("subscription %s was not given its notice: %v", id, types)
				}
			}
		})
	}
}
