package simulation

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/workers/mail"
)

// The report's lifecycle check must be able to fail: each behaviour's
// forbidden charge is flagged, and the allowed ones are not.
// rule TRI-2, ARS-3, MON-1, ARS-6, ARS-7.
func TestRule_TRI2_ReportFlagsChargesTheRulesForbid(t *testing.T) {
	s := &sim{cfg: Config{Policy: policy.Default()}}
	day := policy.Day
	at := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	acted := []action{{at: at}}
	charge := func(d time.Duration, refunded bool) gatewayCharge {
		return gatewayCharge{at: at.Add(d), refunded: refunded}
	}
	for _, c := range []struct {
		name    string
		c       customer
		charges []gatewayCharge
		flagged bool
	}{
		{"opted-out trial charged", customer{kind: kindOptsOut, actions: acted}, []gatewayCharge{charge(10*day, false)}, true},
		{"opted-out trial not charged", customer{kind: kindOptsOut, actions: acted}, nil, false},
		{"declined card charged", customer{kind: kindDeclinedCard}, []gatewayCharge{charge(0, false)}, true},
		{"renewal off, charged after", customer{kind: kindCancels, actions: acted}, []gatewayCharge{charge(-30*day, false), charge(day, false)}, true},
		{"renewal off, charged before only", customer{kind: kindCancels, actions: acted}, []gatewayCharge{charge(-30*day, false)}, false},
		{"renewal off, charged at the same instant, first", customer{kind: kindCancels, actions: acted}, []gatewayCharge{charge(0, false)}, false},
		{"expired card charged after its expiry", customer{kind: kindExpiringCard, cardExpiry: at}, []gatewayCharge{charge(day, false)}, true},
		{"refund in the window not made", customer{kind: kindRefunds, actions: acted}, []gatewayCharge{charge(-10*day, false)}, true},
		{"refund in the window made", customer{kind: kindRefunds, actions: acted}, []gatewayCharge{charge(-10*day, true)}, false},
		{"refund after the window made", customer{kind: kindRefunds, actions: acted}, []gatewayCharge{charge(-61*day, true)}, true},
		{"refund after the window refused", customer{kind: kindRefunds, actions: acted}, []gatewayCharge{charge(-61*day, false)}, false},
		{"refund the year ended before", customer{kind: kindRefunds, actions: []action{{at: at.AddDate(1, 0, 0)}}}, []gatewayCharge{charge(-10*day, false)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if why := s.forbiddenCharge(c.c, c.charges, at.AddDate(1, 0, 0)); (why != "") != c.flagged {
				t.Errorf("flagged %q, want flagged %v", why, c.flagged)
			}
		})
	}
}

// twice delivers every message it is given, and counts nothing itself.
type twice struct{ got []mail.Message }

func (t *twice) Send(_ context.Context, m mail.Message) error { t.got = append(t.got, m); return nil }

// rule EML-2: the report counts the sends at the sender, a source apart
// from the records: one cause sent twice is counted as such.
func TestRule_EML2_ReportCountsACauseSentTwice(t *testing.T) {
	s := newSends(&twice{})
	cause := uuid.New()
	for _, m := range []mail.Message{{CausationID: cause, Kind: "renewal_notice"}, {CausationID: cause, Kind: "renewal_notice"},
		{CausationID: uuid.New(), Kind: "renewal_receipt"}} {
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	causes, sentTwice := s.byKind()
	if sentTwice != 1 || causes["renewal_notice"] != 1 || causes["renewal_receipt"] != 1 {
		t.Fatalf("causes %v, twice %d; want one notice cause sent twice and one receipt", causes, sentTwice)
	}
	if mail.DeliversOnce(s) {
		t.Error("a counting sender around one that may deliver twice claims to deliver once")
	}
	if md, err := mail.NewMaildir(t.TempDir(), ""); err != nil || !mail.DeliversOnce(newSends(md)) {
		t.Errorf("a counting sender around the maildir does not deliver once (%v): the outbox would record each send alone", err)
	}
}

// rule ARS-2: the report flags a charge with no notice of its period, or
// one that came sooner after its last notice than the policy allows.
func TestRule_ARS2_ReportFlagsAChargeTooSoonAfterItsNotice(t *testing.T) {
	id := uuid.New()
	at := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	notices := map[string][]notice{id.String() + "/1": {{at: at, gap: 7 * policy.Day}, {at: at.Add(10 * policy.Day), gap: 7 * policy.Day}}}
	for _, c := range []struct {
		name    string
		charge  gatewayCharge
		flagged bool
	}{
		{"7 days after the notice", gatewayCharge{period: 1, at: at.Add(7 * policy.Day)}, false},
		{"6 days after the notice", gatewayCharge{period: 1, at: at.Add(6 * policy.Day)}, true},
		{"3 days after a notice given again", gatewayCharge{period: 1, at: at.Add(13 * policy.Day)}, true},
		{"7 days after the notice given again", gatewayCharge{period: 1, at: at.Add(17 * policy.Day)}, false},
		{"a period never noticed", gatewayCharge{period: 2, at: at.Add(400 * policy.Day)}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if early := earlyCharges(notices, map[uuid.UUID][]gatewayCharge{id: {c.charge}}); (len(early) > 0) != c.flagged {
				t.Errorf("flagged %v, want flagged %v", early, c.flagged)
			}
		})
	}
}
