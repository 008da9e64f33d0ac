package domain

import "strings"

// FieldError says which input field breaks which rule. Message is a plain
// sentence for the person who typed the value; it never repeats a secret.
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists every bad field of one input (SEC-4): the caller
// sees them all at once, and nothing was written.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// FieldErrors returns field → message pairs, in order, for the API's
// problem details.
func (e *ValidationError) FieldErrors() [][2]string {
	out := make([][2]string, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = [2]string{f.Field, f.Message}
	}
	return out
}

// Invalid returns a ValidationError for one field.
func Invalid(field, message string) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: message}}}
}

// Validation collects field errors while an input is parsed into domain
// values:
//
//	var v domain.Validation
//	email, err := account.ParseEmail(in.Email)
//	v.Check("email", err)
//	…
//	if err := v.Err(); err != nil { return err }
type Validation struct {
	fields []FieldError
}

// Check records err against field when it is not nil. An error that is a
// *ValidationError keeps its own field names, prefixed with field when
// field is not empty ("billing" + "card.number" → "billing.card.number").
func (v *Validation) Check(field string, err error) {
	if err == nil {
		return
	}
	if ve, ok := err.(*ValidationError); ok {
		for _, f := range ve.Fields {
			name := f.Field
			if field != "" && name != "" {
				name = field + "." + name
			} else if name == "" {
				name = field
			}
			v.fields = append(v.fields, FieldError{Field: name, Message: f.Message})
		}
		return
	}
	v.fields = append(v.fields, FieldError{Field: field, Message: err.Error()})
}

// Err returns the collected errors as one *ValidationError, or nil.
func (v *Validation) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.fields}
}

// NotFoundError: the thing asked for does not exist — or is not the caller's,
// which must look the same (SEC-1).
type NotFoundError struct{ msg string }

// NotFound returns a NotFoundError saying msg.
func NotFound(msg string) *NotFoundError { return &NotFoundError{msg: msg} }

func (e *NotFoundError) Error() string { return e.msg }

// NotFound marks the error's kind for the API.
func (e *NotFoundError) NotFound() bool { return true }

// ConflictError: the command contradicts the current state.
type ConflictError struct {
	msg     string
	passing bool
}

// Conflict returns a ConflictError saying msg.
func Conflict(msg string) *ConflictError { return &ConflictError{msg: msg} }

// Passing returns a ConflictError saying msg, for a state that passes by
// itself (a charge or refund in flight): the same command succeeds once it
// has.
func Passing(msg string) *ConflictError { return &ConflictError{msg: msg, passing: true} }

func (e *ConflictError) Error() string { return e.msg }

// Conflict marks the error's kind for the API.
func (e *ConflictError) Conflict() bool { return true }

// Passes reports whether the conflict passes by itself: the API answers it
// with a Retry-After header, and keeps no answer for its Idempotency-Key.
func (e *ConflictError) Passes() bool { return e.passing }
