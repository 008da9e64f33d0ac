package policy_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/policy"
)

const day = policy.Day

func TestDefaultMatchesDomain(t *testing.T) {
	t.Parallel()
	p := policy.Default()
	tests := []struct {
		rule string
		got  any
		want any
	}{
		{"ACC-3 PasswordMinLength", p.PasswordMinLength, 6},
		{"ACC-3 PasswordMaxLength", p.PasswordMaxLength, 128},
		{"ACC-3 Argon2id.Time", p.Argon2id.Time, uint32(3)},
		{"ACC-3 Argon2id.MemoryKiB", p.Argon2id.MemoryKiB, uint32(64 * 1024)},
		{"ACC-3 Argon2id.Threads", p.Argon2id.Threads, uint8(4)},
		{"ACC-3 Argon2id.KeyLength", p.Argon2id.KeyLength, uint32(32)},
		{"ACC-3 Argon2id.SaltLength", p.Argon2id.SaltLength, uint32(16)},
		{"ACC-4 SignInMaxFailures", p.SignInMaxFailures, 5},
		{"ACC-4 SignInFailureWindow", p.SignInFailureWindow, 15 * time.Minute},
		{"ACC-4 SignInLockout", p.SignInLockout, 15 * time.Minute},
		{"ACC-6 ResetTokenValidity", p.ResetTokenValidity, time.Hour},
		{"SessionTokenValidity", p.SessionTokenValidity, 30 * day},
		{"ACC-8 DirectDebitCountries", p.DirectDebitCountries, []string{"DE", "AT", "NL"}},
		{"KEY-5 DeactivationAllowed", p.DeactivationAllowed(), true},
		{"ARS-2 AnnualNoticeLead", p.AnnualNoticeLead, 30 * day},
		{"ARS-2 MonthlyNoticeLead", p.MonthlyNoticeLead, 3 * day},
		{"ARS-2 AnnualChargeLead", p.AnnualChargeLead, 7 * day},
		{"ARS-2 MonthlyChargeLead", p.MonthlyChargeLead, time.Duration(0)},
		{"ARS-2 AnnualMinNoticeToCharge", p.AnnualMinNoticeToCharge, 7 * day},
		{"ARS-2 MonthlyMinNoticeToCharge", p.MonthlyMinNoticeToCharge, 3 * day},
		{"ARS-2 Grace", p.Grace, 7 * day},
		{"ARS-3 ManualRenewalReminders", p.ManualRenewalReminders, []time.Duration{30 * day, 7 * day}},
		{"ARS-6 RetryOffsets", p.RetryOffsets, []time.Duration{1 * day, 3 * day, 5 * day}},
		{"ARS-7 RefundWindow", p.RefundWindow, 60 * day},
		{"MON-2 MonthlyInitialRefundWindow", p.MonthlyInitialRefundWindow, 30 * day},
		{"TRI-1 TrialLength", p.TrialLength, 30 * day},
		{"TRI-3 TrialEndingNotice", p.TrialEndingNotice, 3 * day},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	t.Parallel()
	got, err := policy.New(policy.Policy{})
	if err != nil {
		t.Fatalf("New(Policy{}): %v", err)
	}
	if !reflect.DeepEqual(got, policy.Default()) {
		t.Errorf("New(Policy{}) = %+v, want Default()", got)
	}

	got, err = policy.New(policy.Policy{Grace: 2 * day, RetryOffsets: []time.Duration{}, DisallowDeactivation: true})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got.Grace != 2*day {
		t.Errorf("Grace = %v, want the given 48h", got.Grace)
	}
	if got.RetryOffsets == nil || len(got.RetryOffsets) != 0 {
		t.Errorf("RetryOffsets = %v, want the given empty list (no retries)", got.RetryOffsets)
	}
	if got.DeactivationAllowed() {
		t.Error("DeactivationAllowed() = true, want false")
	}
	if got.TrialLength != 30*day {
		t.Errorf("TrialLength = %v, want the default", got.TrialLength)
	}
}

func TestNewRefusesInvalid(t *testing.T) {
	t.Parallel()
	_, err := policy.New(policy.Policy{TrialEndingNotice: 40 * day})
	if !errors.Is(err, policy.ErrInvalid) || !strings.Contains(err.Error(), "TrialEndingNotice") {
		t.Fatalf("New error = %v, want ErrInvalid naming TrialEndingNotice", err)
	}
	if !strings.HasPrefix(err.Error(), "invalid policy: ") {
		t.Errorf("error %q is not wrapped as invalid policy", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*policy.Policy)
		field  string // empty: valid
	}{
		{"default", func(*policy.Policy) {}, ""},
		{"no reminders", func(p *policy.Policy) { p.ManualRenewalReminders = []time.Duration{} }, ""},
		{"no direct debit", func(p *policy.Policy) { p.DirectDebitCountries = []string{} }, ""},
		{"password min zero", func(p *policy.Policy) { p.PasswordMinLength = 0 }, "PasswordMinLength"},
		{"password max below min", func(p *policy.Policy) { p.PasswordMaxLength = 5 }, "PasswordMaxLength"},
		{"password max huge", func(p *policy.Policy) { p.PasswordMaxLength = 1 << 20 }, "PasswordMaxLength"},
		{"argon time zero", func(p *policy.Policy) { p.Argon2id.Time = 0 }, "Argon2id.Time"},
		{"argon threads zero", func(p *policy.Policy) { p.Argon2id.Threads = 0 }, "Argon2id.Threads"},
		{"argon memory too small", func(p *policy.Policy) { p.Argon2id.MemoryKiB = 16 }, "Argon2id.MemoryKiB"},
		{"argon key short", func(p *policy.Policy) { p.Argon2id.KeyLength = 8 }, "Argon2id.KeyLength"},
		{"argon salt short", func(p *policy.Policy) { p.Argon2id.SaltLength = 4 }, "Argon2id.SaltLength"},
		{"max failures zero", func(p *policy.Policy) { p.SignInMaxFailures = 0 }, "SignInMaxFailures"},
		{"failure window negative", func(p *policy.Policy) { p.SignInFailureWindow = -time.Minute }, "SignInFailureWindow"},
		{"lockout zero", func(p *policy.Policy) { p.SignInLockout = 0 }, "SignInLockout"},
		{"reset token zero", func(p *policy.Policy) { p.ResetTokenValidity = 0 }, "ResetTokenValidity"},
		{"session zero", func(p *policy.Policy) { p.SessionTokenValidity = 0 }, "SessionTokenValidity"},
		{"country lower case", func(p *policy.Policy) { p.DirectDebitCountries = []string{"de"} }, "DirectDebitCountries[0]"},
		{"country duplicate", func(p *policy.Policy) { p.DirectDebitCountries = []string{"DE", "DE"} }, "DirectDebitCountries[1]"},
		{"annual notice zero", func(p *policy.Policy) { p.AnnualNoticeLead = 0 }, "AnnualNoticeLead"},
		{"monthly notice zero", func(p *policy.Policy) { p.MonthlyNoticeLead = 0 }, "MonthlyNoticeLead"},
		{"annual charge after notice", func(p *policy.Policy) { p.AnnualChargeLead = 30 * day }, "AnnualChargeLead"},
		{"annual charge negative", func(p *policy.Policy) { p.AnnualChargeLead = -day }, "AnnualChargeLead"},
		{"monthly charge negative", func(p *policy.Policy) { p.MonthlyChargeLead = -day }, "MonthlyChargeLead"},
		{"monthly charge after notice", func(p *policy.Policy) { p.MonthlyChargeLead = 3 * day }, "MonthlyChargeLead"},
		{"annual gap zero", func(p *policy.Policy) { p.AnnualMinNoticeToCharge = 0 }, "AnnualMinNoticeToCharge"},
		{"monthly gap zero", func(p *policy.Policy) { p.MonthlyMinNoticeToCharge = 0 }, "MonthlyMinNoticeToCharge"},
		{"grace zero", func(p *policy.Policy) { p.Grace = 0 }, "Grace"},
		{"reminder zero", func(p *policy.Policy) { p.ManualRenewalReminders = []time.Duration{30 * day, 0} }, "ManualRenewalReminders[1]"},
		{"reminders increasing", func(p *policy.Policy) { p.ManualRenewalReminders = []time.Duration{7 * day, 30 * day} }, "ManualRenewalReminders[1]"},
		{"retry negative", func(p *policy.Policy) { p.RetryOffsets = []time.Duration{-day} }, "RetryOffsets[0]"},
		{"retries not increasing", func(p *policy.Policy) { p.RetryOffsets = []time.Duration{day, day} }, "RetryOffsets[1]"},
		{"refund window zero", func(p *policy.Policy) { p.RefundWindow = 0 }, "RefundWindow"},
		{"monthly refund zero", func(p *policy.Policy) { p.MonthlyInitialRefundWindow = 0 }, "MonthlyInitialRefundWindow"},
		{"trial zero", func(p *policy.Policy) { p.TrialLength = 0 }, "TrialLength"},
		{"trial notice zero", func(p *policy.Policy) { p.TrialEndingNotice = 0 }, "TrialEndingNotice"},
		{"trial notice too long", func(p *policy.Policy) { p.TrialEndingNotice = 30 * day }, "TrialEndingNotice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := policy.Default()
			tt.change(&p)
			err := p.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
			var fe *policy.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Validate() = %v, want a FieldError for %s", err, tt.field)
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	err := policy.Policy{}.Validate()
	for _, field := range []string{"PasswordMinLength", "Argon2id.Time", "SignInLockout", "Grace", "TrialLength"} {
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate() of the zero Policy does not name %s: %v", field, err)
		}
	}
}
