// Package password hashes and verifies customer passwords with argon2id
// (ACC-3), in the PHC string format
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<hash> (salt and hash
// in unpadded standard base64), so that a stored hash carries the parameters
// it was made with: a hash made under older parameters still verifies after
// the policy changes, and NeedsRehash says when to replace it.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/subs-engine/subs/domain/policy"
	"golang.org/x/crypto/argon2"
)

// ErrMalformedHash is matched (errors.Is) by the error Verify returns when the
// stored string is not an argon2id PHC string this package can read.
var ErrMalformedHash = errors.New("password: malformed argon2id hash")

// Limits on parameters read from a stored hash. They bound the work a
// corrupted or hostile stored hash can make Verify do.
const (
	maxMemoryKiB = 4 << 20 // 4 GiB
	maxTime      = 64
	maxKeyLength = 1024
	minKeyLength = 16
	minSalt      = 8
	maxSalt      = 1024
)

var b64 = base64.RawStdEncoding

// Hash returns the argon2id hash of plain under p as a PHC string, with a
// fresh random salt of p.SaltLength bytes. It fails only when p is invalid
// (a zero Time, MemoryKiB, Threads, KeyLength or SaltLength) or the system's
// random source fails.
func Hash(plain string, p policy.Argon2idParams) (string, error) {
	if err := checkParams(p); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLength)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: read a salt: %w", err)
	}
	key := argon2.IDKey([]byte(plain), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLength)
	return encode(p, salt, key), nil
}

// Verify reports whether plain matches phc, a string Hash returned, under
// the parameters recorded in phc (not the current policy's). The comparison
// of the derived keys takes constant time. A phc that cannot be read returns
// false and an error matching ErrMalformedHash.
func Verify(plain, phc string) (bool, error) {
	h, err := decode(phc)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(plain), h.salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, h.params.KeyLength)
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// NeedsRehash reports whether phc was made with parameters other than p (or
// cannot be read), so that the caller, holding the plain password after a
// successful sign-in, should store Hash(plain, p) instead.
func NeedsRehash(phc string, p policy.Argon2idParams) bool {
	h, err := decode(phc)
	if err != nil {
		return true
	}
	return h.params != p
}

// dummies caches one dummy hash per parameter set: computing it costs as
// much as a real hash, so it is done once per process.
var dummies sync.Map // policy.Argon2idParams → string

// PrepareDummy computes the dummy hash VerifyDummy uses for p, so that the
// first VerifyDummy call costs no more than later ones. Call it at start-up
// with the current parameters; it is safe to call more than once.
func PrepareDummy(p policy.Argon2idParams) error {
	_, err := dummyFor(p)
	return err
}

// VerifyDummy costs what Verify costs for a hash made under p, and always
// reports a mismatch. Sign-in calls it when no account has the given e-mail,
// so that an unknown e-mail and a wrong password take the same time (ACC-4).
// It fails only when p is invalid.
func VerifyDummy(plain string, p policy.Argon2idParams) error {
	phc, err := dummyFor(p)
	if err != nil {
		return err
	}
	_, err = Verify(plain, phc)
	return err
}

func dummyFor(p policy.Argon2idParams) (string, error) {
	if v, ok := dummies.Load(p); ok {
		return v.(string), nil
	}
	phc, err := Hash("subs dummy password: no account has it", p)
	if err != nil {
		return "", err
	}
	v, _ := dummies.LoadOrStore(p, phc)
	return v.(string), nil
}

func checkParams(p policy.Argon2idParams) error {
	switch {
	case p.Time < 1:
		return errors.New("password: Argon2idParams.Time must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB == 0:
		return fmt.Errorf("password: Argon2idParams.MemoryKiB must be at least 8 KiB per thread, got %d", p.MemoryKiB)
	case p.Threads < 1:
		return errors.New("password: Argon2idParams.Threads must be at least 1")
	case p.KeyLength < minKeyLength:
		return fmt.Errorf("password: Argon2idParams.KeyLength must be at least %d, got %d", minKeyLength, p.KeyLength)
	case p.SaltLength < minSalt:
		return fmt.Errorf("password: Argon2idParams.SaltLength must be at least %d, got %d", minSalt, p.SaltLength)
	}
	return nil
}

func encode(p policy.Argon2idParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

type decoded struct {
	params    policy.Argon2idParams
	salt, key []byte
}

func decode(phc string) (decoded, error) {
	bad := func(why string) (decoded, error) {
		return decoded{}, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want 5 $-separated parts")
	}
	if parts[1] != "argon2id" {
		return bad("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version")
	}
	var m, t, p uint64
	for kv := range strings.SplitSeq(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return bad("parameter without a value")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter " + k + " is not a number")
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		default:
			return bad("unknown parameter " + k)
		}
	}
	if m == 0 || t == 0 || p == 0 || p > 255 || m > maxMemoryKiB || t > maxTime || m < 8*p {
		return bad("parameters out of range")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < minSalt || len(salt) > maxSalt {
		return bad("salt is not base64 of a usable length")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < minKeyLength || len(key) > maxKeyLength {
		return bad("hash is not base64 of a usable length")
	}
	return decoded{
		params: policy.Argon2idParams{
			Time: uint32(t), MemoryKiB: uint32(m), Threads: uint8(p),
			KeyLength: uint32(len(key)), SaltLength: uint32(len(salt)),
		},
		salt: salt,
		key:  key,
	}, nil
}
