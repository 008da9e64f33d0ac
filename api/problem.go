package api

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Problem types: stable identifiers that clients may switch on. The title of
// a type never changes; the detail explains the occurrence.
const (
	// ProblemTypeValidation (400) means one or more input fields were
	// refused; errors[] names each with the reason. Nothing was written.
	ProblemTypeValidation = "urn:subs:problem:validation"
	// ProblemTypeMalformedBody (400) means the request body is not one
	// well-formed JSON value: empty, a syntax error (the detail gives the
	// byte offset), cut short, or followed by more data.
	ProblemTypeMalformedBody = "urn:subs:problem:malformed-body"
	// ProblemTypeUnauthorized (401) means the request lacks a valid
	// credential, or a sign-in was refused; the WWW-Authenticate header
	// names the scheme.
	ProblemTypeUnauthorized = "urn:subs:problem:unauthorized"
	// ProblemTypeForbidden (403) means the credential is valid but may not
	// do this.
	ProblemTypeForbidden = "urn:subs:problem:forbidden"
	// ProblemTypeNotFound (404) means no resource exists at the path, or
	// none the caller may see (SEC-1 answers both alike).
	ProblemTypeNotFound = "urn:subs:problem:not-found"
	// ProblemTypeMethodNotAllowed (405) means the path exists but not for
	// the request's method; the Allow header lists the methods that do.
	ProblemTypeMethodNotAllowed = "urn:subs:problem:method-not-allowed"
	// ProblemTypeConflict (409) means the request contradicts the current
	// state (a taken e-mail address, a concurrent change).
	ProblemTypeConflict = "urn:subs:problem:conflict"
	// ProblemTypeIdempotencyInProgress (409) means a request with the same
	// Idempotency-Key is still being handled; retry later with the same key.
	ProblemTypeIdempotencyInProgress = "urn:subs:problem:idempotency-in-progress"
	// ProblemTypeBodyTooLarge (413) means the request body exceeds the
	// server's limit; the detail states it.
	ProblemTypeBodyTooLarge = "urn:subs:problem:body-too-large"
	// ProblemTypeUnsupportedMediaType (415) means the body is not sent as
	// Content-Type: application/json.
	ProblemTypeUnsupportedMediaType = "urn:subs:problem:unsupported-media-type"
	// ProblemTypeIdempotencyMismatch (422) means the Idempotency-Key was
	// already used for a different request (method, path or body); use a
	// new key for a new request.
	ProblemTypeIdempotencyMismatch = "urn:subs:problem:idempotency-mismatch"
	// ProblemTypeRateLimited (429) means too many attempts; the Retry-After
	// header says when to try again.
	ProblemTypeRateLimited = "urn:subs:problem:rate-limited"
	// ProblemTypeUnavailable (503) means a service the request needs (the
	// database, the payment gateway) does not answer; nothing was changed,
	// retry later.
	ProblemTypeUnavailable = "urn:subs:problem:unavailable"
	// ProblemTypeInternal (500) means the server failed; the cause is in its
	// log.
	ProblemTypeInternal = "urn:subs:problem:internal"
)

// ProblemContentType is the media type of every error response (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem details object. Type and Title identify the
// kind of problem and are stable; Detail describes this occurrence in a plain
// sentence that says what to do; Errors names each bad input field.
type Problem struct {
	// Type is a URI that identifies the problem type (one of the ProblemType
	// constants).
	Type string `json:"type"`
	// Title is a short, human-readable summary of the problem type.
	Title string `json:"title"`
	// Status is the HTTP status code of the response.
	Status int `json:"status"`
	// Detail explains this occurrence of the problem.
	Detail string `json:"detail,omitempty"`
	// Errors lists the input fields that were rejected, one entry each.
	Errors []FieldError `json:"errors,omitempty"`
	// Header holds response headers to send with the problem, such as
	// Retry-After or WWW-Authenticate. It is not part of the body.
	Header http.Header `json:"-"`
}

// Error returns the problem's type and detail, so that a *Problem can travel
// as an error from DecodeJSON or a handler to WriteError, which answers it
// as it is.
func (p *Problem) Error() string {
	if p.Detail == "" {
		return p.Type
	}
	return p.Type + ": " + p.Detail
}

// FieldError names one rejected input field and why it was rejected.
type FieldError struct {
	// Field is the JSON path of the field in the request, e.g. "email".
	Field string `json:"field"`
	// Message says what is wrong with the field's value and what is accepted.
	Message string `json:"message"`
}

// WriteProblem writes p as the response: the problem+json content type, p's
// status (500 when p.Status is zero) and p encoded as JSON. It must be called
// before anything else is written to w.
func WriteProblem(w http.ResponseWriter, p Problem) {
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	body, err := json.Marshal(p)
	if err != nil { // a Problem holds only strings and ints
		panic(err)
	}
	for k, vs := range p.Header {
		w.Header()[http.CanonicalHeaderKey(k)] = vs
	}
	w.Header().Set("Content-Type", ProblemContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// notFound is the problem answered when no route matches.
func notFound() Problem {
	return Problem{
		Type:   ProblemTypeNotFound,
		Title:  "Not found",
		Status: http.StatusNotFound,
		Detail: "No resource exists at this path; check the URL against the API documentation.",
	}
}

// methodNotAllowed is the problem answered when a route matches the path
// but not the method.
func methodNotAllowed(allow string) Problem {
	return Problem{
		Type:   ProblemTypeMethodNotAllowed,
		Title:  "Method not allowed",
		Status: http.StatusMethodNotAllowed,
		Detail: "This path does not accept this method; use one of: " + allow + ".",
	}
}

// WriteJSON writes v as an application/json response with the given status
// and returns nil. When v cannot be encoded (a programming error) it writes
// nothing and returns the error, so that a HandlerFunc can end with
// `return WriteJSON(w, http.StatusOK, view)` and WriteError answers 500 and
// logs the cause. It must be called before anything else is written to w.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("api: encode a %T response: %w", v, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return nil
}

// writeJSON is WriteJSON for the operational endpoints, whose bodies always
// encode.
func writeJSON(w http.ResponseWriter, status int, v any) { _ = WriteJSON(w, status, v) }
