package eventstore_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/eventstore"
)

// personalEvent carries a name, an e-mail address and a nested holder name.
func personalEvent(subject domain.DataSubject) eventstore.EventData {
	return eventstore.EventData{Type: "test.personal",
		Data: json.RawMessage(`{"name":"Ann Lee","email":"ann@example.com","method":{"holder_name":"Ann Lee","last4":"4242"},"n":7}`),
		Personal: &eventstore.PersonalData{Subject: subject, Fields: []domain.PersonalField{
			{Path: "name", Erased: domain.ErasedText}, {Path: "email"}, {Path: "method.holder_name", Erased: domain.ErasedText},
			{Path: "absent"}}}}
}

// storedData is an event's payload as the table holds it.
func storedData(t *testing.T, s *eventstore.Store, stream eventstore.StreamID) string {
	t.Helper()
	var data string
	if err := s.Pool().QueryRow(context.Background(), `SELECT string_agg(data::text, ' ') FROM events WHERE stream_id = $1`, string(stream)).Scan(&data); err != nil {
		t.Fatal(err)
	}
	return data
}

// rule AUD-5: personal fields are stored encrypted, read decrypted while the
// subject's key exists, read as erased once it is destroyed, and the hash
// chain still verifies.
func TestRule_AUD5_PersonalFieldsEncryptedAtRestAndShreddedByErasure(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ann := uuid.New()
	stream := eventstore.StreamID("account-" + ann.String())
	mustAppend(t, s, stream, eventstore.NoStream, []eventstore.EventData{personalEvent(domain.DataSubject{}), events(1)[0]}, opts())
	guest := eventstore.StreamID("order-" + uuid.NewString())
	mustAppend(t, s, guest, eventstore.NoStream, []eventstore.EventData{personalEvent(domain.DataSubject{Email: " Ann@Example.com"})}, opts())

	for _, st := range []eventstore.StreamID{stream, guest} {
		stored := storedData(t, s, st)
		if strings.Contains(stored, "Ann") || strings.Contains(stored, "ann@") {
			t.Fatalf("stored payload of %s holds personal data: %s", st, stored)
		}
		if !strings.Contains(stored, `"last4": "4242"`) || !strings.Contains(stored, `"n": 7`) {
			t.Fatalf("stored payload of %s lost its other fields: %s", st, stored)
		}
		got := mustReadStream(t, s, st)[0]
		var v struct {
			Name, Email string
			Method      struct {
				HolderName string `json:"holder_name"`
			}
			N int
		}
		if err := json.Unmarshal(got.Data, &v); err != nil || v.Name != "Ann Lee" || v.Email != "ann@example.com" || v.Method.HolderName != "Ann Lee" || v.N != 7 {
			t.Fatalf("read %s: %+v %v (%s)", st, v, err, got.Data)
		}
	}

	n, err := s.ErasePersonalData(ctx, domain.DataSubject{Account: ann}, domain.DataSubject{Email: "ann@example.com"})
	if err != nil || n != 2 {
		t.Fatalf("erase: %d keys, %v; want 2", n, err)
	}
	for _, st := range []eventstore.StreamID{stream, guest} {
		got := string(mustReadStream(t, s, st)[0].Data)
		want := `{"email":null,"method":{"holder_name":"[erased]","last4":"4242"},"n":7,"name":"[erased]"}`
		if got != want {
			t.Errorf("after erasure %s reads %s, want %s", st, got, want)
		}
	}
	all := readAllUntil(t, s, 3, 5e9)
	for _, e := range all {
		if strings.Contains(string(e.Data), "Ann") {
			t.Errorf("ReadAll after erasure shows %s", e.Data)
		}
	}
	report, err := s.Verify(ctx, nil)
	if err != nil || report.Broken != nil || report.Events != 3 {
		t.Fatalf("verify after erasure: %+v, %v", report, err)
	}
	if n, err := s.ErasePersonalData(ctx, domain.DataSubject{Account: ann}); err != nil || n != 0 {
		t.Fatalf("erase again: %d, %v; want 0", n, err)
	}
}

// rule AUD-5: a personal reservation key (an e-mail address, ACC-1) is kept
// only as a keyed hash, and found by the same key.
func TestRule_AUD5_PersonalReservationKeptAsKeyedHash(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	stream := eventstore.StreamID("account-" + uuid.NewString())
	email := eventstore.Reservation{Scope: "account-email", Key: "ann@example.com", Personal: true}
	o := opts()
	o.Reserve = []eventstore.Reservation{email}
	mustAppend(t, s, stream, eventstore.NoStream, events(1), o)
	var key string
	if err := s.Pool().QueryRow(ctx, `SELECT key FROM reservations WHERE stream_id = $1`, string(stream)).Scan(&key); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(key, "ann") || len(key) != 64 {
		t.Fatalf("reservation key %q is not a keyed hash", key)
	}
	if owner, found, err := s.ReservationOwner(ctx, email); err != nil || !found || owner != stream {
		t.Fatalf("owner: %s %v %v", owner, found, err)
	}
	o.Reserve, o.Release = nil, []eventstore.Reservation{email}
	mustAppend(t, s, stream, 1, events(1), o)
	if _, found, err := s.ReservationOwner(ctx, email); err != nil || found {
		t.Fatalf("released reservation still found: %v %v", found, err)
	}
}

// rule AUD-5: a batch of appends gets its subjects' data keys together:
// appends racing to make the same new subjects' keys end with one key per
// subject, and every event of every append reads decrypted.
func TestRule_AUD5_BatchesRacingForNewSubjectsShareOneKeyEach(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	subjects := make([]uuid.UUID, 5)
	for i := range subjects {
		subjects[i] = uuid.New()
	}
	// An account stream each; each of the racing batches appends to every
	// subject's stream, two events of the subject in one of its appends.
	batch := func(racer int) []eventstore.AppendRequest {
		var reqs []eventstore.AppendRequest
		for _, subject := range subjects {
			stream := eventstore.StreamID("account-" + subject.String() + "-" + string(rune('a'+racer)))
			reqs = append(reqs, eventstore.AppendRequest{Stream: stream, Expected: eventstore.NoStream, Options: opts(),
				Events: []eventstore.EventData{personalEvent(domain.DataSubject{Account: subject}), personalEvent(domain.DataSubject{Account: subject})}})
		}
		return reqs
	}
	errs := make(chan error, 4)
	for racer := range 4 {
		go func() {
			_, err := s.AppendBatch(ctx, batch(racer))
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var keys int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM personal_data_keys`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if keys != len(subjects) {
		t.Errorf("%d data keys for %d subjects", keys, len(subjects))
	}
	for _, subject := range subjects {
		for racer := range 4 {
			for _, e := range mustReadStream(t, s, eventstore.StreamID("account-"+subject.String()+"-"+string(rune('a'+racer)))) {
				if !strings.Contains(string(e.Data), `"name":"Ann Lee"`) {
					t.Fatalf("event of %s reads %s", subject, e.Data)
				}
			}
		}
	}
}
