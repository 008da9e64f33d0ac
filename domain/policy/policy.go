// Package policy holds every value DOMAIN.md marks "(policy)": the choices
// the seed texts leave open. They live in one struct so that none is a
// literal scattered in code, and so that one place shows what a deployment
// (or a test) changed.
package policy

import (
	"errors"
	"fmt"
	"time"
)

// Day is 24 hours. All instants are UTC (no daylight-saving shifts), so a
// day-valued policy is a whole number of Days expressed as a time.Duration.
const Day = 24 * time.Hour

// Argon2idParams are the argon2id password-hashing parameters (ACC-3). The
// field types match golang.org/x/crypto/argon2.IDKey.
type Argon2idParams struct {
	// Time is the number of passes over the memory. Default 3 (RFC 9106 §4,
	// second recommended option).
	Time uint32
	// MemoryKiB is the memory cost in KiB. Default 65536 (64 MiB).
	MemoryKiB uint32
	// Threads is the degree of parallelism. Default 4.
	Threads uint8
	// KeyLength is the length of the derived hash in bytes. Default 32.
	KeyLength uint32
	// SaltLength is the length of the random per-password salt in bytes.
	// Default 16 (128 bits, as RFC 9106 recommends).
	SaltLength uint32
}

// Policy is every policy value of DOMAIN.md. Durations are time.Duration;
// those the rule book states in days are whole multiples of Day. Build one
// with Default, or fill the fields to change and pass it to New, which sets
// the others to their defaults and validates.
//
// A zero numeric field means "use the default". A nil slice means "use the
// default"; a non-nil empty slice means "none" (no reminders, no retries, no
// direct-debit country).
type Policy struct {
	// PasswordMinLength is the fewest characters a password may have
	// (ACC-3). Default 6.
	PasswordMinLength int
	// PasswordMaxLength is the most characters a password may have (ACC-3);
	// it bounds the work of hashing hostile input. Default 128.
	PasswordMaxLength int
	// Argon2id are the password-hashing parameters (ACC-3).
	Argon2id Argon2idParams

	// SignInMaxFailures is how many failed sign-ins for one account within
	// SignInFailureWindow lock sign-in (ACC-4). Default 5.
	SignInMaxFailures int
	// SignInFailureWindow is the sliding window in which failures are
	// counted (ACC-4). Default 15 minutes.
	SignInFailureWindow time.Duration
	// SignInLockout is how long sign-in stays locked once the failures are
	// reached (ACC-4). Default 15 minutes.
	SignInLockout time.Duration

	// ResetTokenValidity is how long a password-reset token works after it
	// is issued (ACC-6). Default 1 hour.
	ResetTokenValidity time.Duration
	// SessionTokenValidity is how long a sign-in session token works after
	// it is issued. DOMAIN.md does not name a value; the default is 30 days.
	SessionTokenValidity time.Duration

	// DirectDebitCountries are the ISO 3166-1 alpha-2 countries where direct
	// debit is offered besides cards (ACC-8). Default DE, AT, NL.
	DirectDebitCountries []string

	// DisallowDeactivation forbids deactivating a computer (KEY-5). The rule
	// book allows deactivation, so the default is false: the field is
	// negated so that its zero value is the default.
	DisallowDeactivation bool

	// AnnualNoticeLead is how long before expiry an annual term's
	// pre-billing e-mail is sent (ARS-2). Default 30 days.
	AnnualNoticeLead time.Duration
	// MonthlyNoticeLead is how long before expiry a monthly term's
	// pre-billing e-mail is sent (ARS-2). Default 3 days.
	MonthlyNoticeLead time.Duration
	// AnnualChargeLead is how long before expiry an annual renewal is
	// charged (ARS-2). Default 7 days.
	AnnualChargeLead time.Duration
	// MonthlyChargeLead is how long before expiry a monthly renewal is
	// charged (ARS-2). Default 0: on the expiry day. A zero here is the
	// default, so it cannot be told from "unset", which is harmless.
	MonthlyChargeLead time.Duration
	// AnnualMinNoticeToCharge is the least time between the pre-billing
	// e-mail and the charge for the same annual period (ARS-2). Default 7 days.
	AnnualMinNoticeToCharge time.Duration
	// MonthlyMinNoticeToCharge is the least time between the pre-billing
	// e-mail and the charge for the same monthly period (ARS-2). Default 3 days.
	MonthlyMinNoticeToCharge time.Duration
	// Grace is how long after expiry a subscription whose renewal charge is
	// pending stays current (ARS-2, ARS-6). Default 7 days.
	Grace time.Duration

	// ManualRenewalReminders are how long before expiry the manual-renewal
	// reminders are sent when automatic renewal is off (ARS-3), in
	// decreasing order (earliest reminder first). Default 30 and 7 days.
	ManualRenewalReminders []time.Duration
	// RetryOffsets are how long after the first declined charge it is
	// retried (ARS-6), in increasing order. Default 1, 3 and 5 days.
	RetryOffsets []time.Duration

	// RefundWindow is how long after an automatic-renewal (or trial-end)
	// charge a refund can be requested (ARS-7, TRI-5). Default 60 days.
	RefundWindow time.Duration
	// MonthlyInitialRefundWindow is how long after the initial purchase a
	// monthly subscription's cancellation refunds the initial charge in
	// full (MON-2). Default 30 days.
	MonthlyInitialRefundWindow time.Duration

	// TrialLength is how long a trial is current from its start (TRI-1).
	// Default 30 days.
	TrialLength time.Duration
	// TrialEndingNotice is how long before the trial ends the trial-ending
	// e-mail is sent (TRI-3), and so the least time between that e-mail and
	// the charge: a late one (the workers were down) pushes the charge into
	// grace, as ARS-2 does for renewals. Default 3 days.
	TrialEndingNotice time.Duration
}

// Default returns DOMAIN.md's policy values.
func Default() Policy {
	var p Policy
	p.setDefaults()
	return p
}

// New returns p with every unset field set to its default, or an error
// wrapping ErrInvalid that names each invalid field.
func New(p Policy) (Policy, error) {
	p.setDefaults()
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("invalid policy: %w", err)
	}
	return p, nil
}

// DeactivationAllowed reports whether a computer can be deactivated (KEY-5).
func (p Policy) DeactivationAllowed() bool { return !p.DisallowDeactivation }

// setDefaults fills every zero field with DOMAIN.md's value. Slices are
// copied from fresh literals so that callers never share backing arrays.
func (p *Policy) setDefaults() {
	setInt(&p.PasswordMinLength, 6)
	setInt(&p.PasswordMaxLength, 128)
	if p.Argon2id.Time == 0 {
		p.Argon2id.Time = 3
	}
	if p.Argon2id.MemoryKiB == 0 {
		p.Argon2id.MemoryKiB = 64 * 1024
	}
	if p.Argon2id.Threads == 0 {
		p.Argon2id.Threads = 4
	}
	if p.Argon2id.KeyLength == 0 {
		p.Argon2id.KeyLength = 32
	}
	if p.Argon2id.SaltLength == 0 {
		p.Argon2id.SaltLength = 16
	}
	setInt(&p.SignInMaxFailures, 5)
	setDuration(&p.SignInFailureWindow, 15*time.Minute)
	setDuration(&p.SignInLockout, 15*time.Minute)
	setDuration(&p.ResetTokenValidity, time.Hour)
	setDuration(&p.SessionTokenValidity, 30*Day)
	if p.DirectDebitCountries == nil {
		p.DirectDebitCountries = []string{"DE", "AT", "NL"}
	}
	setDuration(&p.AnnualNoticeLead, 30*Day)
	setDuration(&p.MonthlyNoticeLead, 3*Day)
	setDuration(&p.AnnualChargeLead, 7*Day)
	// MonthlyChargeLead's default is 0: nothing to set.
	setDuration(&p.AnnualMinNoticeToCharge, 7*Day)
	setDuration(&p.MonthlyMinNoticeToCharge, 3*Day)
	setDuration(&p.Grace, 7*Day)
	if p.ManualRenewalReminders == nil {
		p.ManualRenewalReminders = []time.Duration{30 * Day, 7 * Day}
	}
	if p.RetryOffsets == nil {
		p.RetryOffsets = []time.Duration{1 * Day, 3 * Day, 5 * Day}
	}
	setDuration(&p.RefundWindow, 60*Day)
	setDuration(&p.MonthlyInitialRefundWindow, 30*Day)
	setDuration(&p.TrialLength, 30*Day)
	setDuration(&p.TrialEndingNotice, 3*Day)
}

func setInt(f *int, v int) {
	if *f == 0 {
		*f = v
	}
}

func setDuration(f *time.Duration, v time.Duration) {
	if *f == 0 {
		*f = v
	}
}

// ErrInvalid is matched (errors.Is) by every error Validate returns.
var ErrInvalid = errors.New("invalid policy value")

// FieldError says which field of the Policy is invalid and why. It matches
// ErrInvalid.
type FieldError struct {
	// Field is the Go field path, e.g. "Argon2id.MemoryKiB" or "RetryOffsets[1]".
	Field string
	// Problem says what is wrong, e.g. "must be positive, got 0s".
	Problem string
}

// Error names the field and the problem.
func (e *FieldError) Error() string { return "policy: " + e.Field + ": " + e.Problem }

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Validate reports every invalid field of p, as *FieldError values joined
// with errors.Join (nil when p is valid). It does not apply defaults: a zero
// Policy is invalid, Default() and New's result are valid.
func (p Policy) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, "must be positive, got %s", d)
		}
	}

	if p.PasswordMinLength < 1 {
		bad("PasswordMinLength", "must be at least 1, got %d", p.PasswordMinLength)
	}
	if p.PasswordMaxLength < p.PasswordMinLength {
		bad("PasswordMaxLength", "must be at least PasswordMinLength (%d), got %d", p.PasswordMinLength, p.PasswordMaxLength)
	}
	if p.PasswordMaxLength > 1024 {
		bad("PasswordMaxLength", "must be at most 1024 to bound hashing work, got %d", p.PasswordMaxLength)
	}
	if p.Argon2id.Time < 1 {
		bad("Argon2id.Time", "must be at least 1, got %d", p.Argon2id.Time)
	}
	if p.Argon2id.Threads < 1 {
		bad("Argon2id.Threads", "must be at least 1, got %d", p.Argon2id.Threads)
	}
	// RFC 9106 §3.1: memory must be at least 8 KiB per lane.
	if p.Argon2id.MemoryKiB < 8*uint32(p.Argon2id.Threads) || p.Argon2id.MemoryKiB == 0 {
		bad("Argon2id.MemoryKiB", "must be at least 8 KiB per thread (%d), got %d", 8*uint32(p.Argon2id.Threads), p.Argon2id.MemoryKiB)
	}
	if p.Argon2id.KeyLength < 16 {
		bad("Argon2id.KeyLength", "must be at least 16 bytes, got %d", p.Argon2id.KeyLength)
	}
	if p.Argon2id.SaltLength < 16 {
		bad("Argon2id.SaltLength", "must be at least 16 bytes, got %d", p.Argon2id.SaltLength)
	}

	if p.SignInMaxFailures < 1 {
		bad("SignInMaxFailures", "must be at least 1, got %d", p.SignInMaxFailures)
	}
	positive("SignInFailureWindow", p.SignInFailureWindow)
	positive("SignInLockout", p.SignInLockout)
	positive("ResetTokenValidity", p.ResetTokenValidity)
	positive("SessionTokenValidity", p.SessionTokenValidity)

	seen := map[string]bool{}
	for i, c := range p.DirectDebitCountries {
		field := fmt.Sprintf("DirectDebitCountries[%d]", i)
		if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
			bad(field, "must be an ISO 3166-1 alpha-2 code in upper case, got %q", c)
		} else if seen[c] {
			bad(field, "duplicate country %q", c)
		}
		seen[c] = true
	}

	positive("AnnualNoticeLead", p.AnnualNoticeLead)
	positive("MonthlyNoticeLead", p.MonthlyNoticeLead)
	if p.AnnualChargeLead < 0 {
		bad("AnnualChargeLead", "must not be negative, got %s", p.AnnualChargeLead)
	}
	if p.MonthlyChargeLead < 0 {
		bad("MonthlyChargeLead", "must not be negative, got %s", p.MonthlyChargeLead)
	}
	// The notice must come before the charge it announces (ARS-2).
	if p.AnnualChargeLead >= p.AnnualNoticeLead && p.AnnualNoticeLead > 0 {
		bad("AnnualChargeLead", "must be less than AnnualNoticeLead (%s), got %s", p.AnnualNoticeLead, p.AnnualChargeLead)
	}
	if p.MonthlyChargeLead >= p.MonthlyNoticeLead && p.MonthlyNoticeLead > 0 {
		bad("MonthlyChargeLead", "must be less than MonthlyNoticeLead (%s), got %s", p.MonthlyNoticeLead, p.MonthlyChargeLead)
	}
	positive("AnnualMinNoticeToCharge", p.AnnualMinNoticeToCharge)
	positive("MonthlyMinNoticeToCharge", p.MonthlyMinNoticeToCharge)
	positive("Grace", p.Grace)

	for i, d := range p.ManualRenewalReminders {
		field := fmt.Sprintf("ManualRenewalReminders[%d]", i)
		switch {
		case d <= 0:
			bad(field, "must be positive, got %s", d)
		case i > 0 && d >= p.ManualRenewalReminders[i-1]:
			bad(field, "must be less than ManualRenewalReminders[%d] (%s), got %s", i-1, p.ManualRenewalReminders[i-1], d)
		}
	}
	for i, d := range p.RetryOffsets {
		field := fmt.Sprintf("RetryOffsets[%d]", i)
		switch {
		case d <= 0:
			bad(field, "must be positive, got %s", d)
		case i > 0 && d <= p.RetryOffsets[i-1]:
			bad(field, "must be greater than RetryOffsets[%d] (%s), got %s", i-1, p.RetryOffsets[i-1], d)
		}
	}

	positive("RefundWindow", p.RefundWindow)
	positive("MonthlyInitialRefundWindow", p.MonthlyInitialRefundWindow)
	positive("TrialLength", p.TrialLength)
	positive("TrialEndingNotice", p.TrialEndingNotice)
	if p.TrialEndingNotice >= p.TrialLength && p.TrialLength > 0 {
		bad("TrialEndingNotice", "must be less than TrialLength (%s), got %s", p.TrialLength, p.TrialEndingNotice)
	}
	return errors.Join(errs...)
}
