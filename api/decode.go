package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// DefaultMaxBodyBytes is the request body limit when ServerConfig.MaxBodyBytes
// is zero: 64 KiB, far above any request the API takes.
const DefaultMaxBodyBytes = 64 << 10

// DecodeJSON reads r's body into dst, a non-nil pointer, strictly: it returns
// nil on success and otherwise a *Problem for the handler to pass to
// WriteError (DecodeJSON writes nothing itself; w is only used to limit the
// body). The refusals are:
//
//   - Content-Type other than application/json (a charset other than utf-8
//     included): 415 ProblemTypeUnsupportedMediaType;
//   - a body over the server's MaxBodyBytes: 413 ProblemTypeBodyTooLarge;
//   - an empty body, a JSON syntax error (the detail gives the byte offset),
//     a body cut short, a null or non-object body when dst is a struct or a
//     map, or data after the first value: 400 ProblemTypeMalformedBody;
//   - a field dst does not have, a field named in another letter case than
//     its JSON name, a field given twice, or a value of the wrong JSON type:
//     400 ProblemTypeValidation, errors[] naming each such field by its path
//     ("address.line1", "items[2].sku").
//
// A value that fails a type's own UnmarshalJSON or UnmarshalText (a malformed
// uuid or time) is a 400 ProblemTypeValidation naming the field when the
// decoder reports it. Missing fields are not refused here: required values
// are the handler's (or the domain's) to check. A dst that is not a non-nil
// pointer is a programming error, returned as a plain error (a 500).
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if p := checkJSONContentType(r.Header.Get("Content-Type")); p != nil {
		return p
	}
	if r.Body == nil {
		return malformed("The request body is empty; send a JSON object.")
	}
	limit := envFrom(r.Context()).maxBody
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mb, ok := errors.AsType[*http.MaxBytesError](err); ok {
			p := bodyTooLarge(mb.Limit)
			return &p
		}
		return fmt.Errorf("api: read the request body: %w", err)
	}
	return decodeStrict(data, dst)
}

// checkJSONContentType returns a 415 problem unless ct is application/json,
// with no parameter but charset=utf-8.
func checkJSONContentType(ct string) *Problem {
	mt, params, err := mime.ParseMediaType(ct)
	ok := err == nil && mt == "application/json"
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			ok = false
		}
	}
	if ok {
		return nil
	}
	return &Problem{
		Type: ProblemTypeUnsupportedMediaType, Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType,
		Detail: "Send the request body as JSON with the header Content-Type: application/json.",
	}
}

// decodeStrict is DecodeJSON after the body is read: data into dst.
func decodeStrict(data []byte, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("api: DecodeJSON needs a non-nil pointer, got %T", dst)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return malformed("The request body is empty; send a JSON object.")
	}
	target := rv.Type().Elem()
	for target.Kind() == reflect.Pointer {
		target = target.Elem()
	}
	wantObject := (target.Kind() == reflect.Struct || target.Kind() == reflect.Map) && !customDecoder(target)
	if wantObject && trimmed[0] != '{' {
		if json.Valid(trimmed) {
			return malformed("The request body must be a JSON object {…}.")
		}
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		// Data after the value: a second value or garbage.
		if _, terr := dec.Token(); terr != io.EOF {
			return malformed(fmt.Sprintf("The request body continues after the JSON value, at byte %d; send exactly one JSON object.", dec.InputOffset()))
		}
	}
	if err != nil {
		if p := decodeProblem(data, target, err); p != nil {
			return p
		}
		return fmt.Errorf("api: decode the request body: %w", err)
	}
	// encoding/json matches keys case-insensitively and keeps the last of
	// duplicate keys; a strict API refuses both, naming the field.
	if fields := checkKeys(data, target); len(fields) > 0 {
		p := validationProblem(fields)
		return &p
	}
	return nil
}

// decodeProblem turns a json.Decoder error into a problem, or returns nil
// for an error that is the server's fault.
func decodeProblem(data []byte, target reflect.Type, err error) *Problem {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return malformed(fmt.Sprintf("The request body is not valid JSON: %s at byte %d.", se.Error(), se.Offset))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return malformed("The request body ends before its JSON value is complete.")
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return malformed("The request body must be a JSON object {…}, not " + te.Value + ".")
		}
		p := validationProblem([]FieldError{{Field: te.Field, Message: "must be " + jsonKind(te.Type) + ", not " + te.Value}})
		return &p
	}
	if _, ok := errors.AsType[*json.InvalidUnmarshalError](err); ok {
		return nil
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		// encoding/json names only the key, not where it is: find the paths.
		fields := checkKeys(data, target)
		if len(fields) == 0 {
			name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			fields = []FieldError{{Field: name, Message: "is not a field of this request"}}
		}
		p := validationProblem(fields)
		return &p
	}
	// A type's own UnmarshalJSON/UnmarshalText refused its value (a bad
	// uuid, a bad time). encoding/json does not say which field; find the
	// first value whose type decodes itself and fails on its own.
	if field := firstBadCustomValue(data, target); field != "" {
		p := validationProblem([]FieldError{{Field: field, Message: "is not a valid value: " + err.Error()}})
		return &p
	}
	return malformed("A value in the request body could not be read: " + err.Error() + ".")
}

// malformed is a 400 ProblemTypeMalformedBody with detail.
func malformed(detail string) *Problem {
	return &Problem{Type: ProblemTypeMalformedBody, Title: "Malformed request body", Status: http.StatusBadRequest, Detail: detail}
}

// jsonKind names the JSON type a Go type decodes from, for messages.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	if customDecoder(t) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "another type"
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// customDecoder reports whether t decodes itself, so that its JSON shape is
// not its Go shape (time.Time, uuid.UUID).
func customDecoder(t reflect.Type) bool {
	return t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType) ||
		t.Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// jsonField is one JSON member of a struct type, by encoding/json's rules.
type jsonField struct {
	name      string // the exact JSON key
	typ       reflect.Type
	omitEmpty bool // tagged omitempty or omitzero: optional in the OpenAPI schema
	asString  bool // tagged ",string": a number or bool sent as a JSON string
	field     reflect.StructField
}

// jsonStructFields lists struct type t's JSON members, following
// encoding/json's rules for tags and untagged embedded structs (whose fields
// are promoted). Go's rules for shadowed fields stand in for encoding/json's
// subtler ones.
func jsonStructFields(t reflect.Type) []jsonField {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]jsonField)
	}
	var out []jsonField
	seen := map[string]bool{}
	for _, f := range reflect.VisibleFields(t) {
		if len(f.Index) > 1 && !promoted(t, f.Index) {
			continue
		}
		tag, tagged := f.Tag.Lookup("json")
		if f.Anonymous && !tagged {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				continue // its fields are promoted; VisibleFields lists them
			}
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		jf := jsonField{name: name, typ: f.Type, field: f}
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "omitempty", "omitzero":
				jf.omitEmpty = true
			case "string":
				jf.asString = true
			}
		}
		out = append(out, jf)
	}
	fieldCache.Store(t, out)
	return out
}

var fieldCache sync.Map // reflect.Type → []jsonField

// jsonFieldType returns the type of struct type t's JSON member key (exact
// case), and whether t has one.
func jsonFieldType(t reflect.Type, key string) (reflect.Type, bool) {
	for _, f := range jsonStructFields(t) {
		if f.name == key {
			return f.typ, true
		}
	}
	return nil, false
}

// promoted reports whether the field at index is reached only through
// untagged embedded structs, as encoding/json requires to promote it.
func promoted(t reflect.Type, index []int) bool {
	for _, i := range index[:len(index)-1] {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		f := t.Field(i)
		if !f.Anonymous {
			return false
		}
		if _, named := f.Tag.Lookup("json"); named {
			return false
		}
		t = f.Type
	}
	return true
}

// checkKeys walks data (valid JSON) along type t and returns each object key
// t has no field for (by exact name) and each key given twice, with its path.
func checkKeys(data []byte, t reflect.Type) []FieldError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out []FieldError
	_ = walkValue(dec, t, "", func(path, msg string) { out = append(out, FieldError{Field: path, Message: msg}) })
	return out
}

// walkValue reads one JSON value from dec, reporting bad keys. t is the Go
// type the value decodes into, or nil when unknown (no checks below).
func walkValue(dec *json.Decoder, t reflect.Type, path string, report func(path, msg string)) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (customDecoder(t) || t.Kind() == reflect.Interface) {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch delim {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkValue(dec, elem, path+"["+strconv.Itoa(i)+"]", report); err != nil {
				return err
			}
		}
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			child := key
			if path != "" {
				child = path + "." + key
			}
			if seen[key] {
				report(child, "is given more than once")
			}
			seen[key] = true
			var ft reflect.Type
			switch {
			case t == nil:
			case t.Kind() == reflect.Map:
				ft = t.Elem()
			case t.Kind() == reflect.Struct:
				var known bool
				ft, known = jsonFieldType(t, key)
				if !known {
					report(child, "is not a field of this request")
				}
			}
			if err := walkValue(dec, ft, child, report); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// firstBadCustomValue returns the path of the first value in data whose Go
// type (under t) decodes itself and refuses the value, or "".
func firstBadCustomValue(data []byte, t reflect.Type) string {
	var found string
	var walk func(v any, t reflect.Type, path string)
	walk = func(v any, t reflect.Type, path string) {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if found != "" || t == nil {
			return
		}
		if customDecoder(t) {
			raw, _ := json.Marshal(v)
			if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
				found = path
			}
			return
		}
		join := func(k string) string {
			if path == "" {
				return k
			}
			return path + "." + k
		}
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch t.Kind() {
				case reflect.Map:
					walk(x, t.Elem(), join(k))
				case reflect.Struct:
					ft, _ := jsonFieldType(t, k)
					walk(x, ft, join(k))
				}
			}
		case []any:
			if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
				for i, x := range v {
					walk(x, t.Elem(), path+"["+strconv.Itoa(i)+"]")
				}
			}
		}
	}
	var v any
	if json.Unmarshal(data, &v) == nil {
		walk(v, t, "")
	}
	return found
}
