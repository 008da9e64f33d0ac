package api

import (
	"encoding/json"
	"net/http"
)

// Problem types: stable identifiers that clients may switch on. The title of
// a type never changes; the detail explains the occurrence.
const (
	// ProblemTypeNotFound means no route matches the request's path.
	ProblemTypeNotFound = "urn:subs:problem:not-found"
	// ProblemTypeMethodNotAllowed means the path exists but not for the
	// request's method; the Allow header lists the methods that do.
	ProblemTypeMethodNotAllowed = "urn:subs:problem:method-not-allowed"
	// ProblemTypeInternal means the server failed; the cause is in its log.
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

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		WriteProblem(w, Problem{Type: ProblemTypeInternal, Detail: "The server could not encode its response."})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
