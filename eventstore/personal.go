package eventstore

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/domain"
)

// PersonalData says which fields of an event's payload are personal data,
// and whose (AUD-5). EventTypes.Encode fills it in for events that implement
// domain.Personal.
type PersonalData struct {
	Subject domain.DataSubject
	Fields  []domain.PersonalField
}

// envelopeKey is the one key of the JSON object that replaces a personal
// field in the stored payload:
//
//	{"encrypted_personal_data": {"key_id": "…", "ciphertext": "…", "erased": …}}
//
// ciphertext is base64 of nonce ‖ AES-256-GCM(the field's JSON) under the
// data key key_id, with key_id and the field's path as additional data;
// erased is what the field reads as once the key is destroyed. Readers
// decrypt it while the key exists. The hash chain covers this stored form,
// so destroying the key never breaks verification.
const envelopeKey = "encrypted_personal_data"

type envelope struct {
	KeyID      uuid.UUID `json:"key_id"`
	Ciphertext []byte    `json:"ciphertext"`
	Erased     any       `json:"erased"`
}

// personalData encrypts personal fields as events are appended, decrypts
// them as they are read, keys reservations of personal values by a keyed
// hash, and destroys data keys. Data keys live in table personal_data_keys,
// one per data subject, wrapped (AES-256-GCM) under a key derived from the
// store's secret key. Keys are not cached: once destroyed, no reader in any
// process can decrypt with it again.
type personalData struct {
	pool       *pgxpool.Pool
	wrap       cipher.AEAD
	subjectMAC []byte // names data subjects given by e-mail address
	reserveMAC []byte // hashes personal reservation keys
}

func newPersonalData(pool *pgxpool.Pool, secret []byte) *personalData {
	wrap, err := newAEAD(derive(secret, "subs/eventstore/data-key-wrap/v1"))
	if err != nil {
		panic(err) // a 32-byte key always makes an AES-GCM cipher
	}
	return &personalData{pool: pool, wrap: wrap,
		subjectMAC: derive(secret, "subs/eventstore/data-subject/v1"),
		reserveMAC: derive(secret, "subs/eventstore/personal-reservation/v1")}
}

// derive returns a 32-byte key for purpose from secret (HMAC-SHA-256 as a
// PRF).
func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// keyedHash is HMAC-SHA-256(key, s) in hex.
func keyedHash(key []byte, s string) string { return hex.EncodeToString(derive(key, s)) }

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// normalEmail is an address as data subject names see it: trimmed and
// lower-cased, as the domain normalizes user names (ACC-1).
func normalEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// subject names the owner of a data key: the account's stream, or a keyed
// hash of an e-mail address (no address in plain text), or else stream.
func (p *personalData) subject(stream StreamID, ds domain.DataSubject) string {
	switch {
	case ds.Account != uuid.Nil:
		return "account-" + ds.Account.String()
	case ds.Email != "":
		return "email-" + keyedHash(p.subjectMAC, normalEmail(ds.Email))
	}
	return string(stream)
}

// reservations returns rs with every personal key replaced by its keyed
// hash.
func (p *personalData) reservations(rs []Reservation) []Reservation {
	if len(rs) == 0 {
		return nil
	}
	out := make([]Reservation, len(rs))
	for i, r := range rs {
		out[i] = p.reservation(r)
	}
	return out
}

func (p *personalData) reservation(r Reservation) Reservation {
	if r.Personal {
		r.Key = keyedHash(p.reserveMAC, r.Scope+"\x00"+r.Key)
	}
	return r
}

// dataKey is a subject's key, to seal its personal fields with.
type dataKey struct {
	id  uuid.UUID
	key []byte
}

// dataKeys returns the data keys of subjects, each made on first use, in
// a query or two for all of them (three when another append made some of
// them meanwhile). It commits on its own: a key whose append then fails
// encrypts nothing and costs a row.
func (p *personalData) dataKeys(ctx context.Context, subjects []string) (map[string]dataKey, error) {
	keys := make(map[string]dataKey, len(subjects))
	if len(subjects) == 0 {
		return keys, nil
	}
	if err := p.readKeys(ctx, subjects, keys); err != nil {
		return nil, err
	}
	var missing []string
	for _, subject := range subjects {
		if _, ok := keys[subject]; !ok && !slices.Contains(missing, subject) {
			missing = append(missing, subject)
		}
	}
	if len(missing) == 0 {
		return keys, nil
	}
	ids, wrapped := make([]uuid.UUID, len(missing)), make([][]byte, len(missing))
	made := make(map[string]dataKey, len(missing))
	for i, subject := range missing {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		nonce := make([]byte, p.wrap.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		ids[i], wrapped[i], made[subject] = id, p.wrap.Seal(nonce, nonce, key, id[:]), dataKey{id: id, key: key}
	}
	rows, err := p.pool.Query(ctx, `INSERT INTO personal_data_keys (key_id, subject, wrapped_key)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[])
ON CONFLICT (subject) DO NOTHING RETURNING subject`, ids, missing, wrapped)
	if err != nil {
		return nil, fmt.Errorf("eventstore: data keys: %w", err)
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("eventstore: data keys: %w", err)
	}
	for _, subject := range inserted {
		keys[subject] = made[subject]
	}
	if len(inserted) == len(missing) {
		return keys, nil
	}
	// Another append made some of the keys meanwhile: use those.
	if err := p.readKeys(ctx, missing, keys); err != nil {
		return nil, err
	}
	for _, subject := range missing {
		if _, ok := keys[subject]; !ok {
			return nil, fmt.Errorf("eventstore: data key of %s: made and lost", subject)
		}
	}
	return keys, nil
}

// readKeys reads the stored data keys of subjects into keys.
func (p *personalData) readKeys(ctx context.Context, subjects []string, keys map[string]dataKey) error {
	rows, err := p.pool.Query(ctx, `SELECT subject, key_id, wrapped_key FROM personal_data_keys WHERE subject = ANY($1)`, subjects)
	if err != nil {
		return fmt.Errorf("eventstore: data keys: %w", err)
	}
	var (
		subject string
		id      uuid.UUID
		wrapped []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&subject, &id, &wrapped}, func() error {
		key, err := p.unwrap(id, wrapped)
		keys[subject] = dataKey{id: id, key: key}
		return err
	})
	if err != nil {
		return fmt.Errorf("eventstore: data keys: %w", err)
	}
	return nil
}

func (p *personalData) unwrap(id uuid.UUID, wrapped []byte) ([]byte, error) {
	n := p.wrap.NonceSize()
	if len(wrapped) < n {
		return nil, fmt.Errorf("eventstore: data key %s is truncated", id)
	}
	key, err := p.wrap.Open(nil, wrapped[:n], wrapped[n:], id[:])
	if err != nil {
		return nil, fmt.Errorf("eventstore: unwrap data key %s (was the secret key changed?): %w", id, err)
	}
	return key, nil
}

// subjects appends the subjects of events' personal fields to into.
func (p *personalData) subjects(into []string, stream StreamID, events []EventData) []string {
	for _, e := range events {
		if e.Personal != nil && len(e.Personal.Fields) > 0 {
			into = append(into, p.subject(stream, e.Personal.Subject))
		}
	}
	return into
}

// seal returns events with the personal fields of each encrypted under its
// subject's data key, from keys (dataKeys of their subjects).
func (p *personalData) seal(stream StreamID, events []EventData, keys map[string]dataKey) ([]EventData, error) {
	var out []EventData
	for i, e := range events {
		if e.Personal == nil || len(e.Personal.Fields) == 0 {
			continue
		}
		if out == nil {
			out = slices.Clone(events)
		}
		k := keys[p.subject(stream, e.Personal.Subject)]
		var err error
		if out[i].Data, err = sealFields(e.Data, e.Personal.Fields, k.id, k.key); err != nil {
			return nil, fmt.Errorf("eventstore: append to %s: event %d (%s): %w", stream, i, e.Type, err)
		}
	}
	if out == nil {
		return events, nil
	}
	return out, nil
}

func sealFields(data json.RawMessage, fields []domain.PersonalField, id uuid.UUID, key []byte) (json.RawMessage, error) {
	doc, err := decodeJSON(data)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	for _, f := range fields {
		parent, name := lookup(doc, f.Path)
		v, ok := parent[name]
		if !ok || v == nil {
			continue
		}
		plain, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		parent[name] = map[string]any{envelopeKey: envelope{KeyID: id, Erased: f.Erased,
			Ciphertext: aead.Seal(nonce, nonce, plain, additionalData(id, f.Path))}}
	}
	return json.Marshal(doc)
}

// lookup returns the object holding the field at the dotted path, and the
// field's name; a missing parent is an empty object.
func lookup(doc any, path string) (map[string]any, string) {
	obj, _ := doc.(map[string]any)
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		obj, _ = obj[p].(map[string]any)
	}
	return obj, parts[len(parts)-1]
}

func additionalData(id uuid.UUID, path string) []byte {
	return append(id[:len(id):len(id)], path...)
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // amounts and versions stay exact
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// reveal decrypts the personal fields of events in place; a field whose
// data key was destroyed reads as its erased value (AUD-5).
func (p *personalData) reveal(ctx context.Context, q Querier, events []RecordedEvent) error {
	type sealed struct {
		i   int
		doc any
	}
	var (
		todo []sealed
		ids  []uuid.UUID
	)
	marker := []byte(`"` + envelopeKey + `"`)
	for i, e := range events {
		if !bytes.Contains(e.Data, marker) {
			continue
		}
		doc, err := decodeJSON(e.Data)
		if err != nil {
			return fmt.Errorf("eventstore: event %s: %w", e.ID, err)
		}
		walkEnvelopes(doc, "", func(env envelope, _ string, sealed any) any {
			ids = append(ids, env.KeyID)
			return sealed
		})
		todo = append(todo, sealed{i, doc})
	}
	if len(todo) == 0 {
		return nil
	}
	keys, err := p.keys(ctx, q, ids)
	if err != nil {
		return err
	}
	for _, s := range todo {
		var openErr error
		doc := walkEnvelopes(s.doc, "", func(env envelope, path string, _ any) any {
			key, ok := keys[env.KeyID]
			if !ok {
				return env.Erased
			}
			v, err := open(key, env, path)
			if err != nil {
				openErr = errors.Join(openErr, err)
			}
			return v
		})
		if openErr != nil {
			return fmt.Errorf("eventstore: event %s: %w", events[s.i].ID, openErr)
		}
		data, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		events[s.i].Data = data
	}
	return nil
}

func open(key []byte, env envelope, path string) (any, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	if len(env.Ciphertext) < n {
		return nil, fmt.Errorf("personal field %s: ciphertext truncated", path)
	}
	plain, err := aead.Open(nil, env.Ciphertext[:n], env.Ciphertext[n:], additionalData(env.KeyID, path))
	if err != nil {
		return nil, fmt.Errorf("personal field %s: %w", path, err)
	}
	return decodeJSON(plain)
}

// walkEnvelopes returns doc with every envelope replaced by what replace
// returns for it, given its dotted field path and the sealed object itself.
func walkEnvelopes(doc any, path string, replace func(env envelope, path string, sealed any) any) any {
	switch v := doc.(type) {
	case map[string]any:
		if raw, ok := v[envelopeKey]; ok && len(v) == 1 {
			if env, ok := asEnvelope(raw); ok {
				return replace(env, path, v)
			}
		}
		for k, x := range v {
			p := k
			if path != "" {
				p = path + "." + k
			}
			v[k] = walkEnvelopes(x, p, replace)
		}
	case []any:
		for i, x := range v {
			v[i] = walkEnvelopes(x, path, replace)
		}
	}
	return doc
}

func asEnvelope(raw any) (envelope, bool) {
	b, err := json.Marshal(raw)
	if err != nil {
		return envelope{}, false
	}
	var env envelope
	if json.Unmarshal(b, &env) != nil || env.KeyID == uuid.Nil || len(env.Ciphertext) == 0 {
		return envelope{}, false
	}
	return env, true
}

// keys returns the data keys among ids that still exist, read on q.
func (p *personalData) keys(ctx context.Context, q Querier, ids []uuid.UUID) (map[uuid.UUID][]byte, error) {
	rows, err := q.Query(ctx, `SELECT key_id, wrapped_key FROM personal_data_keys WHERE key_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("eventstore: data keys: %w", err)
	}
	out := map[uuid.UUID][]byte{}
	var (
		id      uuid.UUID
		wrapped []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &wrapped}, func() error {
		key, err := p.unwrap(id, wrapped)
		out[id] = key
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("eventstore: data keys: %w", err)
	}
	return out, nil
}

// ErasePersonalData destroys the data keys of subjects (crypto-shredding,
// AUD-5): every personal field encrypted under them reads as erased from now
// on, in every process, while the log and its hash chain stay as they were.
// It returns how many keys it destroyed; erasing again destroys none.
func (s *Store) ErasePersonalData(ctx context.Context, subjects ...domain.DataSubject) (int64, error) {
	names := make([]string, 0, len(subjects))
	for _, ds := range subjects {
		if ds == (domain.DataSubject{}) {
			return 0, errors.New("eventstore: erase: a data subject names an account or an e-mail address")
		}
		names = append(names, s.personal.subject("", ds))
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM personal_data_keys WHERE subject = ANY($1)`, names)
	if err != nil {
		return 0, fmt.Errorf("eventstore: erase: %w", err)
	}
	return tag.RowsAffected(), nil
}
