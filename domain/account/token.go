package account

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"

	"github.com/google/uuid"
)

// ResetToken returns the password-reset token of a reset request: an HMAC of
// its random id under the engine's secret key. The token is never stored —
// only HashResetToken of it is — yet whoever holds the key can render the
// reset e-mail again after a crash with the same link (EML-2).
func ResetToken(secretKey []byte, resetID uuid.UUID) string {
	mac := hmac.New(sha256.New, secretKey)
	mac.Write([]byte("subs password reset v1\x00"))
	mac.Write(resetID[:])
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// HashResetToken returns what the engine keeps of a reset token (ACC-6).
func HashResetToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
