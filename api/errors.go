package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/subs-engine/subs/eventstore"
)

// The kinds of error WriteError recognises. Each is an interface with only
// standard-library types in its methods, so that domain packages can satisfy
// it without importing api: the domain says what went wrong, WriteError
// alone decides the HTTP status and problem type (STYLE: one mapping, in one
// place). WriteError finds a kind anywhere in the error's chain (errors.As,
// through %w wrapping and errors.Join) and answers the first that applies,
// in the order: *Problem, invalid fields, unauthorized, forbidden, not
// found, conflict, rate limited, body too large; anything else is a 500.
type (
	// FieldsError is an error that refuses input fields (SEC-4). FieldErrors
	// returns (field, message) pairs in order: field is the JSON path of the
	// input ("billing.card.number"), message a plain sentence for the person
	// who typed the value that never repeats a secret. WriteError answers
	// 400 ProblemTypeValidation listing every field of every FieldsError in
	// the chain.
	FieldsError interface {
		error
		FieldErrors() [][2]string
	}
	// UnauthorizedError is an error whose Unauthorized method returns true
	// when the caller's credential is missing or refused (a failed sign-in).
	// WriteError answers 401 ProblemTypeUnauthorized with
	// WWW-Authenticate: Bearer, and Error() as the detail.
	UnauthorizedError interface {
		error
		Unauthorized() bool
	}
	// ForbiddenError is an error whose Forbidden method returns true when an
	// authenticated caller may not do what it asked. WriteError answers 403
	// ProblemTypeForbidden with Error() as the detail. Customer access to
	// another customer's resource is NotFound instead (SEC-1).
	ForbiddenError interface {
		error
		Forbidden() bool
	}
	// NotFoundError is an error whose NotFound method returns true when the
	// resource does not exist or is not the caller's. WriteError answers 404
	// ProblemTypeNotFound with Error() as the detail.
	NotFoundError interface {
		error
		NotFound() bool
	}
	// ConflictError is an error whose Conflict method returns true when the
	// request contradicts the current state. WriteError answers 409
	// ProblemTypeConflict with Error() as the detail, and a Retry-After
	// header when the error also has a Passes method returning true (the
	// state passes by itself: a charge in flight).
	ConflictError interface {
		error
		Conflict() bool
	}
	// passingError is a ConflictError whose state passes by itself.
	passingError interface {
		Passes() bool
	}
	// RateLimitedError is an error that refuses a request for a while
	// (ACC-4's sign-in lock). RetryAfter returns how long to wait (zero or
	// negative when unknown). WriteError answers 429 ProblemTypeRateLimited
	// with a Retry-After header in whole seconds and Error() as the detail.
	RateLimitedError interface {
		error
		RetryAfter() time.Duration
	}
)

// WriteError answers err as a problem+json response, mapping its kind (see
// FieldsError and the other kind interfaces) to a status and problem type.
// A *Problem is written as it is. An error of no known kind is a 500 with a
// generic detail; its cause is logged with the request's method and route
// (never its body, headers or the error's data beyond its message). A nil
// err is a programming error and also answers 500. It must be called before
// anything else is written to w.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	WriteProblem(w, problemFor(r, err))
}

// problemFor is WriteError's mapping, apart from the writing.
func problemFor(r *http.Request, err error) Problem {
	if err == nil {
		err = errors.New("api: WriteError called with a nil error")
	}
	if p, ok := errors.AsType[*Problem](err); ok && p != nil {
		return *p
	}
	if fields := collectFieldErrors(err); len(fields) > 0 {
		return validationProblem(fields)
	}
	if e, ok := errors.AsType[UnauthorizedError](err); ok && e.Unauthorized() {
		return unauthorized(e.Error())
	}
	if e, ok := errors.AsType[ForbiddenError](err); ok && e.Forbidden() {
		return Problem{Type: ProblemTypeForbidden, Title: "Forbidden", Status: http.StatusForbidden, Detail: e.Error()}
	}
	if e, ok := errors.AsType[NotFoundError](err); ok && e.NotFound() {
		return Problem{Type: ProblemTypeNotFound, Title: "Not found", Status: http.StatusNotFound, Detail: e.Error()}
	}
	if e, ok := errors.AsType[ConflictError](err); ok && e.Conflict() {
		p := Problem{Type: ProblemTypeConflict, Title: "Conflict", Status: http.StatusConflict, Detail: e.Error()}
		if e, ok := e.(passingError); ok && e.Passes() {
			p.Header = retryAfter(passingRetryAfter)
		}
		return p
	}
	if _, ok := errors.AsType[*eventstore.ConflictError](err); ok {
		// Concurrent requests changed the same thing at every attempt.
		return Problem{Type: ProblemTypeConflict, Title: "Conflict", Status: http.StatusConflict,
			Detail: "other requests changed this at the same moment: send the request again", Header: retryAfter(time.Second)}
	}
	if e, ok := errors.AsType[RateLimitedError](err); ok {
		p := Problem{Type: ProblemTypeRateLimited, Title: "Too many requests", Status: http.StatusTooManyRequests, Detail: e.Error()}
		if d := e.RetryAfter(); d > 0 {
			p.Header = retryAfter(d)
		}
		return p
	}
	if e, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return bodyTooLarge(e.Limit)
	}
	ctx := r.Context()
	level := slog.LevelError
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		level = slog.LevelInfo // the client went away; nothing failed on our side
	}
	envFrom(ctx).log.LogAttrs(ctx, level, "http handler failed",
		slog.String("method", r.Method),
		slog.String("route", routeLabel(r)),
		slog.String("error", err.Error()),
	)
	return internalProblem()
}

// passingRetryAfter is how long a state that passes by itself (a gateway
// call in flight) is given before the request is sent again.
const passingRetryAfter = 5 * time.Second

// retryAfter is a Retry-After header of d in whole seconds, rounded up.
func retryAfter(d time.Duration) http.Header {
	secs := int64((d + time.Second - 1) / time.Second)
	return http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
}

// collectFieldErrors gathers the field errors of every FieldsError in err's
// tree, in order, so that errors.Join of several validations lists them all.
func collectFieldErrors(err error) []FieldError {
	var out []FieldError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(FieldsError); ok {
			for _, f := range fe.FieldErrors() {
				out = append(out, FieldError{Field: f[0], Message: f[1]})
			}
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// validationProblem is the 400 answer that lists bad fields.
func validationProblem(fields []FieldError) Problem {
	detail := "The field " + strconv.Quote(fields[0].Field) + " is invalid: " + fields[0].Message
	if len(fields) > 1 {
		detail = strconv.Itoa(len(fields)) + " fields are invalid; errors lists each with the reason."
	}
	return Problem{Type: ProblemTypeValidation, Title: "Invalid input", Status: http.StatusBadRequest, Detail: detail, Errors: fields}
}

// unauthorized is the 401 answer; detail says what to do.
func unauthorized(detail string) Problem {
	return Problem{
		Type: ProblemTypeUnauthorized, Title: "Unauthorized", Status: http.StatusUnauthorized, Detail: detail,
		Header: http.Header{"Www-Authenticate": {`Bearer realm="subs"`}},
	}
}

// bodyTooLarge is the 413 answer for a body over limit bytes.
func bodyTooLarge(limit int64) Problem {
	return Problem{
		Type: ProblemTypeBodyTooLarge, Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
		Detail: "The request body exceeds " + strconv.FormatInt(limit, 10) + " bytes; send a smaller body.",
	}
}

// internalProblem is the 500 answer; the cause is only in the log.
func internalProblem() Problem {
	return Problem{
		Type: ProblemTypeInternal, Title: "Internal server error", Status: http.StatusInternalServerError,
		Detail: "The server failed to handle this request; try again later.",
	}
}

// HandlerFunc is an HTTP handler that returns its error instead of writing
// it: a non-nil error is answered by WriteError, so that every handler maps
// errors the same way. It must not return an error after writing a response.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP calls f and answers its error, if any, with WriteError.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		WriteError(w, r, err)
	}
}
