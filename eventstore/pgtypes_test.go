package eventstore_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

// A pool configured by ConfigurePool (pgtest's are) reads and writes
// uuid.UUID values as the server has them: alone, in arrays, through
// pointers, and NULL.
func TestConfigurePool_UUIDsGoAndComeBackAsTheyAre(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	a, b := uuid.New(), uuid.Must(uuid.NewV7())
	t.Run("an argument", func(t *testing.T) {
		var text string
		if err := pool.QueryRow(ctx, `SELECT $1::uuid::text`, a).Scan(&text); err != nil || text != a.String() {
			t.Errorf("the server got %q (%v), want %q", text, err, a)
		}
	})
	t.Run("an array argument", func(t *testing.T) {
		var text string
		if err := pool.QueryRow(ctx, `SELECT $1::uuid[]::text`, []uuid.UUID{a, b}).Scan(&text); err != nil || text != "{"+a.String()+","+b.String()+"}" {
			t.Errorf("the server got %q (%v), want {%s,%s}", text, err, a, b)
		}
	})
	t.Run("a nil pointer argument is NULL", func(t *testing.T) {
		var isNull bool
		if err := pool.QueryRow(ctx, `SELECT $1::uuid IS NULL`, (*uuid.UUID)(nil)).Scan(&isNull); err != nil || !isNull {
			t.Errorf("IS NULL = %v (%v), want true", isNull, err)
		}
	})
	t.Run("scanned", func(t *testing.T) {
		var got uuid.UUID
		var gotAll []uuid.UUID
		if err := pool.QueryRow(ctx, `SELECT $1::text::uuid, ARRAY[$1::text::uuid, $2::text::uuid]`, a.String(), b.String()).Scan(&got, &gotAll); err != nil {
			t.Fatal(err)
		}
		if got != a || len(gotAll) != 2 || gotAll[0] != a || gotAll[1] != b {
			t.Errorf("scanned %s and %v, want %s and [%s %s]", got, gotAll, a, a, b)
		}
	})
	t.Run("a NULL scanned", func(t *testing.T) {
		// As uuid.UUID's own Scan has it: a value is left as it was, a
		// pointer set to nil.
		got, ptr := a, &b
		if err := pool.QueryRow(ctx, `SELECT NULL::uuid, NULL::uuid`).Scan(&got, &ptr); err != nil {
			t.Fatal(err)
		}
		if got != a || ptr != nil {
			t.Errorf("scanned NULLs as %s and %v, want %s and nil", got, ptr, a)
		}
	})
}

// RegisterTypes encodes a uuid.UUID as its 16 bytes, without the string,
// the failed binary encoding and the error that pgx's driver.Valuer path
// makes on the way (20 allocations an encoding without it).
func TestRegisterTypes_EncodesAUUIDAsItsBytes(t *testing.T) {
	m := pgtype.NewMap()
	eventstore.RegisterTypes(m)
	u := uuid.New()
	buf := make([]byte, 0, 64)
	got, err := m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, u, buf)
	if err != nil || !bytes.Equal(got, u[:]) {
		t.Fatalf("Encode = %x, %v; want %x", got, err, u[:])
	}
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = m.Encode(pgtype.UUIDOID, pgtype.BinaryFormatCode, u, buf)
	})
	if allocs > 2 {
		t.Errorf("an encoding allocates %.0f times, want at most twice (the value boxed by the call, then by the codec)", allocs)
	}
}
