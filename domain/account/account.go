// Package account is the customer account aggregate (DOMAIN §2): sign-up,
// sign-in throttling, passwords and their reset, profile and billing
// information, and the record of e-mails sent to the customer.
package account

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
)

// Account is the state of one account, folded from its events.
type Account struct {
	id           uuid.UUID
	registered   bool
	erased       bool
	email        Email
	name         Name
	country      Country
	language     Language
	address      Address
	passwordHash string

	failures    []time.Time // recent failed sign-ins, oldest first
	lockedUntil time.Time

	reset *pendingReset

	billingCountry Country
	billing        *payment.PaymentMethod

	emailsSent map[string]bool // kind + cause
}

type pendingReset struct {
	id        uuid.UUID
	tokenHash string
	expiresAt time.Time
}

// ID returns the account's id.
func (a Account) ID() uuid.UUID { return a.id }

// Registered reports whether the account exists: registered and not
// erased.
func (a Account) Registered() bool { return a.registered && !a.erased }

// Erased reports whether the account's personal data was erased (AUD-5).
func (a Account) Erased() bool { return a.erased }

// Email returns the account's user name.
func (a Account) Email() Email { return a.email }

// Name returns the account holder's name.
func (a Account) Name() Name { return a.name }

// Country returns the account's country.
func (a Account) Country() Country { return a.country }

// Language returns the account's language.
func (a Account) Language() Language { return a.language }

// Address returns the account's postal address.
func (a Account) Address() Address { return a.address }

// PasswordHash returns the stored password hash, for the verifier.
func (a Account) PasswordHash() string { return a.passwordHash }

// Billing returns the billing country and payment method, and false if the
// customer has given none.
func (a Account) Billing() (Country, payment.PaymentMethod, bool) {
	if a.billing == nil {
		return Country{}, payment.PaymentMethod{}, false
	}
	return a.billingCountry, *a.billing, true
}

// EmailSent reports whether the e-mail of kind caused by cause was sent.
func (a Account) EmailSent(kind string, cause uuid.UUID) bool {
	return a.emailsSent[kind+"/"+cause.String()]
}

// Commands of the account aggregate.
type (
	// Command is any account command.
	Command interface{ accountCommand() }

	// Register opens the account (ACC-1, ACC-2, ACC-3). PasswordHash is the
	// hash of a Password that NewPassword accepted.
	Register struct {
		AccountID    uuid.UUID
		Email        Email
		Name         Name
		Country      Country
		PasswordHash string
	}

	// SignIn records a sign-in attempt (ACC-4). PasswordMatches verifies the
	// typed password against the stored hash; it must be a pure function.
	SignIn struct {
		PasswordMatches func(hash string) bool
	}

	// ChangePassword replaces the password (ACC-5). CurrentMatches verifies
	// the current password typed; NewPasswordHash is the hash of the new one
	// that NewPasswordTwice accepted.
	ChangePassword struct {
		CurrentMatches  func(hash string) bool
		NewPasswordHash string
	}

	// RequestPasswordReset issues a reset token, of which only the hash is
	// kept (ACC-6).
	RequestPasswordReset struct {
		ResetID   uuid.UUID
		TokenHash string
	}

	// ResetPassword uses a reset token (ACC-6).
	ResetPassword struct {
		TokenHash       string
		NewPasswordHash string
	}

	// UpdateProfile replaces the account information (ACC-7).
	UpdateProfile struct {
		Name     Name
		Address  Address
		Country  Country
		Language Language
	}

	// UpdateBilling replaces the billing information (ACC-8). Method is
	// already tokenized by the payment gateway.
	UpdateBilling struct {
		Country Country
		Method  payment.PaymentMethod
	}

	// RecordEmailSent records that an e-mail went out (EML-1, EML-2).
	RecordEmailSent struct {
		Kind      string
		Cause     uuid.UUID
		MessageID string
	}

	// Erase erases the account's personal data (AUD-5). The event store
	// destroys its data key; the account then refuses every command as if
	// it did not exist. Erasing an erased account changes nothing.
	Erase struct{}
)

func (Register) accountCommand()             {}
func (SignIn) accountCommand()               {}
func (ChangePassword) accountCommand()       {}
func (RequestPasswordReset) accountCommand() {}
func (ResetPassword) accountCommand()        {}
func (UpdateProfile) accountCommand()        {}
func (UpdateBilling) accountCommand()        {}
func (RecordEmailSent) accountCommand()      {}
func (Erase) accountCommand()                {}

// Errors of the account aggregate.
var (
	// ErrNotFound: there is no such account.
	ErrNotFound error = domain.NotFound("no such account")
	// ErrAlreadyRegistered: the account exists already.
	ErrAlreadyRegistered error = domain.Conflict("the account is already registered")
	// ErrResetTokenInvalid: the reset token is unknown, used, voided by a
	// newer one or expired; one answer for all, so it reveals nothing.
	ErrResetTokenInvalid error = domain.Invalid("token", "the password reset link is invalid or has expired; ask for a new one")
)

// SignInLockedError: sign-in is locked after too many failures (ACC-4).
type SignInLockedError struct {
	Until   time.Time
	RetryIn time.Duration // from the attempt to Until
}

// RetryAfter says how long the customer must wait (for the API's 429).
func (e *SignInLockedError) RetryAfter() time.Duration { return e.RetryIn }

func (e *SignInLockedError) Error() string {
	return fmt.Sprintf("too many failed sign-ins: sign-in is locked until %s", e.Until.UTC().Format(time.RFC3339))
}

// Decider is the account aggregate's behaviour.
var Decider = domain.Decider[Account, Command]{
	Decide: decide,
	Evolve: evolve,
}

func decide(a Account, cmd Command, now time.Time, p policy.Policy) ([]domain.Event, error) {
	if r, ok := cmd.(Register); ok {
		if a.registered {
			return nil, ErrAlreadyRegistered
		}
		return []domain.Event{Registered{AccountID: r.AccountID, Email: r.Email, Name: r.Name, Country: r.Country,
			Language: DefaultLanguage, PasswordHash: r.PasswordHash}}, nil
	}
	if _, erase := cmd.(Erase); erase && a.erased {
		return nil, nil
	}
	if !a.Registered() {
		return nil, ErrNotFound
	}
	switch c := cmd.(type) {
	case SignIn:
		return decideSignIn(a, c, now, p)
	case ChangePassword:
		if !c.CurrentMatches(a.passwordHash) {
			return nil, domain.Invalid("current_password", "is not your current password")
		}
		return []domain.Event{PasswordChanged{PasswordHash: c.NewPasswordHash}}, nil
	case RequestPasswordReset:
		e := PasswordResetRequested{ResetID: c.ResetID, TokenHash: c.TokenHash, ExpiresAt: now.Add(p.ResetTokenValidity)}
		if a.reset != nil {
			e.Voided = a.reset.tokenHash
		}
		return []domain.Event{e}, nil
	case ResetPassword:
		r := a.reset
		if r == nil || r.tokenHash != c.TokenHash || !now.Before(r.expiresAt) {
			return nil, ErrResetTokenInvalid
		}
		return []domain.Event{PasswordReset{ResetID: r.id, TokenHash: r.tokenHash, PasswordHash: c.NewPasswordHash}}, nil
	case UpdateProfile:
		e := ProfileUpdated(c)
		if e == (ProfileUpdated{Name: a.name, Address: a.address, Country: a.country, Language: a.language}) {
			return nil, nil
		}
		return []domain.Event{e}, nil
	case UpdateBilling:
		if err := CheckPaymentKind(c.Country, c.Method.Kind(), p); err != nil {
			return nil, err
		}
		if a.billing != nil && a.billingCountry == c.Country && *a.billing == c.Method {
			return nil, nil
		}
		return []domain.Event{BillingUpdated(c)}, nil
	case VerifyOwnership:
		return decideVerifyOwnership(c, now)
	case RecordEmailSent:
		if a.EmailSent(c.Kind, c.Cause) {
			return nil, nil
		}
		return []domain.Event{EmailSent(c)}, nil
	case Erase:
		return []domain.Event{Erased{email: a.email}}, nil
	}
	return nil, fmt.Errorf("account: unknown command %T", cmd)
}

// CheckPaymentKind applies ACC-8: cards everywhere, direct debit only in the
// policy's countries. The API calls it before tokenizing, the decider again.
func CheckPaymentKind(country Country, kind payment.MethodKind, p policy.Policy) error {
	if kind == payment.KindDirectDebit && !slices.Contains(p.DirectDebitCountries, country.String()) {
		return domain.Invalid("payment_method.type", fmt.Sprintf("direct debit is not offered in %s; use a credit or debit card", country))
	}
	return nil
}

func decideSignIn(a Account, c SignIn, now time.Time, p policy.Policy) ([]domain.Event, error) {
	if now.Before(a.lockedUntil) {
		return nil, &SignInLockedError{Until: a.lockedUntil, RetryIn: a.lockedUntil.Sub(now)}
	}
	if c.PasswordMatches(a.passwordHash) {
		return []domain.Event{SignedIn{At: now}}, nil
	}
	events := []domain.Event{SignInFailed{At: now}}
	recent := 1
	for _, f := range a.failures {
		if now.Sub(f) < p.SignInFailureWindow {
			recent++
		}
	}
	if recent >= p.SignInMaxFailures {
		events = append(events, SignInLocked{Until: now.Add(p.SignInLockout)})
	}
	return events, nil
}

func evolve(a Account, e domain.Event) Account {
	switch e := e.(type) {
	case Registered:
		a.id, a.registered, a.email, a.name, a.country, a.language, a.passwordHash =
			e.AccountID, true, e.Email, e.Name, e.Country, e.Language, e.PasswordHash
	case SignInFailed:
		a.failures = append(slices.Clone(a.failures), e.At)
	case SignInLocked:
		a.lockedUntil, a.failures = e.Until, nil // the lock starts a fresh count
	case SignedIn:
		a.failures = nil
	case PasswordChanged:
		a.passwordHash = e.PasswordHash
	case PasswordResetRequested:
		a.reset = &pendingReset{id: e.ResetID, tokenHash: e.TokenHash, expiresAt: e.ExpiresAt}
	case PasswordReset:
		a.passwordHash, a.reset, a.failures, a.lockedUntil = e.PasswordHash, nil, nil, time.Time{}
	case ProfileUpdated:
		a.name, a.address, a.country, a.language = e.Name, e.Address, e.Country, e.Language
	case BillingUpdated:
		m := e.Method
		a.billingCountry, a.billing = e.Country, &m
	case EmailSent:
		sent := make(map[string]bool, len(a.emailsSent)+1)
		for k, v := range a.emailsSent {
			sent[k] = v
		}
		sent[e.Kind+"/"+e.Cause.String()] = true
		a.emailsSent = sent
	case Erased:
		// Personal data and credentials go; what the account did stays.
		a.erased, a.email, a.name, a.address, a.passwordHash, a.reset, a.billing = true, Email{}, Name{}, Address{}, "", nil, nil
	}
	return a
}
