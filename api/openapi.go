package api

import (
	"encoding"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// OpenAPIPath is where the server serves its OpenAPI document.
const OpenAPIPath = "/v1/openapi.json"

// APIVersion is the version of the /v1 API shown in the OpenAPI document's
// info.version.
const APIVersion = "1.0.0"

// Auth says which credential a route requires.
type Auth int

const (
	// AuthNone routes take anonymous requests (sign-up, sign-in).
	AuthNone Auth = iota
	// AuthCustomer routes need a customer session token (RequireCustomer);
	// the handler reads the session with SessionFrom.
	AuthCustomer
	// AuthAgent routes need a support agent's credential (RequireAgent,
	// SEC-2); the handler reads the agent with AgentFrom.
	AuthAgent
)

// Route is an API endpoint: its handler and its OpenAPI operation, which
// Server.Route registers together so that the document cannot drift from
// the routes.
//
// Request and Responses describe bodies by Go type: pass a zero value
// (SignUpRequest{}) or a reflect.Type; nil means no body. Their JSON Schemas
// are made by reflection, following encoding/json: the json tag names a
// field; a field tagged omitempty or omitzero is optional, every other field
// is required (for a request, the handler must then refuse its absence; for
// a response, it is always present); a `doc:"…"` tag becomes the field's
// description. time.Time is a date-time string, uuid.UUID a uuid string, a
// type with its own UnmarshalText/MarshalText a string. Named struct types
// become shared components.
type Route struct {
	// Method is the HTTP method: GET, POST, PUT, PATCH or DELETE. Required.
	Method string
	// Pattern is the path pattern, as http.ServeMux takes it after the
	// method: "/v1/keys/{key}". Required; it must start with /v1/.
	Pattern string
	// Summary is a short sentence naming what the endpoint does. Required.
	Summary string
	// Description explains the endpoint, naming the rules it implements.
	Description string
	// Tags group operations in the document ("accounts", "sessions").
	Tags []string
	// Auth is the credential the route requires.
	Auth Auth
	// Request is the request body's Go type, or nil for none. The handler
	// decodes it with DecodeJSON.
	Request any
	// Responses maps each success status the handler answers to its body's
	// Go type (nil for no body), and may list error statuses (nil: a
	// Problem). The problems every route of its kind can answer (400, 401,
	// 409, 413, 415, 422, 500) are added.
	Responses map[int]any
	// Handler serves the route; api.HandlerFunc lets it return errors.
	// Required.
	Handler http.Handler
}

// registeredRoute is one pattern registered on the mux, with its operation
// when it was registered through Route.
type registeredRoute struct {
	method, path string // path as registered, e.g. "/v1/keys/{key}"
	route        *Route
}

// Route registers rt's handler on the server — behind RequireCustomer or
// RequireAgent as rt.Auth says, then, for POST, the Idempotency-Key
// middleware — and adds its operation to the OpenAPI document. It panics on
// an incomplete Route or a pattern that conflicts with a registered one:
// both are programming errors found at start-up. Call it before Open.
func (s *Server) Route(rt Route) {
	switch {
	case !slices.Contains([]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}, rt.Method):
		panic(fmt.Sprintf("api: Route %s %s: Method must be GET, POST, PUT, PATCH or DELETE", rt.Method, rt.Pattern))
	case !strings.HasPrefix(rt.Pattern, "/v1/"):
		panic(fmt.Sprintf("api: Route %s %s: Pattern must start with /v1/", rt.Method, rt.Pattern))
	case rt.Summary == "":
		panic(fmt.Sprintf("api: Route %s %s: Summary is required", rt.Method, rt.Pattern))
	case rt.Handler == nil:
		panic(fmt.Sprintf("api: Route %s %s: Handler is required", rt.Method, rt.Pattern))
	}
	rt.Tags = slices.Clone(rt.Tags)
	s.register(rt.Method+" "+rt.Pattern, rt.Handler, &rt)
}

// register puts h on the mux under pattern with the middleware its route
// needs, and records the route.
func (s *Server) register(pattern string, h http.Handler, rt *Route) {
	method, path, hasMethod := strings.Cut(pattern, " ")
	if !hasMethod {
		method, path = "", pattern
	}
	path = strings.TrimSpace(path)
	if method == http.MethodPost {
		h = s.idempotent(pattern, h)
	}
	if rt != nil {
		switch rt.Auth {
		case AuthCustomer:
			h = s.RequireCustomer(h)
		case AuthAgent:
			h = s.RequireAgent(h)
		}
	}
	s.mux.Handle(pattern, h) // panics first on a bad or conflicting pattern
	s.mu.Lock()
	s.routes = append(s.routes, registeredRoute{method: method, path: path, route: rt})
	s.mu.Unlock()
}

// routeOpenAPI registers GET /v1/openapi.json.
func (s *Server) routeOpenAPI() {
	s.Route(Route{
		Method:      http.MethodGet,
		Pattern:     OpenAPIPath,
		Summary:     "The OpenAPI 3.1 document of this API",
		Description: "Describes every /v1 operation, generated from the routes the server serves.",
		Tags:        []string{"meta"},
		Responses:   map[int]any{http.StatusOK: json.RawMessage(nil)},
		Handler: HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			doc, err := s.OpenAPI()
			if err != nil {
				return err
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(doc)
			return nil
		}),
	})
}

// OpenAPI returns the server's OpenAPI 3.1.0 document, as JSON, describing
// every route registered with Route.
func (s *Server) OpenAPI() ([]byte, error) {
	s.mu.Lock()
	routes := slices.Clone(s.routes)
	s.mu.Unlock()

	g := newSchemaGen()
	problemRef := g.schema(reflect.TypeFor[Problem]())
	paths := map[string]map[string]any{}
	for _, rr := range routes {
		if rr.route == nil {
			continue
		}
		path, params := openAPIPath(rr.path)
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(rr.method)] = g.operation(rr.route, params, problemRef)
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "subs",
			"version":     APIVersion,
			"description": "The subscription lifecycle engine's HTTP API. Errors are RFC 9457 application/problem+json; every POST accepts an Idempotency-Key header.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": g.components,
			"securitySchemes": map[string]any{
				"customerBearer": map[string]any{"type": "http", "scheme": "bearer",
					"description": "A customer session token from POST /v1/sessions."},
				"agentBearer": map[string]any{"type": "http", "scheme": "bearer",
					"description": "A support agent's credential."},
			},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// UndocumentedRoutes returns "METHOD /path" for every route registered on s
// under /v1/ that the OpenAPI document s serves has no operation for (a
// route registered with Handle and no Route, or one without a method),
// sorted. An API whose document is true returns none.
func UndocumentedRoutes(s *Server) []string {
	raw, err := s.OpenAPI()
	if err != nil {
		return []string{"the OpenAPI document cannot be built: " + err.Error()}
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return []string{"the OpenAPI document is not JSON: " + err.Error()}
	}
	s.mu.Lock()
	routes := slices.Clone(s.routes)
	s.mu.Unlock()
	var out []string
	for _, rr := range routes {
		if !strings.HasPrefix(rr.path, "/v1/") {
			continue
		}
		path, _ := openAPIPath(rr.path)
		method := rr.method
		if method == "" {
			method = "ANY"
		}
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			out = append(out, method+" "+rr.path)
		}
	}
	slices.Sort(out)
	return out
}

var wildcard = regexp.MustCompile(`\{([^}]*)\}`)

// openAPIPath turns a ServeMux path pattern into an OpenAPI path and its
// parameter names: "{rest...}" becomes "{rest}", "{$}" is dropped.
func openAPIPath(pattern string) (string, []string) {
	var params []string
	path := wildcard.ReplaceAllStringFunc(pattern, func(m string) string {
		name := strings.TrimSuffix(m[1:len(m)-1], "...")
		if name == "$" {
			return ""
		}
		params = append(params, name)
		return "{" + name + "}"
	})
	return path, params
}

// schemaGen makes JSON Schemas from Go types, collecting named structs as
// components.
type schemaGen struct {
	components map[string]any
	names      map[reflect.Type]string
	taken      map[string]reflect.Type
}

func newSchemaGen() *schemaGen {
	return &schemaGen{components: map[string]any{}, names: map[reflect.Type]string{}, taken: map[string]reflect.Type{}}
}

// operation is rt's OpenAPI operation object.
func (g *schemaGen) operation(rt *Route, pathParams []string, problemRef map[string]any) map[string]any {
	op := map[string]any{
		"operationId": operationID(rt.Method, rt.Pattern),
		"summary":     rt.Summary,
	}
	if rt.Description != "" {
		op["description"] = rt.Description
	}
	if len(rt.Tags) > 0 {
		op["tags"] = rt.Tags
	}
	var params []any
	for _, p := range pathParams {
		params = append(params, map[string]any{"name": p, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
	}
	if rt.Method == http.MethodPost {
		params = append(params, map[string]any{
			"name": IdempotencyKeyHeader, "in": "header", "required": false,
			"description": "Makes the request safe to retry: a repeat with the same key and request gets the first answer (with Idempotent-Replayed: true). 1 to 255 visible ASCII characters; remembered for 24 hours by default.",
			"schema":      map[string]any{"type": "string", "minLength": 1, "maxLength": maxIdempotencyKeyLen},
		})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if rt.Request != nil {
		op["requestBody"] = map[string]any{
			"required": true,
			"content":  map[string]any{"application/json": map[string]any{"schema": g.schema(typeOf(rt.Request))}},
		}
	}
	switch rt.Auth {
	case AuthCustomer:
		op["security"] = []any{map[string]any{"customerBearer": []string{}}}
	case AuthAgent:
		op["security"] = []any{map[string]any{"agentBearer": []string{}}}
	}

	problem := func(code int) map[string]any {
		return map[string]any{
			"description": http.StatusText(code),
			"content":     map[string]any{ProblemContentType: map[string]any{"schema": problemRef}},
		}
	}
	responses := map[string]any{}
	implied := []int{http.StatusInternalServerError}
	if rt.Request != nil {
		implied = append(implied, http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	}
	if rt.Auth != AuthNone {
		implied = append(implied, http.StatusUnauthorized)
	}
	if rt.Method == http.MethodPost {
		implied = append(implied, http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity)
	}
	for _, code := range implied {
		responses[strconv.Itoa(code)] = problem(code)
	}
	for code, body := range rt.Responses {
		switch {
		case code >= 400 && body == nil:
			responses[strconv.Itoa(code)] = problem(code)
		case body == nil:
			responses[strconv.Itoa(code)] = map[string]any{"description": http.StatusText(code)}
		default:
			responses[strconv.Itoa(code)] = map[string]any{
				"description": http.StatusText(code),
				"content":     map[string]any{"application/json": map[string]any{"schema": g.schema(typeOf(body))}},
			}
		}
	}
	op["responses"] = responses
	return op
}

// operationID names an operation uniquely from its method and path:
// "post_v1_sessions", "get_v1_keys_key".
func operationID(method, pattern string) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(method))
	for _, r := range pattern {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '/' || r == '-' || r == '.' || r == '_':
			b.WriteByte('_')
		}
	}
	return strings.TrimRight(b.String(), "_")
}

// typeOf accepts a value or a reflect.Type.
func typeOf(v any) reflect.Type {
	if t, ok := v.(reflect.Type); ok {
		return t
	}
	return reflect.TypeOf(v)
}

var (
	timeType             = reflect.TypeFor[time.Time]()
	uuidType             = reflect.TypeFor[uuid.UUID]()
	rawMessageType       = reflect.TypeFor[json.RawMessage]()
	durationType         = reflect.TypeFor[time.Duration]()
	jsonMarshalerType    = reflect.TypeFor[json.Marshaler]()
	textMarshalerType    = reflect.TypeFor[encoding.TextMarshaler]()
	componentNameIllegal = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

// schema returns the JSON Schema of t: a $ref for a named struct (added to
// the components), inline otherwise.
func (g *schemaGen) schema(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	implements := func(i reflect.Type) bool { return t.Implements(i) || reflect.PointerTo(t).Implements(i) }
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == uuidType:
		return map[string]any{"type": "string", "format": "uuid"}
	case t == rawMessageType:
		return map[string]any{}
	case t == durationType:
		return map[string]any{"type": "integer", "description": "nanoseconds"}
	case implements(jsonMarshalerType):
		return map[string]any{} // its JSON shape is its own business
	case implements(textMarshalerType):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer", "format": "int64"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return map[string]any{"type": "integer", "format": "int32"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t)
		}
		name, ok := g.names[t]
		if !ok {
			name = g.componentName(t)
			g.names[t] = name
			g.taken[name] = t
			g.components[name] = map[string]any{} // a recursive type refers to itself
			g.components[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{} // interfaces and the like: any JSON value
}

// componentName picks a unique component name for named type t.
func (g *schemaGen) componentName(t reflect.Type) string {
	name := componentNameIllegal.ReplaceAllString(t.Name(), "_")
	if _, clash := g.taken[name]; !clash {
		return name
	}
	pkg := t.PkgPath()
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	base := pkg + "." + name
	name = base
	for i := 2; ; i++ {
		if _, clash := g.taken[name]; !clash {
			return name
		}
		name = base + strconv.Itoa(i)
	}
}

// object is the schema of struct type t's JSON members.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range jsonStructFields(t) {
		var s map[string]any
		if f.asString {
			s = map[string]any{"type": "string"}
		} else {
			s = g.schema(f.typ)
		}
		if doc := f.field.Tag.Get("doc"); doc != "" {
			if _, isRef := s["$ref"]; isRef {
				s = map[string]any{"allOf": []any{s}, "description": doc}
			} else {
				s = cloneSchema(s)
				s["description"] = doc
			}
		}
		props[f.name] = s
		if !f.omitEmpty {
			required = append(required, f.name)
		}
	}
	obj := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		obj["required"] = required
	}
	return obj
}

func cloneSchema(s map[string]any) map[string]any {
	c := make(map[string]any, len(s)+1)
	for k, v := range s {
		c[k] = v
	}
	return c
}
