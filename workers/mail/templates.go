package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"sort"
	"strings"
	texttemplate "text/template"
)

//go:embed templates/*.tmpl
var templateFiles embed.FS

// Templates renders the Subject, Text and HTML of a Message from the files
// embedded under templates/: <kind>.subject.tmpl and <kind>.txt.tmpl
// (text/template, both required) and <kind>.html.tmpl (html/template,
// optional). Every template runs with missingkey=error, so a value the caller
// forgot is an error naming the key, never "<no value>" in a customer's inbox.
// A Templates is safe for concurrent use.
type Templates struct {
	kinds map[string]kindTemplates
}

type kindTemplates struct {
	subject, text *texttemplate.Template
	html          *htmltemplate.Template // nil when the kind has no HTML body
	// longest is the length of the kind's longest template file, about
	// what its longest part renders to: Fill's buffer starts that large
	// instead of growing, copying the text each time.
	longest int
}

// NewTemplates parses every embedded template. It fails when a file does not
// parse, when a kind lacks its subject or text template, or when a file name
// is not <kind>.{subject,txt,html}.tmpl with a valid Kind.
func NewTemplates() (*Templates, error) {
	t := &Templates{kinds: map[string]kindTemplates{}}
	names, err := fs.Glob(templateFiles, "templates/*.tmpl")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		base := path.Base(name)
		kind, part, ok := strings.Cut(strings.TrimSuffix(base, ".tmpl"), ".")
		if !ok || validateKind(kind) != nil {
			return nil, fmt.Errorf("mail: template %s: name must be <kind>.{subject,txt,html}.tmpl", base)
		}
		src, err := templateFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		kt := t.kinds[kind]
		kt.longest = max(kt.longest, len(src))
		switch part {
		case "subject":
			kt.subject, err = texttemplate.New(base).Option("missingkey=error").Parse(string(src))
		case "txt":
			kt.text, err = texttemplate.New(base).Option("missingkey=error").Parse(string(src))
		case "html":
			kt.html, err = htmltemplate.New(base).Option("missingkey=error").Parse(string(src))
		default:
			return nil, fmt.Errorf("mail: template %s: part must be subject, txt or html", base)
		}
		if err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", base, err)
		}
		t.kinds[kind] = kt
	}
	for kind, kt := range t.kinds {
		if kt.subject == nil || kt.text == nil {
			return nil, fmt.Errorf("mail: templates for %q need both %[1]s.subject.tmpl and %[1]s.txt.tmpl", kind)
		}
	}
	return t, nil
}

// Kinds returns the kinds that have templates, sorted.
func (t *Templates) Kinds() []string {
	kinds := make([]string, 0, len(t.kinds))
	for k := range t.kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// filledData is room for what the data adds to a template's text.
const filledData = 512

// Fill returns m with Subject, Text and HTML rendered from the templates of
// m.Kind with data (a struct, or a map[string]any whose keys the templates
// name); HTML is left empty when the kind has no HTML template. The subject's
// surrounding whitespace, including the file's final newline, is trimmed.
//
// It fails when m.Kind has no templates or a template fails to execute — a
// missing map key among them; the error names the template and the key. It
// never quotes data values, which may be secret (DOMAIN SEC-3).
func (t *Templates) Fill(m Message, data any) (Message, error) {
	kt, ok := t.kinds[m.Kind]
	if !ok {
		return Message{}, fmt.Errorf("mail: no templates for kind %q", m.Kind)
	}
	var b bytes.Buffer
	b.Grow(kt.longest + filledData)
	if err := kt.subject.Execute(&b, data); err != nil {
		return Message{}, fmt.Errorf("mail: template %s: %w", kt.subject.Name(), err)
	}
	m.Subject = strings.TrimSpace(b.String())
	b.Reset()
	if err := kt.text.Execute(&b, data); err != nil {
		return Message{}, fmt.Errorf("mail: template %s: %w", kt.text.Name(), err)
	}
	m.Text = b.String()
	m.HTML = ""
	if kt.html != nil {
		b.Reset()
		if err := kt.html.Execute(&b, data); err != nil {
			return Message{}, fmt.Errorf("mail: template %s: %w", kt.html.Name(), err)
		}
		m.HTML = b.String()
	}
	return m, nil
}
