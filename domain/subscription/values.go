package subscription

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// KeyAlphabet holds the characters of product keys: letters and digits
// without the ones people confuse (0/O, 1/I/L, 2/Z, 5/S, 8/B) (KEY-1).
const KeyAlphabet = "ACDEFGHJKMNPQRTUVWXY34679"

const (
	keyGroups    = 5
	keyGroupSize = 5
	keyLength    = keyGroups * keyGroupSize
)

// ProductKey identifies one subscription: XXXXX-XXXXX-XXXXX-XXXXX-XXXXX
// over KeyAlphabet (KEY-1).
type ProductKey struct{ s string }

// ParseProductKey accepts a key as people type it: any case, with or
// without dashes and spaces.
func ParseProductKey(s string) (ProductKey, error) {
	compact := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToUpper(strings.TrimSpace(s)))
	if len(compact) != keyLength {
		return ProductKey{}, errors.New("is not a product key of the form XXXXX-XXXXX-XXXXX-XXXXX-XXXXX")
	}
	for _, r := range compact {
		if !strings.ContainsRune(KeyAlphabet, r) {
			return ProductKey{}, fmt.Errorf("holds %q, which no product key has", r)
		}
	}
	return ProductKey{s: group(compact, keyGroupSize, "-")}, nil
}

// NewProductKey draws a key uniformly at random from r (crypto/rand.Reader
// in production), rejecting bytes that would bias the draw.
func NewProductKey(r io.Reader) (ProductKey, error) {
	s, err := draw(r, KeyAlphabet, keyLength)
	if err != nil {
		return ProductKey{}, err
	}
	return ProductKey{s: group(s, keyGroupSize, "-")}, nil
}

// String returns the key with its dashes.
func (k ProductKey) String() string { return k.s }

// IsZero reports whether k was never set.
func (k ProductKey) IsZero() bool { return k.s == "" }

// MarshalText encodes the key.
func (k ProductKey) MarshalText() ([]byte, error) { return []byte(k.s), nil }

// UnmarshalText decodes and validates a key.
func (k *ProductKey) UnmarshalText(b []byte) error {
	v, err := ParseProductKey(string(b))
	if err != nil {
		return fmt.Errorf("product key %w", err)
	}
	*k = v
	return nil
}

// SerialNumber is a subscription's product serial number (KEY-1, PRD-4):
// sixteen digits in groups of four.
type SerialNumber struct{ s string }

const serialDigits = 16

// ParseSerialNumber accepts sixteen digits, with or without dashes and
// spaces.
func ParseSerialNumber(s string) (SerialNumber, error) {
	compact := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(compact) != serialDigits || strings.Trim(compact, "0123456789") != "" {
		return SerialNumber{}, errors.New("is not a serial number of sixteen digits")
	}
	return SerialNumber{s: group(compact, 4, "-")}, nil
}

// NewSerialNumber draws a serial number uniformly at random from r.
func NewSerialNumber(r io.Reader) (SerialNumber, error) {
	s, err := draw(r, "0123456789", serialDigits)
	if err != nil {
		return SerialNumber{}, err
	}
	return SerialNumber{s: group(s, 4, "-")}, nil
}

// String returns the serial number with its dashes.
func (n SerialNumber) String() string { return n.s }

// IsZero reports whether n was never set.
func (n SerialNumber) IsZero() bool { return n.s == "" }

// MarshalText encodes the serial number.
func (n SerialNumber) MarshalText() ([]byte, error) { return []byte(n.s), nil }

// UnmarshalText decodes and validates a serial number.
func (n *SerialNumber) UnmarshalText(b []byte) error {
	v, err := ParseSerialNumber(string(b))
	if err != nil {
		return fmt.Errorf("serial number %w", err)
	}
	*n = v
	return nil
}

// draw returns n characters of alphabet drawn uniformly from r: a byte is
// used only below the largest multiple of len(alphabet), so no character is
// likelier than another.
func draw(r io.Reader, alphabet string, n int) (string, error) {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("subscription: random source: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

func group(s string, size int, sep string) string {
	var parts []string
	for i := 0; i < len(s); i += size {
		parts = append(parts, s[i:min(i+size, len(s))])
	}
	return strings.Join(parts, sep)
}

// DeviceID names a computer a product is activated on (KEY-3, KEY-5).
type DeviceID struct{ s string }

// ParseDeviceID accepts 1 to 64 letters, digits, dots, dashes, underscores
// and colons.
func ParseDeviceID(s string) (DeviceID, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 || strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:") != "" {
		return DeviceID{}, errors.New("must be 1 to 64 letters, digits, dots, dashes, underscores or colons")
	}
	return DeviceID{s: s}, nil
}

// String returns the id.
func (d DeviceID) String() string { return d.s }

// MarshalText encodes the id.
func (d DeviceID) MarshalText() ([]byte, error) { return []byte(d.s), nil }

// UnmarshalText decodes and validates an id.
func (d *DeviceID) UnmarshalText(b []byte) error {
	v, err := ParseDeviceID(string(b))
	if err != nil {
		return fmt.Errorf("device id %w", err)
	}
	*d = v
	return nil
}
