package mail_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/mail/mailtest"
)

func mustTemplates(t *testing.T) *mail.Templates {
	t.Helper()
	tpl, err := mail.NewTemplates()
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func passwordResetData() map[string]any {
	return map[string]any{
		"Name":     "Ada <Lovelace>",
		"ResetURL": "https://subs.example/reset?token=abc&x=1",
		"ValidFor": "1 hour",
	}
}

func TestTemplates_kinds(t *testing.T) {
	t.Parallel()
	if got := mustTemplates(t).Kinds(); !slices.Contains(got, "password_reset") {
		t.Errorf("Kinds() = %v, want password_reset among them", got)
	}
}

func TestTemplates_passwordReset(t *testing.T) {
	t.Parallel()
	m, err := mustTemplates(t).Fill(mailtest.Message(uuid.New()), passwordResetData())
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Reset your password" {
		t.Errorf("Subject = %q", m.Subject)
	}
	for _, want := range []string{"Hello Ada <Lovelace>,", "https://subs.example/reset?token=abc&x=1", "expires in 1 hour", "did not ask", "nothing\nchanges"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("Text lacks %q:\n%s", want, m.Text)
		}
	}
	// html/template escapes the name and keeps the link's query intact.
	for _, want := range []string{"Hello Ada &lt;Lovelace&gt;,", `href="https://subs.example/reset?token=abc&amp;x=1"`, "expires in 1 hour"} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML lacks %q:\n%s", want, m.HTML)
		}
	}
	// The filled message renders and sends.
	d, err := mail.NewMaildir(filepath.Join(t.TempDir(), "mail"), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func TestTemplates_missingKeyIsNamed(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"Name", "ResetURL", "ValidFor"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			data := passwordResetData()
			delete(data, key)
			_, err := mustTemplates(t).Fill(mailtest.Message(uuid.New()), data)
			if err == nil || !strings.Contains(err.Error(), `"`+key+`"`) || !strings.Contains(err.Error(), "password_reset") {
				t.Errorf("Fill without %s = %v, want an error naming the key and the template", key, err)
			}
			if err != nil && strings.Contains(err.Error(), "token=abc") {
				t.Errorf("error %q quotes a data value", err)
			}
		})
	}
}

func TestTemplates_unknownKind(t *testing.T) {
	t.Parallel()
	m := mailtest.Message(uuid.New())
	m.Kind = "no_such_kind"
	if _, err := mustTemplates(t).Fill(m, passwordResetData()); err == nil || !strings.Contains(err.Error(), "no_such_kind") {
		t.Errorf("Fill for an unknown kind = %v, want an error naming it", err)
	}
}

// renewalData is what workers/outbox gives each renewal e-mail (EML-1).
func renewalData() map[string]any {
	return map[string]any{
		"Name": "Ann Lee", "Product": "Norton Security Deluxe", "Key": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE",
		"BillingURL": "https://subs.example/account/billing", "Term": "annual", "RenewsOn": "March 1, 2028",
		"ChargeOn": "February 23, 2028", "Fee": "USD 89.99", "ExpiresOn": "March 1, 2029", "DaysLeft": "7 days",
		"EndsOn": "March 31, 2027", "Price": "USD 89.99", "Amount": "USD 89.99", "PaidOn": "February 23, 2028",
		"ChargeID": "ch_1", "DeclineCode": "card_declined", "RetryOn": "February 24, 2028", "LastFour": "4242",
		"CardExpiry": "01/2028", "RefundedOn": "March 10, 2028", "Ended": false, "ManagedOn": "", "Unsaved": false, "CardOnly": false,
		"RenewalPage": "the products view of your account",
	}
}

// rule ARS-5, ORD-5, TRI-1: the renewal prompts say what can be done where
// it can: a subscription of an Asian store is managed on that store, one of
// an order saved in no account once the order is saved (its card is the
// order's; a billing update does not retry it at once), a trial's payment
// is a card.
func TestRule_ARS5_RenewalPromptsSayWhereTheRenewalIsManaged(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind, fact string
		value      any
		want, not  []string
	}{
		{"trial_ending", "ManagedOn", "JP", []string{"turn automatic renewal off on the JP online store"}, []string{"products view"}},
		{"renewal_notice", "ManagedOn", "JP", []string{"managed on the JP online store", "https://subs.example/account/billing"}, []string{"products view"}},
		{"renewal_reminder", "ManagedOn", "JP", []string{"on the JP online store"}, []string{"products view"}},
		{"trial_ending", "Unsaved", true, []string{"say you recognize it", "to the card you gave"}, []string{"billing information or"}},
		{"renewal_notice", "Unsaved", true, []string{"say you recognize it", "card given"}, []string{"products view"}},
		{"card_expiring", "Unsaved", true, []string{"say you recognize it", "card given with its order"}, nil},
		{"charge_declined", "Unsaved", true, []string{"say you recognize it", "try again on February 24, 2028"}, []string{"at once"}},
		{"card_expiring", "CardOnly", true, []string{"credit or debit card"}, nil},
		{"renewal_notice", "RenewalPage", "the order history of your account", []string{"off in the order history of your account"}, []string{"products view"}},
		{"renewal_reminder", "RenewalPage", "the order history of your account", []string{"on in the order history of your account"}, []string{"products view"}},
		{"charge_declined", "CardOnly", true, []string{"credit or debit card"}, nil},
	}
	for _, c := range cases {
		msg := mailtest.Message(uuid.New())
		msg.Kind = c.kind
		data := renewalData()
		data[c.fact] = c.value
		m, err := mustTemplates(t).Fill(msg, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{strings.Join(strings.Fields(m.Text), " "), m.HTML} {
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s with %s=%v lacks %q: %s", c.kind, c.fact, c.value, w, body)
				}
			}
			for _, n := range c.not {
				if strings.Contains(body, n) {
					t.Errorf("%s with %s=%v says %q: %s", c.kind, c.fact, c.value, n, body)
				}
			}
		}
	}
}

// rule EML-1, ARS-7: the refund confirmation says the subscription ended
// when the term taken back leaves its end in the past, and when it now
// expires otherwise.
func TestRule_EML1_RefundConfirmationSaysWhetherTheSubscriptionEnded(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		ended     bool
		want, not string
	}{
		{true, "ended on March 1, 2029", "now expires"},
		{false, "now expires on March 1, 2029", "ended on"},
	} {
		msg := mailtest.Message(uuid.New())
		msg.Kind = "refund_confirmation"
		data := renewalData()
		data["Ended"] = c.ended
		m, err := mustTemplates(t).Fill(msg, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{m.Text, m.HTML} {
			if !strings.Contains(body, c.want) || strings.Contains(body, c.not) {
				t.Errorf("ended %v: %q, want %q and no %q", c.ended, body, c.want, c.not)
			}
		}
	}
}

// rule EML-1: each renewal e-mail renders its facts in its subject, text
// and HTML, and names a missing fact instead of sending "<no value>".
func TestRule_EML1_RenewalTemplatesStateTheirFacts(t *testing.T) {
	t.Parallel()
	for kind, facts := range map[string][]string{
		"renewal_notice":      {"March 1, 2028", "USD 89.99", "February 23, 2028", "annual"},
		"renewal_reminder":    {"March 1, 2029", "7 days"},
		"trial_ending":        {"March 31, 2027", "USD 89.99"},
		"renewal_receipt":     {"USD 89.99", "March 1, 2029", "ch_1"},
		"charge_declined":     {"card_declined", "February 24, 2028", "https://subs.example/account/billing"},
		"card_expiring":       {"4242", "01/2028", "February 23, 2028"},
		"refund_confirmation": {"USD 89.99", "March 10, 2028"},
	} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			msg := mailtest.Message(uuid.New())
			msg.Kind = kind
			m, err := mustTemplates(t).Fill(msg, renewalData())
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject == "" || m.HTML == "" || !strings.Contains(m.Text, "Norton Security Deluxe") {
				t.Errorf("%s: subject %q, html %d bytes, text %q", kind, m.Subject, len(m.HTML), m.Text)
			}
			for _, f := range facts {
				if !strings.Contains(m.Subject+"\n"+m.Text, f) || !strings.Contains(m.HTML, f) {
					t.Errorf("%s lacks %q", kind, f)
				}
			}
			data := renewalData()
			delete(data, "Product")
			if _, err := mustTemplates(t).Fill(msg, data); err == nil || !strings.Contains(err.Error(), `"Product"`) {
				t.Errorf("%s without Product: %v", kind, err)
			}
		})
	}
}
