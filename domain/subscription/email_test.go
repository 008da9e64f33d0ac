package subscription_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain/decidertest"
	"github.com/subs-engine/subs/domain/subscription"
)

// rule EML-2: a renewal e-mail's send is recorded once per cause and kind;
// recording it again changes nothing, and another kind or cause is its own.
func TestRule_EML2_SubscriptionRecordsEachEmailOnce(t *testing.T) {
	created := subscription.Created{SubscriptionID: uuid.New(), Term: "annual", StartsAt: now, ExpiresAt: now.AddDate(1, 0, 0)}
	cause := uuid.New()
	sent := subscription.EmailSent{Kind: "renewal_notice", Cause: cause, MessageID: "<" + cause.String() + ".renewal_notice@subs.localhost>"}
	decidertest.Given(t, subscription.Decider, created).When(subscription.RecordEmailSent(sent)).Then(sent)
	decidertest.Given(t, subscription.Decider, created, sent).When(subscription.RecordEmailSent(sent)).ThenNothing()
	other := subscription.EmailSent{Kind: "renewal_receipt", Cause: cause, MessageID: "<" + cause.String() + ".renewal_receipt@subs.localhost>"}
	decidertest.Given(t, subscription.Decider, created, sent).When(subscription.RecordEmailSent(other)).Then(other)
	decidertest.Given(t, subscription.Decider).When(subscription.RecordEmailSent(sent)).ThenError(subscription.ErrNotFound)
}
