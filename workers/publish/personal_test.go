package publish_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/publish"
)

// rule AUD-5: once an account's data key is destroyed, the events published
// afterwards carry its personal fields as erased, never in plain text; the
// other fields are published as they were.
func TestRule_AUD5_NoPersonalDataPublishedAfterErasure(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ann := uuid.New()
	stream := eventstore.StreamID("account-" + ann.String())
	personal := eventstore.EventData{Type: "account.registered",
		Data:     json.RawMessage(`{"email":"ann@example.com","name":"Ann Lee","country":"DE"}`),
		Personal: &eventstore.PersonalData{Fields: []domain.PersonalField{{Path: "email"}, {Path: "name", Erased: domain.ErasedText}}}}
	guestOrder := eventstore.EventData{Type: "order.placed", Data: json.RawMessage(`{"buyer_email":"ann@example.com","total":5999}`),
		Personal: &eventstore.PersonalData{Subject: domain.DataSubject{Email: "ann@example.com"},
			Fields: []domain.PersonalField{{Path: "buyer_email", Erased: domain.ErasedText}}}}
	o := eventstore.AppendOptions{RecordedAt: t0, Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem}}
	if _, err := s.Append(context.Background(), stream, eventstore.NoStream, []eventstore.EventData{personal}, o); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "order-"+eventstore.StreamID(uuid.NewString()), eventstore.NoStream, []eventstore.EventData{guestOrder}, o); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ErasePersonalData(context.Background(), domain.DataSubject{Account: ann}, domain.DataSubject{Email: "ann@example.com"}); err != nil || n != 2 {
		t.Fatalf("erase: %d keys, %v", n, err)
	}
	mustAppend(t, s, stream, 1)

	srv := MustStartNATS(t, t.TempDir(), -1)
	StartPublisher(t, publish.Config{Store: s, Connect: func() (*nats.Conn, error) { return srv.Connect() }})
	js := mustJetStream(t, srv.ClientURL())
	mustStreamExists(t, js, 10*time.Second)
	got := mustFetch(t, mustDurable(t, js, "aud5"), 3, 10*time.Second)
	bodies := map[string]string{}
	for _, r := range got {
		for k, v := range r.header {
			if strings.Contains(strings.ToLower(strings.Join(v, " ")), "ann") {
				t.Errorf("header %s of %s shows personal data: %v", k, r.subject, v)
			}
		}
		if b := string(r.data); strings.Contains(b, "ann@") || strings.Contains(b, "Ann") {
			t.Errorf("message %s shows personal data: %s", r.subject, b)
		}
		bodies[r.subject] = string(r.data)
	}
	if b := bodies["subs.events.account.registered"]; b != `{"country":"DE","email":null,"name":"[erased]"}` {
		t.Errorf("account.registered published as %s", b)
	}
	if b := bodies["subs.events.order.placed"]; b != `{"buyer_email":"[erased]","total":5999}` {
		t.Errorf("order.placed published as %s", b)
	}
}
