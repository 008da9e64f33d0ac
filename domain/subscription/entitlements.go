package subscription

import (
	"fmt"
	"slices"

	"github.com/subs-engine/subs/domain/catalog"
)

// DownloadGreyedOutError: the product cannot be downloaded because the
// subscription is not current (PRD-2); the download is greyed out.
type DownloadGreyedOutError struct{ Status Status }

func (e *DownloadGreyedOutError) Error() string {
	return fmt.Sprintf("download is greyed out: this subscription is %s; renew it or buy a new product key to download the product", e.Status)
}

// Conflict marks the error's kind for the API.
func (e *DownloadGreyedOutError) Conflict() bool { return true }

// CheckDownload returns nil when a subscription standing at st may be
// downloaded (PRD-2: active, trial or grace), or a *DownloadGreyedOutError.
func CheckDownload(st Status) error {
	if st.Current() {
		return nil
	}
	return &DownloadGreyedOutError{Status: st}
}

// RecoveryToolUnavailableError: the bootable recovery tool is not offered
// for this subscription (PRD-3); Reason says why in a plain sentence.
type RecoveryToolUnavailableError struct{ Reason string }

func (e *RecoveryToolUnavailableError) Error() string {
	return "the Norton Bootable Recovery Tool is not available: " + e.Reason
}

// Conflict marks the error's kind for the API.
func (e *RecoveryToolUnavailableError) Conflict() bool { return true }

// CheckRecoveryTool returns nil when the bootable recovery tool is offered
// for a registered subscription of productName on platform standing at st
// (PRD-3: a product that offers the tool on that platform, with a paid,
// non-expired subscription), or a *RecoveryToolUnavailableError naming the
// first reason it is not: the product has no tool, the tool is for another
// platform, the subscription is a trial, or it is not current. offered is
// Created.RecoveryTool; toolPlatforms are the catalog's platforms of the
// tool for the product, used only to phrase the refusal.
func CheckRecoveryTool(productName, platform string, offered bool, toolPlatforms []catalog.Platform, st Status) error {
	switch {
	case !offered && len(toolPlatforms) == 0:
		return &RecoveryToolUnavailableError{Reason: productName + " does not include the recovery tool"}
	case !offered:
		names := make([]string, len(toolPlatforms))
		for i, p := range toolPlatforms {
			names[i] = p.String()
		}
		slices.Sort(names)
		return &RecoveryToolUnavailableError{Reason: fmt.Sprintf("it comes with %s for %v only, not for %s", productName, names, platform)}
	case st == StatusTrial:
		return &RecoveryToolUnavailableError{Reason: "it comes with a paid subscription, not during a trial"}
	case st != StatusActive:
		return &RecoveryToolUnavailableError{Reason: fmt.Sprintf("this subscription is %s; the tool needs a non-expired paid subscription", st)}
	}
	return nil
}
