package account_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/decidertest"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
)

var (
	now       = decidertest.DefaultNow
	accountID = uuid.MustParse("0190b3c2-7d2e-7a7b-9a51-3c1f0e5d2a10")
	pol       = policy.Default()
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func registered() account.Registered {
	return account.Registered{AccountID: accountID, Email: must(account.ParseEmail("ann@example.com")),
		Name: must(account.ParseName("Ann Lee")), Country: must(account.ParseCountry("US")),
		Language: account.DefaultLanguage, PasswordHash: "hash-of-secret1"}
}

func matches(want string) func(string) bool {
	return func(hash string) bool { return hash == want }
}

func TestRule_ACC1_EmailComparedCaseInsensitivelyAfterTrimming(t *testing.T) {
	for _, in := range []string{"ann@example.com", "  Ann@Example.COM ", "ANN@EXAMPLE.COM\t"} {
		if got := must(account.ParseEmail(in)); got.String() != "ann@example.com" {
			t.Errorf("ParseEmail(%q) = %q", in, got)
		}
	}
	e := registered()
	if c := e.Claims(); len(c) != 1 || c[0].Scope != account.EmailScope || c[0].Key != "ann@example.com" {
		t.Errorf("registration claims %v, want the normalized e-mail", c)
	}
	decidertest.Given(t, account.Decider, e).When(account.Register{AccountID: accountID}).ThenError(account.ErrAlreadyRegistered)
}

func TestRule_ACC2_MalformedFieldsRefusedNamingEachField(t *testing.T) {
	cases := []struct {
		field string
		parse func() error
	}{
		{"email", func() error { _, err := account.ParseEmail("not-an-address"); return err }},
		{"email", func() error { _, err := account.ParseEmail(""); return err }},
		{"email", func() error { _, err := account.ParseEmail("Ann <ann@example.com>"); return err }},
		{"email", func() error { _, err := account.ParseEmail("jörg@example.de"); return err }},
		{"name", func() error { _, err := account.ParseName("  "); return err }},
		{"name", func() error { _, err := account.ParseName("Ann\x00"); return err }},
		{"country", func() error { _, err := account.ParseCountry("XX"); return err }},
		{"country", func() error { _, err := account.ParseCountry("USA"); return err }},
		{"language", func() error { _, err := account.ParseLanguage("english"); return err }},
	}
	for _, c := range cases {
		var v domain.Validation
		v.Check(c.field, c.parse())
		var ve *domain.ValidationError
		if !errors.As(v.Err(), &ve) || ve.Fields[0].Field != c.field {
			t.Errorf("%s: got %v, want an error naming %s", c.field, v.Err(), c.field)
		}
	}
	if _, err := account.ParseAddress(account.Address{City: "Paris"}); err == nil || !strings.Contains(err.Error(), "line1") {
		t.Errorf("address without line1: %v", err)
	}
}

func TestRule_ACC3_PasswordLengthBounds(t *testing.T) {
	cases := []struct {
		pw string
		ok bool
	}{
		{"12345", false}, {"123456", true}, {"pässwö", true}, {strings.Repeat("x", 128), true}, {strings.Repeat("x", 129), false},
	}
	for _, c := range cases {
		_, err := account.NewPassword(c.pw, pol)
		if (err == nil) != c.ok {
			t.Errorf("NewPassword(%d chars) error = %v, want ok=%v", len([]rune(c.pw)), err, c.ok)
		}
	}
	pw := must(account.NewPassword("s3cret-pass", pol))
	for _, shown := range []string{pw.String(), pw.GoString(), string(must(pw.MarshalJSON()))} {
		if strings.Contains(shown, "s3cret") {
			t.Errorf("a password printed as %q", shown)
		}
	}
}

func TestRule_ACC4_FiveFailuresIn15MinutesLockSignInFor15Minutes(t *testing.T) {
	wrong := account.SignIn{PasswordMatches: matches("other")}
	given := []domain.Event{registered()}
	for i := range 4 {
		given = append(given, account.SignInFailed{At: now.Add(time.Duration(i) * time.Minute)})
	}
	// The fifth failure within 15 minutes locks.
	at := now.Add(4 * time.Minute)
	decidertest.Given(t, account.Decider, given...).At(at).When(wrong).
		Then(account.SignInFailed{At: at}, account.SignInLocked{Until: at.Add(15 * time.Minute)})
	locked := append(given, account.SignInFailed{At: at}, account.SignInLocked{Until: at.Add(15 * time.Minute)})
	// Locked: even the right password is refused until the lock lifts.
	var lockErr *account.SignInLockedError
	right := account.SignIn{PasswordMatches: matches("hash-of-secret1")}
	decidertest.Given(t, account.Decider, locked...).At(at.Add(14 * time.Minute)).When(right).ThenError(&lockErr)
	if !lockErr.Until.Equal(at.Add(15 * time.Minute)) {
		t.Errorf("locked until %v", lockErr.Until)
	}
	lifted := at.Add(15 * time.Minute)
	decidertest.Given(t, account.Decider, locked...).At(lifted).When(right).Then(account.SignedIn{At: lifted})
	// Failures older than the window do not count.
	decidertest.Given(t, account.Decider, given...).At(now.Add(16 * time.Minute)).When(wrong).
		Then(account.SignInFailed{At: now.Add(16 * time.Minute)})
}

func TestRule_ACC5_ChangePasswordNeedsCurrentAndTheNewTwice(t *testing.T) {
	var ve *domain.ValidationError
	decidertest.Given(t, account.Decider, registered()).
		When(account.ChangePassword{CurrentMatches: matches("nope"), NewPasswordHash: "h2"}).ThenError(&ve)
	if ve.Fields[0].Field != "current_password" {
		t.Errorf("field %q", ve.Fields[0].Field)
	}
	decidertest.Given(t, account.Decider, registered()).
		When(account.ChangePassword{CurrentMatches: matches("hash-of-secret1"), NewPasswordHash: "h2"}).
		Then(account.PasswordChanged{PasswordHash: "h2"})
	_, err := account.NewPasswordTwice("newpass1", "newpass2", pol, "new_password", "new_password_again")
	if !errors.As(err, &ve) || ve.Fields[0].Field != "new_password_again" {
		t.Errorf("mismatch: %v", err)
	}
}

func TestRule_ACC6_ResetTokenOneHourSingleUseNewerVoidsOlder(t *testing.T) {
	first := account.PasswordResetRequested{ResetID: uuid.New(), TokenHash: "t1", ExpiresAt: now.Add(time.Hour)}
	decidertest.Given(t, account.Decider, registered()).When(account.RequestPasswordReset{ResetID: first.ResetID, TokenHash: "t1"}).Then(first)
	reset := account.ResetPassword{TokenHash: "t1", NewPasswordHash: "h2"}
	decidertest.Given(t, account.Decider, registered(), first).At(now.Add(59 * time.Minute)).When(reset).
		Then(account.PasswordReset{ResetID: first.ResetID, TokenHash: "t1", PasswordHash: "h2"})
	decidertest.Given(t, account.Decider, registered(), first).At(now.Add(time.Hour)).When(reset).ThenError(account.ErrResetTokenInvalid)
	used := account.PasswordReset{ResetID: first.ResetID, TokenHash: "t1", PasswordHash: "h2"}
	decidertest.Given(t, account.Decider, registered(), first, used).When(reset).ThenError(account.ErrResetTokenInvalid)
	second := account.PasswordResetRequested{ResetID: uuid.New(), TokenHash: "t2", ExpiresAt: now.Add(time.Hour), Voided: "t1"}
	decidertest.Given(t, account.Decider, registered(), first).When(account.RequestPasswordReset{ResetID: second.ResetID, TokenHash: "t2"}).Then(second)
	decidertest.Given(t, account.Decider, registered(), first, second).When(reset).ThenError(account.ErrResetTokenInvalid)
	if r := second.Releases(); len(r) != 1 || r[0].Key != "t1" {
		t.Errorf("the newer request releases %v, want the voided token's hash", r)
	}
}

func TestRule_ACC7_ProfileReplacedAsAWhole(t *testing.T) {
	update := account.UpdateProfile{Name: must(account.ParseName("Ann Smith")), Country: must(account.ParseCountry("CA")),
		Language: must(account.ParseLanguage("fr-ca")), Address: account.Address{Line1: "1 Main St", City: "Toronto"}}
	out := decidertest.Given(t, account.Decider, registered()).When(update).Then(account.ProfileUpdated(update))
	if st := out.State(); st.Name().String() != "Ann Smith" || st.Language().String() != "fr-CA" || st.Address().City != "Toronto" {
		t.Errorf("state after update: %+v", st)
	}
	// Billing is separate: a profile update leaves it alone, and the same
	// profile again records nothing.
	decidertest.Given(t, account.Decider, registered(), account.ProfileUpdated(update)).When(update).ThenNothing()
}

func TestRule_ACC8_DirectDebitOnlyInPolicyCountries(t *testing.T) {
	card := must(payment.NewCardMethod("tok_1", payment.Visa, "4242", 12, 2030, "Ann Lee"))
	debit := must(payment.NewDirectDebitMethod("tok_2", "DE", "3000", "Ann Lee"))
	cases := []struct {
		country string
		method  payment.PaymentMethod
		ok      bool
	}{
		{"US", card, true}, {"DE", card, true}, {"DE", debit, true}, {"AT", debit, true}, {"NL", debit, true},
		{"US", debit, false}, {"FR", debit, false},
	}
	for _, c := range cases {
		cmd := account.UpdateBilling{Country: must(account.ParseCountry(c.country)), Method: c.method}
		s := decidertest.Given(t, account.Decider, registered())
		if c.ok {
			s.When(cmd).Then(account.BillingUpdated(cmd))
			continue
		}
		var ve *domain.ValidationError
		s.When(cmd).ThenError(&ve)
		if ve.Fields[0].Field != "payment_method.type" {
			t.Errorf("%s: field %q", c.country, ve.Fields[0].Field)
		}
	}
}

// rule EML-2: an e-mail is recorded once per cause and kind.
func TestRule_EML2_EmailRecordedOncePerCause(t *testing.T) {
	cause := uuid.New()
	sent := account.EmailSent{Kind: "password_reset", Cause: cause, MessageID: "<x@subs>"}
	decidertest.Given(t, account.Decider, registered()).When(account.RecordEmailSent(sent)).Then(sent)
	decidertest.Given(t, account.Decider, registered(), sent).When(account.RecordEmailSent(sent)).ThenNothing()
}

func TestCommandsOnUnknownAccountRefused(t *testing.T) {
	decidertest.Given(t, account.Decider).When(account.UpdateProfile{}).ThenError(account.ErrNotFound)
}

// rule AUD-5: erasing an account records account.erased, which gives the
// e-mail address up (a personal claim: only its keyed hash is stored) and
// leaves no personal data in the state; the erased account then refuses
// every command as if it did not exist, and erasing again changes nothing.
func TestRule_AUD5_EraseForgetsPersonalDataAndFreesTheAddress(t *testing.T) {
	given := account.Decider.Fold(registered())
	events, err := account.Decider.Decide(given, account.Erase{}, now, pol)
	if err != nil || len(events) != 1 {
		t.Fatalf("erase: %v, %v", events, err)
	}
	erased, ok := events[0].(account.Erased)
	if !ok {
		t.Fatalf("erase decided %T", events[0])
	}
	if r := erased.Releases(); len(r) != 1 || r[0] != (domain.Claim{Scope: account.EmailScope, Key: "ann@example.com", Personal: true}) {
		t.Errorf("erasure releases %v, want the e-mail address", r)
	}
	if c := registered().Claims(); len(c) != 1 || !c[0].Personal {
		t.Errorf("the e-mail claim %v is not marked personal", c)
	}
	after := account.Decider.FoldFrom(given, erased)
	if !after.Erased() || after.Registered() || !after.Email().IsZero() || after.Name().String() != "" || after.PasswordHash() != "" {
		t.Errorf("state after erasure keeps personal data: %+v", after)
	}
	if _, _, ok := after.Billing(); ok {
		t.Error("state after erasure keeps the billing holder")
	}
	decidertest.Given(t, account.Decider, registered(), account.Erased{}).When(account.SignIn{PasswordMatches: matches("hash-of-secret1")}).ThenError(account.ErrNotFound)
	decidertest.Given(t, account.Decider, registered(), account.Erased{}).When(account.Erase{}).ThenNothing()
	decidertest.Given(t, account.Decider).When(account.Erase{}).ThenError(account.ErrNotFound)
}

// rule AUD-5: the personal fields of account events are named for the event
// store, and each event still decodes with them erased.
func TestRule_AUD5_AccountEventsDecodeWithPersonalFieldsErased(t *testing.T) {
	card := must(payment.NewCardMethod("tok_1", payment.Visa, "4242", 12, 2030, "Ann Lee"))
	profile := account.ProfileUpdated{Name: registered().Name, Address: account.Address{Line1: "1 Main St", City: "Springfield"},
		Country: registered().Country, Language: account.DefaultLanguage}
	for _, e := range []domain.Personal{registered(), profile, account.BillingUpdated{Country: registered().Country, Method: card}} {
		if e.DataSubject() != (domain.DataSubject{}) {
			t.Errorf("%T: subject %v, want the account of its stream", e, e.DataSubject())
		}
		var doc map[string]any
		if err := json.Unmarshal(must(json.Marshal(e)), &doc); err != nil {
			t.Fatal(err)
		}
		for _, f := range e.PersonalFields() {
			obj := doc
			parts := strings.Split(f.Path, ".")
			for _, p := range parts[:len(parts)-1] {
				obj = obj[p].(map[string]any)
			}
			obj[parts[len(parts)-1]] = f.Erased
		}
		erased := reflect.New(reflect.TypeOf(e))
		if err := json.Unmarshal(must(json.Marshal(doc)), erased.Interface()); err != nil {
			t.Errorf("%T does not decode erased: %v", e, err)
		}
		if b := string(must(json.Marshal(erased.Elem().Interface()))); strings.Contains(b, "Ann") || strings.Contains(b, "Main St") {
			t.Errorf("%T erased still reads %s", e, b)
		}
	}
}
