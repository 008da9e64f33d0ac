package account

import (
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/payment"
)

// EmailScope is the reservation scope that makes an e-mail address one
// account's user name (ACC-1).
const EmailScope = "account-email"

// ResetTokenScope is the reservation scope that finds the account a
// password-reset token hash belongs to (ACC-6).
const ResetTokenScope = "password-reset"

// Registered: an account was opened (ACC-1, ACC-2). The password is kept
// only as its slow salted hash (ACC-3).
type Registered struct {
	AccountID    uuid.UUID `json:"account_id"`
	Email        Email     `json:"email"`
	Name         Name      `json:"name"`
	Country      Country   `json:"country"`
	Language     Language  `json:"language"`
	PasswordHash string    `json:"password_hash"`
}

// SignInFailed: a sign-in gave the wrong password (ACC-4).
type SignInFailed struct {
	At time.Time `json:"at"`
}

// SignInLocked: too many failures; sign-in is refused until Until (ACC-4).
type SignInLocked struct {
	Until time.Time `json:"until"`
}

// SignedIn: a sign-in succeeded (and the API opened a session).
type SignedIn struct {
	At time.Time `json:"at"`
}

// PasswordChanged: the customer changed their password (ACC-5).
type PasswordChanged struct {
	PasswordHash string `json:"password_hash"`
}

// PasswordResetRequested: reset instructions were asked for (ACC-6). Only the
// token's hash is kept; a newer request voids this one.
type PasswordResetRequested struct {
	ResetID   uuid.UUID `json:"reset_id"`
	TokenHash string    `json:"token_hash"`
	ExpiresAt time.Time `json:"expires_at"`
	// Voided is the hash of the older, still pending token this one voids.
	Voided string `json:"voided,omitempty"`
}

// PasswordReset: a reset token was used to set a new password (ACC-6).
type PasswordReset struct {
	ResetID      uuid.UUID `json:"reset_id"`
	TokenHash    string    `json:"token_hash"`
	PasswordHash string    `json:"password_hash"`
}

// ProfileUpdated: account information replaced as a whole (ACC-7).
type ProfileUpdated struct {
	Name     Name     `json:"name"`
	Address  Address  `json:"address"`
	Country  Country  `json:"country"`
	Language Language `json:"language"`
}

// BillingUpdated: billing information replaced as a whole (ACC-7, ACC-8):
// the country and the tokenized payment method, never a card number or CVV.
type BillingUpdated struct {
	Country Country               `json:"country"`
	Method  payment.PaymentMethod `json:"method"`
}

// Erased: the account's personal data was erased at the owner's request
// (AUD-5): its data key is destroyed, so every personal field of its history
// reads as erased, and the e-mail address is free again. Who erased it and
// why is in the event's metadata.
type Erased struct {
	// email is the address given up (Releases); it is never recorded.
	email Email
}

// EmailSent: a customer e-mail went out (EML-1). Its Message-ID derives from
// Cause, the event that called for it, so it is recorded once per cause and
// kind (EML-2).
type EmailSent struct {
	Kind      string    `json:"kind"`
	Cause     uuid.UUID `json:"cause"`
	MessageID string    `json:"message_id"`
}

func (Registered) EventType() string             { return "account.registered" }
func (SignInFailed) EventType() string           { return "account.sign_in_failed" }
func (SignInLocked) EventType() string           { return "account.sign_in_locked" }
func (SignedIn) EventType() string               { return "account.signed_in" }
func (PasswordChanged) EventType() string        { return "account.password_changed" }
func (PasswordResetRequested) EventType() string { return "account.password_reset_requested" }
func (PasswordReset) EventType() string          { return "account.password_reset" }
func (ProfileUpdated) EventType() string         { return "account.profile_updated" }
func (BillingUpdated) EventType() string         { return "account.billing_updated" }
func (EmailSent) EventType() string              { return "account.email_sent" }
func (Erased) EventType() string                 { return "account.erased" }

// Claims reserves the e-mail address (ACC-1).
func (e Registered) Claims() []domain.Claim {
	return []domain.Claim{{Scope: EmailScope, Key: e.Email.String(), Personal: true}}
}

// Releases gives the e-mail address up (ACC-1), so it can open a new account.
func (e Erased) Releases() []domain.Claim {
	if e.email.IsZero() {
		return nil
	}
	return []domain.Claim{{Scope: EmailScope, Key: e.email.String(), Personal: true}}
}

// The personal fields of the account's events (AUD-5): they belong to the
// account whose stream holds them. An erased e-mail address reads as empty
// (it has no placeholder that is an address), a name as domain.ErasedText.
var (
	erasedName    = domain.PersonalField{Path: "name", Erased: domain.ErasedText}
	erasedEmail   = domain.PersonalField{Path: "email"}
	erasedAddress = domain.PersonalField{Path: "address"}
	erasedHolder  = domain.PersonalField{Path: "method.holder_name", Erased: domain.ErasedText}
)

// PersonalFields implements domain.Personal.
func (Registered) PersonalFields() []domain.PersonalField {
	return []domain.PersonalField{erasedEmail, erasedName}
}

// PersonalFields implements domain.Personal.
func (ProfileUpdated) PersonalFields() []domain.PersonalField {
	return []domain.PersonalField{erasedName, erasedAddress}
}

// PersonalFields implements domain.Personal.
func (BillingUpdated) PersonalFields() []domain.PersonalField {
	return []domain.PersonalField{erasedHolder}
}

// DataSubject implements domain.Personal: the account itself.
func (Registered) DataSubject() domain.DataSubject { return domain.DataSubject{} }

// DataSubject implements domain.Personal: the account itself.
func (ProfileUpdated) DataSubject() domain.DataSubject { return domain.DataSubject{} }

// DataSubject implements domain.Personal: the account itself.
func (BillingUpdated) DataSubject() domain.DataSubject { return domain.DataSubject{} }

// Claims makes the token hash findable until it is used or voided.
func (e PasswordResetRequested) Claims() []domain.Claim {
	return []domain.Claim{{Scope: ResetTokenScope, Key: e.TokenHash}}
}

// Releases gives up the voided token's hash.
func (e PasswordResetRequested) Releases() []domain.Claim {
	if e.Voided == "" {
		return nil
	}
	return []domain.Claim{{Scope: ResetTokenScope, Key: e.Voided}}
}

// Releases gives up the used token's hash: it works once.
func (e PasswordReset) Releases() []domain.Claim {
	return []domain.Claim{{Scope: ResetTokenScope, Key: e.TokenHash}}
}

// Events lists a zero value of every account event, for codec registration.
func Events() []domain.Event {
	return []domain.Event{Registered{}, SignInFailed{}, SignInLocked{}, SignedIn{}, PasswordChanged{},
		PasswordResetRequested{}, PasswordReset{}, ProfileUpdated{}, BillingUpdated{}, EmailSent{}, Erased{}, OwnershipVerified{}}
}
