package conversion_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/conversion"
	"github.com/subs-engine/subs/domain/decidertest"
)

var (
	now     = decidertest.DefaultNow
	oldExp  = time.Date(2027, 9, 3, 8, 0, 0, 0, time.UTC)
	newSub  = uuid.MustParse("0190a000-0000-7000-8000-0000000000bb")
	orderID = uuid.MustParse("0190a000-0000-7000-8000-0000000000aa")
	started = conversion.Started{ConversionID: uuid.MustParse("0190a000-0000-7000-8000-0000000000cc"),
		AccountID: uuid.MustParse("0190a000-0000-7000-8000-000000000001"), SubscriptionID: uuid.MustParse("0190a000-0000-7000-8000-000000000002"),
		From: "NIS", To: "NS-DLX", OldExpiresAt: oldExp, At: now}
)

// rule CNV-4: the steps come in the procedure's order, each recorded once,
// and the last one only when the new expiry falls on the old one's day.
func TestRule_CNV4_StepsInOrderEachOnce(t *testing.T) {
	given := decidertest.Given(t, conversion.Decider, started)
	given.When(conversion.CompleteStep{Done: conversion.StepCompleted{Step: conversion.FreeOrder}}).ThenError(&domainConflict)
	first := conversion.StepCompleted{Step: conversion.VerifyOwnership, At: now}
	given.When(conversion.CompleteStep{Done: first}).Then(first)
	steps := []domain.Event{started, first,
		conversion.StepCompleted{Step: conversion.FreeOrder, OrderID: orderID, SubscriptionID: newSub, At: now},
		conversion.StepCompleted{Step: conversion.Activate, At: now},
		conversion.StepCompleted{Step: conversion.DisableOldKey, At: now}}
	done := decidertest.Given(t, conversion.Decider, steps...)
	done.When(conversion.CompleteStep{Done: first}).ThenNothing()
	done.When(conversion.CompleteStep{Done: conversion.StepCompleted{Step: conversion.AdjustDays, ExpiresAt: oldExp.AddDate(0, 0, 1)}}).
		ThenError(&domainConflict)
	last := conversion.StepCompleted{Step: conversion.AdjustDays, Days: -5, ExpiresAt: oldExp.Add(3 * time.Hour), At: now}
	out := done.When(conversion.CompleteStep{Done: last}).
		Then(last, conversion.Completed{SubscriptionID: newSub, ExpiresAt: last.ExpiresAt, At: now})
	if st := out.State(); !st.Completed() || len(st.Done()) != len(conversion.Steps) {
		t.Errorf("after the last step: %+v", st)
	}
	if next, ok := done.State().Next(); !ok || next != conversion.AdjustDays {
		t.Errorf("next %q %v", next, ok)
	}
	decidertest.Given(t, conversion.Decider).When(conversion.Start{Started: started}).Then(started)
	given.When(conversion.Start{Started: started}).ThenNothing()
}

var domainConflict *domain.ConflictError
