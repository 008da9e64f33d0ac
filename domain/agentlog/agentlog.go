// Package agentlog holds the codes support agents log their actions under
// (AGT-1), as the support procedure (seed 002) names them: "Place Order /
// Free Order", "Modify Subscription / Disable Key", "Modify Subscription /
// Adjust Days"; the others follow the same "Category / Sub Type" form.
// Every event an agent action causes carries its code in its metadata.
package agentlog

// The log codes of agent actions.
const (
	VerifyOwnership = "Verify Ownership / Basic"
	FreeOrder       = "Place Order / Free Order"
	DisableKey      = "Modify Subscription / Disable Key"
	AdjustDays      = "Modify Subscription / Adjust Days"
	Activate        = "Assist Customer / Activate Product"
	Conversion      = "Convert Subscription / Product Selection"
	Refund          = "Refund / Customer Request"
	CancelAddOn     = "Modify Subscription / Cancel Add-On"
)
