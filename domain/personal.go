package domain

import "github.com/google/uuid"

// ErasedText is what a personal text field reads as once its owner's
// personal data was erased (AUD-5), where an empty value would not decode.
const ErasedText = "[erased]"

// PersonalField is one field of an event's payload that holds personal data
// (AUD-5): a name, an address, an e-mail address, a card holder's name.
type PersonalField struct {
	// Path names the JSON field, dotted for a field of a nested object
	// ("method.holder_name").
	Path string
	// Erased is what the field reads as once erased; it must decode into
	// the field. Nil stands for JSON null, which leaves the zero value.
	Erased any
}

// DataSubject is whose personal data an event carries: an account, or, for
// data given without an account (an order's buyer), an e-mail address. The
// zero value means the account whose stream holds the event.
type DataSubject struct {
	Account uuid.UUID
	Email   string
}

// Personal is implemented by events whose payloads hold personal data. The
// event store keeps those fields encrypted under a key of the data subject's
// and erasing the subject destroys the key (crypto-shredding, AUD-5): the
// history still replays, and the fields then read as their Erased values.
type Personal interface {
	PersonalFields() []PersonalField
	DataSubject() DataSubject
}
