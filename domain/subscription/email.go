package subscription

import (
	"slices"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
)

// EmailSent: an e-mail about the subscription's renewal lifecycle went out
// (EML-1): a pre-billing notice, a reminder, a trial-ending notice, a
// receipt, a declined charge, a refund confirmation. Its Message-ID derives
// from Cause, the event that called for it, so it is recorded once per
// cause and kind (EML-2).
type EmailSent struct {
	Kind      string    `json:"kind"`
	Cause     uuid.UUID `json:"cause"`
	MessageID string    `json:"message_id"`
}

func (EmailSent) EventType() string { return "subscription.email_sent" }

// RecordEmailSent records that an e-mail about the subscription went out
// (EML-1, EML-2); recording it twice is a no-op.
type RecordEmailSent struct {
	Kind      string
	Cause     uuid.UUID
	MessageID string
}

func (RecordEmailSent) subscriptionCommand() {}

// sentKey names one e-mail: its kind and cause.
func sentKey(kind string, cause uuid.UUID) string { return kind + "/" + cause.String() }

// EmailSent reports whether the e-mail of kind caused by cause was sent.
func (s Subscription) EmailSent(kind string, cause uuid.UUID) bool {
	return slices.Contains(s.st.EmailsSent, sentKey(kind, cause))
}

func decideRecordEmailSent(s Subscription, c RecordEmailSent) []domain.Event {
	if s.EmailSent(c.Kind, c.Cause) {
		return nil
	}
	return []domain.Event{EmailSent(c)}
}

func evolveEmailSent(s Subscription, e EmailSent) Subscription {
	// A fresh slice: earlier states stay as they were.
	s.st.EmailsSent = append(slices.Clip(s.st.EmailsSent), sentKey(e.Kind, e.Cause))
	return s
}
