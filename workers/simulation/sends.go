package simulation

import (
	"context"
	"sync"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/workers/mail"
)

// sends is the simulation's sender: it delivers through the configured one
// and counts the messages delivered by kind and cause, so that the report's
// e-mail checks compare what went out with the events that called for it and
// the records of the sends (EML-1, EML-2): a source apart from both.
type sends struct {
	mail.Sender
	mu        sync.Mutex
	delivered map[sendKey]int
}

type sendKey struct {
	kind  string
	cause uuid.UUID
}

func newSends(s mail.Sender) *sends { return &sends{Sender: s, delivered: map[sendKey]int{}} }

// Send delivers m and counts it once delivered.
func (s *sends) Send(ctx context.Context, m mail.Message) error {
	if err := s.Sender.Send(ctx, m); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delivered[sendKey{m.Kind, m.CausationID}]++
	return nil
}

// DeliversOnce is the configured sender's (mail.DeliversOnce): counting
// changes nothing of how the outbox may record its sends.
func (s *sends) DeliversOnce() bool { return mail.DeliversOnce(s.Sender) }

// byKind returns how many causes had their e-mail delivered, by kind, and
// how many were delivered more than once.
func (s *sends) byKind() (causes map[string]int, twice int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	causes = map[string]int{}
	for k, n := range s.delivered {
		causes[k.kind]++
		if n > 1 {
			twice++
		}
	}
	return causes, twice
}
