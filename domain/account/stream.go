package account

import "github.com/google/uuid"

// StreamPrefix starts the name of every account stream: "account-<uuid>"
// (DESIGN §3).
const StreamPrefix = "account-"

// StreamName returns the name of account id's stream.
func StreamName(id uuid.UUID) string { return StreamPrefix + id.String() }
