package subscription_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/decidertest"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
)

var (
	cat   = catalogdata.MustLoad()
	now   = decidertest.DefaultNow
	ann   = uuid.MustParse("0190a000-0000-7000-8000-000000000001")
	bob   = uuid.MustParse("0190a000-0000-7000-8000-000000000002")
	order = uuid.MustParse("0190a000-0000-7000-8000-0000000000aa")
)

func mustKey(t testing.TB, s string) subscription.ProductKey {
	t.Helper()
	k, err := subscription.ParseProductKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustDevice(t testing.TB, s string) subscription.DeviceID {
	t.Helper()
	d, err := subscription.ParseDeviceID(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// created returns the Created event of a subscription of product for term
// on platform, started a month before DefaultNow.
func created(t testing.TB, product string, term catalog.Term, platform catalog.Platform, origin subscription.Origin) subscription.Created {
	t.Helper()
	p, err := cat.Product(product)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := subscription.ParseSerialNumber("1234-5678-9012-3456")
	if err != nil {
		t.Fatal(err)
	}
	c, err := subscription.NewCreated(uuid.MustParse("0190a000-0000-7000-8000-0000000000cc"), p, term, platform,
		mustKey(t, "ACDEF-GHJKM-NPQRT-UVWXY-34679"), serial, now.AddDate(0, -1, 0), policy.Default(), origin)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func nis(t testing.TB) subscription.Created {
	return created(t, "NIS", catalog.Annual, catalog.Windows, subscription.Origin{})
}

func TestNewCreated_CopiesTheCatalogAndEndsOneTermLater(t *testing.T) {
	c := nis(t)
	start := now.AddDate(0, -1, 0)
	if c.Product != "NIS" || c.ProductName != "Norton Internet Security" || c.Seats != 3 || c.Term != "annual" || c.Platform != "windows" ||
		!c.Registrable || !c.Legacy || !c.RecoveryTool || c.AutoRenew || c.OrderID != uuid.Nil || c.Storefront != "" ||
		!c.StartsAt.Equal(start) || !c.ExpiresAt.Equal(start.AddDate(1, 0, 0)) {
		t.Errorf("created %+v", c)
	}
	if mac := created(t, "NIS", catalog.Annual, catalog.Mac, subscription.Origin{}); mac.RecoveryTool {
		t.Error("NIS for Mac offers the recovery tool")
	}
	if first := created(t, "N360", catalog.Annual, catalog.Platform{}, subscription.Origin{}); first.Platform != "windows" {
		t.Errorf("a zero platform gave %q, want the product's first", first.Platform)
	}
	trial := created(t, "NS-DLX", catalog.Trial, catalog.Windows, subscription.Origin{})
	if !trial.ExpiresAt.Equal(trial.StartsAt.Add(policy.Default().TrialLength)) {
		t.Errorf("trial ends %v", trial.ExpiresAt)
	}
	jan31 := time.Date(2027, 1, 31, 10, 0, 0, 0, time.UTC)
	if got := subscription.TermEnd(catalog.Monthly, jan31, policy.Default()); !got.Equal(time.Date(2027, 2, 28, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("a month from January 31 ends %v, want February 28", got)
	}
	jp, _ := cat.Storefront("JP")
	bought := created(t, "NS-PRM", catalog.Monthly, catalog.Mac, subscription.Origin{OrderID: order, Storefront: jp, AutoRenew: true})
	if bought.OrderID != order || bought.Storefront != "JP" || !bought.AsianStore || !bought.AutoRenew {
		t.Errorf("bought %+v", bought)
	}
}

func TestNewCreated_RefusesWhatTheCatalogDoesNotSell(t *testing.T) {
	nu, _ := cat.Product("NU")
	n360, _ := cat.Product("N360")
	key := mustKey(t, "ACDEF-GHJKM-NPQRT-UVWXY-34679")
	serial, _ := subscription.ParseSerialNumber("1234567890123456")
	id := uuid.New()
	for _, c := range []struct {
		product  catalog.Product
		term     catalog.Term
		platform catalog.Platform
		field    string
	}{
		{nu, catalog.Trial, catalog.Windows, "term"},
		{nu, catalog.Term{}, catalog.Windows, "term"},
		{n360, catalog.Annual, catalog.Mac, "platform"},
		{catalog.Product{}, catalog.Annual, catalog.Windows, "product"},
	} {
		_, err := subscription.NewCreated(id, c.product, c.term, c.platform, key, serial, now, policy.Default(), subscription.Origin{})
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Fields[0].Field != c.field {
			t.Errorf("%s %s %s: error %v, want one naming %s", c.product.Code(), c.term, c.platform, err, c.field)
		}
	}
	if _, err := subscription.NewCreated(uuid.Nil, n360, catalog.Annual, catalog.Windows, key, serial, now, policy.Default(), subscription.Origin{}); err == nil {
		t.Error("a nil id was accepted")
	}
}

func TestRule_KEY2_RegisterSavesTheKeyOnceAndRefusesTheRest(t *testing.T) {
	c := nis(t)
	decidertest.Given(t, subscription.Decider, c).
		When(subscription.Register{AccountID: ann}).
		Then(subscription.Registered{AccountID: ann, At: now})
	registered := subscription.Registered{AccountID: ann, At: now.Add(-time.Hour)}
	decidertest.Given(t, subscription.Decider, c, registered).When(subscription.Register{AccountID: ann}).ThenNothing()
	decidertest.Given(t, subscription.Decider, c, registered).When(subscription.Register{AccountID: bob}).ThenError(subscription.ErrRegisteredElsewhere)
	decidertest.Given(t, subscription.Decider, c, subscription.Disabled{At: now}).When(subscription.Register{AccountID: ann}).ThenError(subscription.ErrKeyDisabled)
	decidertest.Given(t, subscription.Decider).When(subscription.Register{AccountID: ann}).ThenError(subscription.ErrNotFound)
}

// rule PRD-5, CAT-1, ORD-5: a non-registrable product is refused with the
// order as the way to it; the order's saving leaves it with the order, out
// of the account's products, but gives the account its renewal to manage.
func TestRule_PRD5_NonRegistrableProductStaysWithItsOrder(t *testing.T) {
	nu := created(t, "NU", catalog.Annual, catalog.Windows, subscription.Origin{OrderID: order, AutoRenew: true})
	decidertest.Given(t, subscription.Decider, nu).When(subscription.Register{AccountID: ann}).ThenError(subscription.ErrNotRegistrable)
	if !strings.Contains(subscription.ErrNotRegistrable.Error(), "order") {
		t.Errorf("refusal %q does not point at the order", subscription.ErrNotRegistrable)
	}
	saved := subscription.SavedWithOrder{AccountID: ann, OrderID: order, At: now}
	decidertest.Given(t, subscription.Decider, nu).When(subscription.RegisterFromOrder{AccountID: ann, OrderID: order}).Then(saved)
	withOrder := decidertest.Given(t, subscription.Decider, nu, saved)
	withOrder.When(subscription.RegisterFromOrder{AccountID: ann, OrderID: order}).ThenNothing()
	withOrder.When(subscription.RegisterFromOrder{AccountID: bob, OrderID: order}).ThenNothing()
	withOrder.When(subscription.SetAutoRenewal{AccountID: ann, On: false}).Then(subscription.AutoRenewalChanged{On: false, At: now})
	withOrder.When(subscription.SetAutoRenewal{AccountID: bob, On: false}).ThenError(subscription.ErrNotFound)
	withOrder.When(subscription.Activate{AccountID: ann, Device: mustDevice(t, "pc-1")}).ThenError(subscription.ErrNotFound)
	decidertest.Given(t, subscription.Decider, nu).When(subscription.SetAutoRenewal{AccountID: ann, On: false}).ThenError(subscription.ErrNotFound)
}

func TestRule_KEY3_ActivationUsesSeatsAndRefusesBeyondThem(t *testing.T) {
	c := nis(t) // 3 seats
	reg := subscription.Registered{AccountID: ann, At: now.AddDate(0, -1, 0)}
	act := func(d string) subscription.Activated {
		return subscription.Activated{Device: mustDevice(t, d), At: now.Add(-time.Minute)}
	}
	decidertest.Given(t, subscription.Decider, c, reg).
		When(subscription.Activate{AccountID: ann, Device: mustDevice(t, "pc-1")}).
		Then(subscription.Activated{Device: mustDevice(t, "pc-1"), At: now})
	full := decidertest.Given(t, subscription.Decider, c, reg, act("pc-1"), act("pc-2"), act("pc-3"))
	full.When(subscription.Activate{AccountID: ann, Device: mustDevice(t, "pc-2")}).ThenNothing()
	var seats *subscription.SeatsExhaustedError
	full.When(subscription.Activate{AccountID: ann, Device: mustDevice(t, "pc-4")}).ThenError(&seats)
	if seats.Seats != 3 || !strings.Contains(seats.Error(), "buy an additional product key") {
		t.Errorf("refusal %q", seats)
	}
	decidertest.Given(t, subscription.Decider, c, reg).
		When(subscription.Activate{AccountID: bob, Device: mustDevice(t, "pc-1")}).ThenError(subscription.ErrNotFound)
	decidertest.Given(t, subscription.Decider, c).
		When(subscription.Activate{AccountID: ann, Device: mustDevice(t, "pc-1")}).ThenError(subscription.ErrNotFound)

	var notCurrent *subscription.NotCurrentError
	decidertest.Given(t, subscription.Decider, c, reg).At(c.ExpiresAt).
		When(subscription.Activate{AccountID: ann, Device: mustDevice(t, "pc-1")}).ThenError(&notCurrent)
	if notCurrent.Status != subscription.StatusExpired {
		t.Errorf("status %s, want expired", notCurrent.Status)
	}
	decidertest.Given(t, subscription.Decider, c, reg, subscription.Disabled{At: now}).
		When(subscription.Activate{AccountID: ann, Device: mustDevice(t, "pc-1")}).ThenError(&notCurrent)
	if notCurrent.Status != subscription.StatusDisabled {
		t.Errorf("status %s, want disabled", notCurrent.Status)
	}
}

func TestRule_KEY5_DeactivationFreesTheSeat(t *testing.T) {
	c := created(t, "NAV", catalog.Annual, catalog.Windows, subscription.Origin{}) // 1 seat
	reg := subscription.Registered{AccountID: ann, At: now.AddDate(0, -1, 0)}
	pc1 := mustDevice(t, "pc-1")
	on := subscription.Activated{Device: pc1, At: now.Add(-time.Hour)}
	o := decidertest.Given(t, subscription.Decider, c, reg, on).
		When(subscription.Deactivate{AccountID: ann, Device: pc1}).
		Then(subscription.Deactivated{Device: pc1, At: now})
	if len(o.State().Devices()) != 0 {
		t.Errorf("devices after deactivation: %v", o.State().Devices())
	}
	decidertest.Given(t, subscription.Decider, c, reg, on, subscription.Deactivated{Device: pc1, At: now.Add(-time.Minute)}).
		When(subscription.Activate{AccountID: ann, Device: mustDevice(t, "pc-2")}).
		Then(subscription.Activated{Device: mustDevice(t, "pc-2"), At: now})
	decidertest.Given(t, subscription.Decider, c, reg).When(subscription.Deactivate{AccountID: ann, Device: pc1}).ThenError(subscription.ErrNotActivated)
	decidertest.Given(t, subscription.Decider, c, reg, on).When(subscription.Deactivate{AccountID: bob, Device: pc1}).ThenError(subscription.ErrNotFound)
	decidertest.Given(t, subscription.Decider, c, reg, on).WithPolicy(policy.Policy{DisallowDeactivation: true}).
		When(subscription.Deactivate{AccountID: ann, Device: pc1}).ThenError(subscription.ErrDeactivationNotAllowed)
}

func TestRule_ARS5_AsianStoreKeepsTheRenewalSettings(t *testing.T) {
	jp, _ := cat.Storefront("JP")
	us, _ := cat.Storefront("US")
	reg := subscription.Registered{AccountID: ann, At: now.AddDate(0, -1, 0)}
	asian := created(t, "NS-DLX", catalog.Annual, catalog.Windows, subscription.Origin{OrderID: order, Storefront: jp, AutoRenew: true})
	var store *subscription.AsianStoreError
	decidertest.Given(t, subscription.Decider, asian, reg).When(subscription.SetAutoRenewal{AccountID: ann, On: false}).ThenError(&store)
	if store.Storefront != "JP" || !strings.Contains(store.Error(), "JP") {
		t.Errorf("refusal %q does not name the store", store)
	}
	american := created(t, "NS-DLX", catalog.Annual, catalog.Windows, subscription.Origin{OrderID: order, Storefront: us, AutoRenew: true})
	decidertest.Given(t, subscription.Decider, american, reg).
		When(subscription.SetAutoRenewal{AccountID: ann, On: false}).
		Then(subscription.AutoRenewalChanged{On: false, At: now})
	decidertest.Given(t, subscription.Decider, american, reg).When(subscription.SetAutoRenewal{AccountID: ann, On: true}).ThenNothing()
	// ORD-5: not in the caller's account, not the caller's to change.
	decidertest.Given(t, subscription.Decider, american).When(subscription.SetAutoRenewal{AccountID: ann, On: false}).ThenError(subscription.ErrNotFound)
}

// rule AUD-5: an erased account's subscriptions stop renewing: its own
// (a retail key registered in it too), and those in no account from the
// order placed with its address; another account's, or another order's,
// are left alone.
func TestRule_AUD5_StopAutoRenewalForErasureTouchesTheAccountsSubscriptions(t *testing.T) {
	us, _ := cat.Storefront("US")
	bought := created(t, "NS-STD", catalog.Annual, catalog.Windows, subscription.Origin{OrderID: order, Storefront: us, AutoRenew: true})
	retail := created(t, "NS-STD", catalog.Annual, catalog.Windows, subscription.Origin{AutoRenew: true})
	off := subscription.AutoRenewalChanged{On: false, At: now}
	decidertest.Given(t, subscription.Decider, retail, subscription.Registered{AccountID: ann, At: now}).
		When(subscription.StopAutoRenewalForErasure{AccountID: ann}).Then(off)
	decidertest.Given(t, subscription.Decider, retail, subscription.Registered{AccountID: ann, At: now}, off).
		When(subscription.StopAutoRenewalForErasure{AccountID: ann}).ThenNothing() // idempotent
	decidertest.Given(t, subscription.Decider, bought).When(subscription.StopAutoRenewalForErasure{AccountID: ann, OrderID: order}).Then(off)
	decidertest.Given(t, subscription.Decider, bought).When(subscription.StopAutoRenewalForErasure{AccountID: ann, OrderID: uuid.New()}).ThenNothing()
	decidertest.Given(t, subscription.Decider, bought, subscription.Registered{AccountID: bob, At: now}).
		When(subscription.StopAutoRenewalForErasure{AccountID: ann, OrderID: order}).ThenNothing()
}

func TestRule_ORD4_StopAutoRenewalForOrderTouchesOnlyThatOrdersSubscriptions(t *testing.T) {
	us, _ := cat.Storefront("US")
	bought := created(t, "NS-STD", catalog.Annual, catalog.Windows, subscription.Origin{OrderID: order, Storefront: us, AutoRenew: true})
	decidertest.Given(t, subscription.Decider, bought).
		When(subscription.StopAutoRenewalForOrder{OrderID: order}).
		Then(subscription.AutoRenewalChanged{On: false, At: now})
	decidertest.Given(t, subscription.Decider, bought, subscription.AutoRenewalChanged{On: false, At: now}).
		When(subscription.StopAutoRenewalForOrder{OrderID: order}).ThenNothing() // idempotent
	decidertest.Given(t, subscription.Decider, bought).When(subscription.StopAutoRenewalForOrder{OrderID: uuid.New()}).ThenNothing()
	retail := created(t, "NS-STD", catalog.Annual, catalog.Windows, subscription.Origin{AutoRenew: true})
	decidertest.Given(t, subscription.Decider, retail).When(subscription.StopAutoRenewalForOrder{OrderID: uuid.Nil}).ThenNothing()
	// A key of the pending order that bob registered is bob's: ann's
	// disowning leaves its renewal alone; one ann registered herself is hers.
	decidertest.Given(t, subscription.Decider, bought, subscription.Registered{AccountID: bob, At: now}).
		When(subscription.StopAutoRenewalForOrder{OrderID: order, AccountID: ann}).ThenNothing()
	decidertest.Given(t, subscription.Decider, bought, subscription.Registered{AccountID: ann, At: now}).
		When(subscription.StopAutoRenewalForOrder{OrderID: order, AccountID: ann}).
		Then(subscription.AutoRenewalChanged{On: false, At: now})
}

// rule ORD-3, KEY-2: a key of a pending order that its holder registered in
// another account stays there when the order is saved, and the saving goes
// on (a refusal stalled the fulfilment process on that order for good).
func TestRule_ORD3_SavingAnOrderWhoseKeyWasRegisteredElsewhere(t *testing.T) {
	us, _ := cat.Storefront("US")
	bought := created(t, "NS-STD", catalog.Annual, catalog.Windows, subscription.Origin{OrderID: order, Storefront: us, AutoRenew: true})
	decidertest.Given(t, subscription.Decider, bought, subscription.Registered{AccountID: bob, At: now}).
		When(subscription.RegisterFromOrder{AccountID: ann, OrderID: order}).ThenNothing()
	decidertest.Given(t, subscription.Decider, bought).
		When(subscription.RegisterFromOrder{AccountID: ann, OrderID: order}).Then(subscription.Registered{AccountID: ann, At: now})
}

func TestRule_PRD2_PRD3_StatusDownloadAndRecoveryTool(t *testing.T) {
	c := nis(t)
	s := subscription.Decider.Fold(c)
	if st := s.Status(now, policy.Default()); st != subscription.StatusActive || subscription.CheckDownload(st) != nil {
		t.Errorf("status %s", st)
	}
	if err := subscription.CheckRecoveryTool(c.ProductName, c.Platform, c.RecoveryTool, []catalog.Platform{catalog.Windows}, s.Status(now, policy.Default())); err != nil {
		t.Errorf("recovery tool: %v", err)
	}
	st := s.Status(c.ExpiresAt, policy.Default())
	var greyed *subscription.DownloadGreyedOutError
	if !errors.As(subscription.CheckDownload(st), &greyed) || greyed.Status != subscription.StatusExpired {
		t.Errorf("download at expiry: %v", subscription.CheckDownload(st))
	}
	trial := created(t, "NIS", catalog.Trial, catalog.Windows, subscription.Origin{})
	tst := subscription.Decider.Fold(trial).Status(trial.StartsAt, policy.Default())
	if tst != subscription.StatusTrial || subscription.CheckDownload(tst) != nil || subscription.RecoveryToolAvailable(trial.RecoveryTool, tst) {
		t.Errorf("trial: status %s", tst)
	}
	if err := subscription.CheckRecoveryTool(trial.ProductName, trial.Platform, trial.RecoveryTool, nil, tst); err == nil || !strings.Contains(err.Error(), "trial") {
		t.Errorf("trial recovery tool: %v", err)
	}
	if st := subscription.Decider.Fold(c, subscription.Disabled{At: now}).Status(now, policy.Default()); st != subscription.StatusDisabled {
		t.Errorf("disabled: %s", st)
	}
}
