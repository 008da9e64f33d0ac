package order_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/decidertest"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/order"
	"github.com/subs-engine/subs/domain/subscription"
)

var (
	usd, _   = money.ParseCurrency("USD")
	orderID  = uuid.MustParse("0b6f7d4e-8a51-4c1a-9e4e-2f4a9f1d2c3b")
	annID    = uuid.MustParse("5a0c5a57-5f0e-4b7e-8f61-6f5a1b2c3d4e")
	number   = mustNumber("N0123456789")
	serial   = mustSerial("1234-5678-9012-3456")
	nisLines = []order.Line{{Product: "NIS", ProductName: "Norton Internet Security", Term: "annual", Platform: "windows", Quantity: 2,
		UnitPrice: money.New(5999, usd), Amount: money.New(11998, usd)}}
)

func mustNumber(s string) order.Number {
	n, err := order.ParseNumber(s)
	if err != nil {
		panic(err)
	}
	return n
}

func mustSerial(s string) subscription.SerialNumber {
	n, err := subscription.ParseSerialNumber(s)
	if err != nil {
		panic(err)
	}
	return n
}

// pending is an order placed with ann's e-mail and a wrong password, paid
// and fulfilled: it awaits her answer (ORD-2).
func pending() []domain.Event {
	return []domain.Event{
		order.Placed{OrderID: orderID, Number: number, Storefront: "US", Lines: nisLines, Total: money.New(11998, usd), BuyerEmail: "ann@example.com"},
		order.Paid{ChargeID: "ch_1", Amount: money.New(11998, usd)},
		order.Fulfilled{Items: []order.Item{{SubscriptionID: uuid.New(), Product: "NIS", Serial: serial, Registrable: true}}},
	}
}

func TestRule_ORD3_RecognizeWithOrderNumberOrSerial(t *testing.T) {
	for name, answer := range map[string]string{"order number": " n0123456789 ", "serial": "1234567890123456"} {
		t.Run(name, func(t *testing.T) {
			via := "order_number"
			if name == "serial" {
				via = "serial_number"
			}
			decidertest.Given(t, order.Decider, pending()...).
				When(order.Recognize{AccountID: annID, AccountEmail: "ANN@example.com", Answer: answer}).
				Then(order.Saved{AccountID: annID, Via: via})
		})
	}
}

func TestRule_ORD3_WrongAnswerSavesNothing(t *testing.T) {
	for _, answer := range []string{"N9999999999", "9999-9999-9999-9999", "hello"} {
		decidertest.Given(t, order.Decider, pending()...).
			When(order.Recognize{AccountID: annID, AccountEmail: "ann@example.com", Answer: answer}).
			ThenError(order.ErrWrongAnswer)
	}
}

func TestRule_ORD3_OnlyTheBuyerEmailsAccountAndOnlyOnce(t *testing.T) {
	decidertest.Given(t, order.Decider, pending()...).
		When(order.Recognize{AccountID: uuid.New(), AccountEmail: "bob@example.com", Answer: number.String()}).
		ThenError(order.ErrNotFound)
	saved := append(pending(), order.Saved{AccountID: annID, Via: "order_number"})
	decidertest.Given(t, order.Decider, saved...).
		When(order.Recognize{AccountID: annID, AccountEmail: "ann@example.com", Answer: number.String()}).
		ThenError(order.ErrNotPending)
}

func TestRule_ORD4_DisownRecordsAndEndsThePendingState(t *testing.T) {
	out := decidertest.Given(t, order.Decider, pending()...).
		When(order.Disown{AccountID: annID, AccountEmail: "ann@example.com"}).
		Then(order.Disowned{AccountID: annID})
	if st := out.State(); st.Pending() || st.SavedTo() != uuid.Nil || !st.Disowned() {
		t.Errorf("after disown: pending %v, saved to %v, disowned %v", st.Pending(), st.SavedTo(), st.Disowned())
	}
	disowned := append(pending(), order.Disowned{AccountID: annID})
	decidertest.Given(t, order.Decider, disowned...).
		When(order.Recognize{AccountID: annID, AccountEmail: "ann@example.com", Answer: number.String()}).
		ThenError(order.ErrNotPending)
}

func TestCheckLines_RefusesLinesThatDoNotAddUp(t *testing.T) {
	placed := func(lines []order.Line, total int64) order.Place {
		return order.Place{Placed: order.Placed{OrderID: orderID, Number: number, Storefront: "US", Lines: lines, Total: money.New(total, usd)}}
	}
	bad := nisLines[0]
	bad.Amount = money.New(5999, usd)
	zero := nisLines[0]
	zero.Quantity = 0
	for name, c := range map[string]struct {
		cmd   order.Place
		field string
	}{
		"no line":          {placed(nil, 0), "lines"},
		"amount":           {placed([]order.Line{bad}, 5999), "lines[0].amount"},
		"quantity":         {placed([]order.Line{zero}, 0), "lines[0].quantity"},
		"total":            {placed(nisLines, 1), "total"},
		"mixed currencies": {placed(nisLines, 11998), ""},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "mixed currencies" {
				eur, _ := money.ParseCurrency("EUR")
				c.cmd.Placed.Total = money.New(11998, eur)
				c.field = "lines[0].unit_price"
			}
			var ve *domain.ValidationError
			decidertest.Given(t, order.Decider).When(c.cmd).ThenError(&ve)
			if ve.Fields[0].Field != c.field {
				t.Errorf("field %q, want %q", ve.Fields[0].Field, c.field)
			}
		})
	}
	decidertest.Given(t, order.Decider).When(placed(nisLines, 11998)).Then(placedAt(placed(nisLines, 11998).Placed, decidertest.DefaultNow))
}

func placedAt(p order.Placed, at time.Time) order.Placed {
	p.PlacedAt = at
	return p
}

// rule TIM-1: an order is placed at its command's instant, whatever instant
// the caller read before (one command sees one instant).
func TestRule_TIM1_OrderPlacedAtTheCommandsInstant(t *testing.T) {
	read := decidertest.DefaultNow.Add(-time.Second)
	cmd := order.Place{Placed: placedAt(order.Placed{OrderID: orderID, Number: number, Storefront: "US", Lines: nisLines,
		Total: money.New(11998, usd)}, read)}
	decidertest.Given(t, order.Decider).When(cmd).Then(placedAt(cmd.Placed, decidertest.DefaultNow))
}

func TestFulfil_OnlyPaidOrdersOnce(t *testing.T) {
	placed := pending()[0]
	decidertest.Given(t, order.Decider, placed).When(order.Fulfill{Items: nil}).ThenError(order.ErrNotPaid)
	decidertest.Given(t, order.Decider, pending()...).When(order.Fulfill{Items: []order.Item{{Product: "NIS"}}}).ThenNothing()
	decidertest.Given(t, order.Decider, placed).When(order.RecordCharge{DeclineCode: "card_declined"}).
		Then(order.PaymentDeclined{DeclineCode: "card_declined"})
}

func TestRecordEmailSent_Once(t *testing.T) {
	sent := order.EmailSent{Kind: "order_confirmation", Cause: uuid.New(), MessageID: "<x@subs>"}
	decidertest.Given(t, order.Decider, pending()...).When(order.RecordEmailSent(sent)).Then(sent)
	decidertest.Given(t, order.Decider, append(pending(), sent)...).When(order.RecordEmailSent(sent)).ThenNothing()
}

// rule AUD-5: an order's buyer e-mail is personal data of the account it was
// saved in at placement, otherwise of the address itself.
func TestRule_AUD5_BuyerEmailBelongsToTheAccountOrTheAddress(t *testing.T) {
	acct := uuid.New()
	saved := order.Placed{BuyerEmail: "ann@example.com", SavedTo: acct}
	if got := saved.DataSubject(); got != (domain.DataSubject{Account: acct}) {
		t.Errorf("saved order's subject %v", got)
	}
	guest := order.Placed{BuyerEmail: "ann@example.com"}
	if got := guest.DataSubject(); got != (domain.DataSubject{Email: "ann@example.com"}) {
		t.Errorf("guest order's subject %v", got)
	}
	if f := guest.PersonalFields(); len(f) != 1 || f[0].Path != "buyer_email" || f[0].Erased != domain.ErasedText {
		t.Errorf("personal fields %v", f)
	}
}
