package password_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/subs-engine/subs/api/password"
	"github.com/subs-engine/subs/domain/policy"
)

// small are cheap parameters: production's cost ~360 ms a hash (DESIGN §11).
var small = policy.Argon2idParams{Time: 1, MemoryKiB: 64, Threads: 1, KeyLength: 32, SaltLength: 16}

func MustHash(tb testing.TB, plain string, p policy.Argon2idParams) string {
	tb.Helper()
	phc, err := password.Hash(plain, p)
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return phc
}

func TestHash_IsAPHCStringThatVerifies(t *testing.T) {
	t.Parallel()
	phc := MustHash(t, "correct horse", small)
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash = %q, want the PHC prefix $argon2id$v=19$m=64,t=1,p=1$", phc)
	}
	if strings.Contains(phc, "correct horse") {
		t.Fatalf("hash %q contains the password", phc)
	}
	if other := MustHash(t, "correct horse", small); other == phc {
		t.Errorf("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		plain string
		want  bool
	}{
		{"correct horse", true},
		{"correct horsE", false},
		{"", false},
		{"correct horse ", false},
	}
	for _, tt := range tests {
		got, err := password.Verify(tt.plain, phc)
		if err != nil {
			t.Fatalf("Verify(%q): %v", tt.plain, err)
		}
		if got != tt.want {
			t.Errorf("Verify(%q) = %v, want %v", tt.plain, got, tt.want)
		}
	}
}

func TestVerify_UsesTheHashsParametersAfterAPolicyChange(t *testing.T) {
	t.Parallel()
	old := MustHash(t, "secret1", small)
	newer := small
	newer.Time, newer.MemoryKiB = 2, 128
	if ok, err := password.Verify("secret1", old); err != nil || !ok {
		t.Fatalf("Verify under changed policy = %v, %v; want true, nil", ok, err)
	}
	if !password.NeedsRehash(old, newer) {
		t.Errorf("NeedsRehash(old, newer params) = false, want true")
	}
	if password.NeedsRehash(old, small) {
		t.Errorf("NeedsRehash(old, same params) = true, want false")
	}
	if !password.NeedsRehash("garbage", small) {
		t.Errorf("NeedsRehash(garbage) = false, want true")
	}
}

func TestVerify_RefusesMalformedHashes(t *testing.T) {
	t.Parallel()
	good := MustHash(t, "secret1", small)
	parts := strings.Split(good, "$")
	tests := map[string]string{
		"empty":             "",
		"bcrypt":            "$2a$10$abcdefghijklmnopqrstuu",
		"argon2i":           strings.Replace(good, "argon2id", "argon2i", 1),
		"other version":     strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":       strings.Replace(good, "m=64", "m=99999999", 1),
		"zero passes":       strings.Replace(good, "t=1", "t=0", 1),
		"unknown parameter": strings.Replace(good, "p=1", "p=1,x=2", 1),
		"bad salt":          strings.Join([]string{"", parts[1], parts[2], parts[3], "!!!", parts[5]}, "$"),
		"short hash":        strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$"),
	}
	for name, phc := range tests {
		t.Run(name, func(t *testing.T) {
			ok, err := password.Verify("secret1", phc)
			if ok || !errors.Is(err, password.ErrMalformedHash) {
				t.Errorf("Verify = %v, %v; want false and ErrMalformedHash", ok, err)
			}
		})
	}
}

func TestHash_RefusesInvalidParameters(t *testing.T) {
	t.Parallel()
	for name, p := range map[string]policy.Argon2idParams{
		"zero":       {},
		"no threads": {Time: 1, MemoryKiB: 64, KeyLength: 32, SaltLength: 16},
		"short key":  {Time: 1, MemoryKiB: 64, Threads: 1, KeyLength: 4, SaltLength: 16},
	} {
		if _, err := password.Hash("secret1", p); err == nil {
			t.Errorf("%s: Hash succeeded, want an error", name)
		}
	}
}

// BenchmarkVerifyDummy measures ACC-4's timing half: an unknown e-mail
// (VerifyDummy) must cost what a wrong password (Verify) costs. It prints
//
//	BENCH verify_dummy <ns per dummy check> ns/op raw=<ns per real check> ratio=<dummy/real>
//
// where a ratio near 1 is the goal; a dummy path that skipped hashing would
// show a ratio thousands of times smaller.
func BenchmarkVerifyDummy(b *testing.B) {
	p := policy.Argon2idParams{Time: 2, MemoryKiB: 8 * 1024, Threads: 1, KeyLength: 32, SaltLength: 16}
	if err := password.PrepareDummy(p); err != nil {
		b.Fatal(err)
	}
	phc := MustHash(b, "secret1", p)
	var real, dummy time.Duration
	for range b.N {
		start := time.Now()
		_, _ = password.Verify("wrong-password", phc)
		real += time.Since(start)
		start = time.Now()
		if err := password.VerifyDummy("wrong-password", p); err != nil {
			b.Fatal(err)
		}
		dummy += time.Since(start)
	}
	perDummy, perReal := float64(dummy)/float64(b.N), float64(real)/float64(b.N)
	b.ReportMetric(perDummy/perReal, "dummy/real")
	fmt.Printf("BENCH verify_dummy %.0f ns/op raw=%.0f ratio=%.2f\n", perDummy, perReal, perDummy/perReal)
}
