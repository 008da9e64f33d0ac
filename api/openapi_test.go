package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/api"
)

type docAddress struct {
	Line1 string `json:"line1" doc:"The first address line."`
	Zip   string `json:"zip,omitempty"`
}

type docTree struct {
	Name     string    `json:"name"`
	Children []docTree `json:"children,omitempty"`
}

type docRequest struct {
	Email    string            `json:"email" doc:"The account's e-mail address (ACC-1)."`
	Password string            `json:"password"`
	Address  docAddress        `json:"address"`
	Previous *docAddress       `json:"previous,omitempty"`
	Tags     []string          `json:"tags,omitempty"`
	Labels   map[string]int    `json:"labels,omitzero"`
	ID       uuid.UUID         `json:"id"`
	At       time.Time         `json:"at"`
	Count    int64             `json:"count,string"`
	Tree     docTree           `json:"tree"`
	Ignored  string            `json:"-"`
	Any      any               `json:"any,omitempty"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
	Nested   struct{ X bool }  `json:"nested"`
	Extra    map[string]string `json:"extra,omitempty"`
}

func noContent(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func openAPIRoutes(s *api.Server) {
	s.Route(api.Route{Method: http.MethodPost, Pattern: "/v1/test/things", Summary: "Make a thing", Tags: []string{"things"},
		Request: docRequest{}, Responses: map[int]any{http.StatusCreated: docTree{}, http.StatusConflict: nil},
		Handler: api.HandlerFunc(noContent)})
	s.Route(api.Route{Method: http.MethodGet, Pattern: "/v1/test/things/{id}", Summary: "Read a thing", Auth: api.AuthCustomer,
		Responses: map[int]any{http.StatusOK: &docTree{}}, Handler: api.HandlerFunc(noContent)})
	s.Route(api.Route{Method: http.MethodDelete, Pattern: "/v1/test/things/{id}/files/{path...}", Summary: "Delete a file", Auth: api.AuthAgent,
		Responses: map[int]any{http.StatusNoContent: nil}, Handler: api.HandlerFunc(noContent)})
}

func TestOpenAPI_DocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	env := MustNewAPIEnv(t, api.ServerConfig{DB: MustNewUnreachablePool(t)}, openAPIRoutes)
	if got := api.UndocumentedRoutes(env.Server); len(got) != 0 {
		t.Errorf("UndocumentedRoutes = %q, want none", got)
	}

	resp := MustSend(t, http.MethodGet, env.URL+api.OpenAPIPath, "", nil)
	if resp.Status != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %q", api.OpenAPIPath, resp.Status, resp.Header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	for _, key := range []string{"openapi", "info", "paths", "components"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("the document lacks %q", key)
		}
	}
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	if info, _ := doc["info"].(map[string]any); info["title"] != "subs" || info["version"] == "" {
		t.Errorf("info = %v, want title subs and a version", info)
	}
	MustResolveRefs(t, doc)

	paths := doc["paths"].(map[string]any)
	for _, want := range []string{"post /v1/test/things", "get /v1/test/things/{id}", "delete /v1/test/things/{id}/files/{path}", "get " + api.OpenAPIPath} {
		method, path, _ := strings.Cut(want, " ")
		if _, ok := paths[path].(map[string]any)[method]; !ok {
			t.Errorf("no operation %s", want)
		}
	}

	post := paths["/v1/test/things"].(map[string]any)["post"].(map[string]any)
	responses := post["responses"].(map[string]any)
	for _, code := range []string{"201", "400", "409", "413", "415", "422", "500"} {
		if _, ok := responses[code]; !ok {
			t.Errorf("POST lacks the %s response", code)
		}
	}
	if !strings.Contains(jsonOf(t, responses["409"]), `"#/components/schemas/Problem"`) ||
		!strings.Contains(jsonOf(t, responses["409"]), api.ProblemContentType) {
		t.Errorf("409 does not reference the Problem schema as problem+json: %s", jsonOf(t, responses["409"]))
	}
	if !strings.Contains(jsonOf(t, post["parameters"]), api.IdempotencyKeyHeader) {
		t.Errorf("POST does not document %s", api.IdempotencyKeyHeader)
	}
	get := paths["/v1/test/things/{id}"].(map[string]any)["get"].(map[string]any)
	if s := jsonOf(t, get["security"]); s != `[{"customerBearer":[]}]` {
		t.Errorf("customer route security = %s", s)
	}
	if _, ok := get["responses"].(map[string]any)["401"]; !ok {
		t.Error("customer route lacks 401")
	}
	if p := jsonOf(t, get["parameters"]); !strings.Contains(p, `"in":"path"`) || !strings.Contains(p, `"name":"id"`) {
		t.Errorf("path parameter id undocumented: %s", p)
	}
	schemes := jsonOf(t, doc["components"].(map[string]any)["securitySchemes"])
	if !strings.Contains(schemes, `"scheme":"bearer"`) {
		t.Errorf("no bearer security scheme: %s", schemes)
	}

	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	req, ok := schemas["docRequest"].(map[string]any)
	if !ok {
		t.Fatalf("no docRequest component; have %v", keys(schemas))
	}
	var required []string
	for _, r := range req["required"].([]any) {
		required = append(required, r.(string))
	}
	slices.Sort(required)
	if want := []string{"address", "at", "count", "email", "id", "nested", "password", "tree"}; !slices.Equal(required, want) {
		t.Errorf("required = %q, want %q (every field without omitempty/omitzero)", required, want)
	}
	props := req["properties"].(map[string]any)
	for field, want := range map[string]string{
		"email":    `{"description":"The account's e-mail address (ACC-1).","type":"string"}`,
		"id":       `{"format":"uuid","type":"string"}`,
		"at":       `{"format":"date-time","type":"string"}`,
		"count":    `{"type":"string"}`,
		"tags":     `{"items":{"type":"string"},"type":"array"}`,
		"labels":   `{"additionalProperties":{"format":"int64","type":"integer"},"type":"object"}`,
		"previous": `{"$ref":"#/components/schemas/docAddress"}`,
		"tree":     `{"$ref":"#/components/schemas/docTree"}`,
		"any":      `{}`,
	} {
		if got := jsonOf(t, props[field]); got != want {
			t.Errorf("property %s = %s, want %s", field, got, want)
		}
	}
	if _, ok := props["Ignored"]; ok {
		t.Error(`a json:"-" field is documented`)
	}
	if tree := jsonOf(t, schemas["docTree"]); !strings.Contains(tree, `"items":{"$ref":"#/components/schemas/docTree"}`) {
		t.Errorf("recursive docTree = %s", tree)
	}
}

func TestUndocumentedRoutes_ListsRoutesAddedWithHandle(t *testing.T) {
	t.Parallel()
	env := MustNewAPIEnv(t, api.ServerConfig{DB: MustNewUnreachablePool(t)}, func(s *api.Server) {
		openAPIRoutes(s)
		s.Handle("GET /v1/test/hidden/{id}", api.HandlerFunc(noContent))
		s.Handle("/v1/test/any-method", api.HandlerFunc(noContent))
		s.Handle("GET /internal/debug", api.HandlerFunc(noContent)) // outside /v1: not the API
	})
	got := api.UndocumentedRoutes(env.Server)
	if want := []string{"ANY /v1/test/any-method", "GET /v1/test/hidden/{id}"}; !slices.Equal(got, want) {
		t.Errorf("UndocumentedRoutes = %q, want %q", got, want)
	}
}

func TestRoute_RefusesIncompleteRoutes(t *testing.T) {
	t.Parallel()
	ok := api.Route{Method: http.MethodGet, Pattern: "/v1/test/x", Summary: "X", Handler: api.HandlerFunc(noContent)}
	for name, change := range map[string]func(*api.Route){
		"no method":      func(r *api.Route) { r.Method = "" },
		"odd method":     func(r *api.Route) { r.Method = "BREW" },
		"outside /v1":    func(r *api.Route) { r.Pattern = "/x" },
		"no summary":     func(r *api.Route) { r.Summary = "" },
		"no handler":     func(r *api.Route) { r.Handler = nil },
		"twice the same": func(r *api.Route) { r.Pattern = api.OpenAPIPath },
	} {
		t.Run(name, func(t *testing.T) {
			s, err := api.NewServer(api.ServerConfig{DB: MustNewUnreachablePool(t), Policy: testPolicy, SecretKey: make([]byte, 32)})
			if err != nil {
				t.Fatal(err)
			}
			rt := ok
			change(&rt)
			defer func() {
				if recover() == nil {
					t.Error("Route did not panic")
				}
			}()
			s.Route(rt)
		})
	}
}

// MustResolveRefs fails for every "$ref" in doc that does not point at an
// existing node.
func MustResolveRefs(tb testing.TB, doc map[string]any) {
	tb.Helper()
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				n++
				var node any = doc
				for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
					m, _ := node.(map[string]any)
					node = m[part]
				}
				if node == nil || !strings.HasPrefix(ref, "#/") {
					tb.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	if n == 0 {
		tb.Error("the document has no $ref: nothing was checked")
	}
}

func jsonOf(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
