package campaign

import (
	"fmt"
	htmltemplate "html/template"
	"slices"
	"strings"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/ladle-dev/ladle"
)

// Fields are what a campaign's templates may use: {{.Name}}, {{.Email}},
// {{.Restaurant}} and {{.UnsubscribeURL}}.
type Fields struct {
	Name, Email, Restaurant, UnsubscribeURL string
}

// Templates are a campaign's parsed subject, HTML and text. The HTML is an
// html/template, so a customer's name (from a checkout or an import) is
// escaped wherever it lands; the subject and text are text/templates, and
// the subject is made header-safe when the message is written (a line
// break in a name can never start a header).
type Templates struct {
	subject *texttemplate.Template
	html    *htmltemplate.Template
	text    *texttemplate.Template
	// fastSubject and fastText are the subject and text compiled to
	// literal text and fields, when that is all they are (the usual
	// case): rendering them is then appending, without text/template's
	// reflection. nil: execute the template.
	fastSubject, fastText []segment
}

// segment is literal text, or (field >= 0) one of Fields' values.
type segment struct {
	text  string
	field int
}

// Fields' values by segment.field.
const (
	fieldName = iota
	fieldEmail
	fieldRestaurant
	fieldUnsubscribeURL
)

// compileText returns t as segments if it is only literal text and
// {{.Field}} actions of Fields (which text/template prints as they are),
// else nil.
func compileText(t *texttemplate.Template) []segment {
	if t.Tree == nil || t.Root == nil || len(t.Templates()) > 1 {
		return nil
	}
	var out []segment
	for _, n := range t.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			out = append(out, segment{text: string(n.Text), field: -1})
		case *parse.ActionNode:
			if len(n.Pipe.Decl) > 0 || len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 {
				return nil
			}
			f, ok := n.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
			if !ok || len(f.Ident) != 1 {
				return nil
			}
			i := slices.Index([]string{"Name", "Email", "Restaurant", "UnsubscribeURL"}, f.Ident[0])
			if i < 0 {
				return nil
			}
			out = append(out, segment{field: i})
		default:
			return nil
		}
	}
	return out
}

// write appends the segments, with f's values, to b.
func write(b *strings.Builder, segs []segment, f *Fields) {
	for _, s := range segs {
		switch s.field {
		case -1:
			b.WriteString(s.text)
		case fieldName:
			b.WriteString(f.Name)
		case fieldEmail:
			b.WriteString(f.Email)
		case fieldRestaurant:
			b.WriteString(f.Restaurant)
		case fieldUnsubscribeURL:
			b.WriteString(f.UnsubscribeURL)
		}
	}
}

// ParseTemplates parses and checks a campaign's templates (executing them
// once on sample fields), returning per-field problems.
func ParseTemplates(c *ladle.Campaign) (*Templates, map[string]string) {
	errs := map[string]string{}
	t := &Templates{}
	var err error
	if strings.ContainsAny(c.Subject, "\r\n") {
		errs["subject"] = "must be a single line"
	} else if t.subject, err = texttemplate.New("subject").Option("missingkey=error").Parse(c.Subject); err != nil {
		errs["subject"] = "is not a valid template: " + err.Error()
	}
	if t.html, err = htmltemplate.New("html").Option("missingkey=error").Parse(c.HTML); err != nil {
		errs["html"] = "is not a valid template: " + err.Error()
	}
	if t.text, err = texttemplate.New("text").Option("missingkey=error").Parse(c.Text); err != nil {
		errs["text"] = "is not a valid template: " + err.Error()
	}
	if len(errs) > 0 {
		return nil, errs
	}
	sample := Fields{Name: "Ada", Email: "ada@example.com", Restaurant: "R", UnsubscribeURL: "https://example.com/u"}
	var b strings.Builder
	if err := t.subject.Execute(&b, sample); err != nil {
		errs["subject"] = "cannot be rendered: " + err.Error()
	}
	if err := t.html.Execute(&b, sample); err != nil {
		errs["html"] = "cannot be rendered: " + err.Error()
	}
	if err := t.text.Execute(&b, sample); err != nil {
		errs["text"] = "cannot be rendered: " + err.Error()
	}
	if len(errs) > 0 {
		return nil, errs
	}
	t.fastSubject, t.fastText = compileText(t.subject), compileText(t.text)
	return t, nil
}

// Render renders the three parts for one recipient into b (reused).
func (t *Templates) Render(b *strings.Builder, f Fields) (subject, html, text string, err error) {
	// The strings handed out keep b's bytes, so they cannot be written
	// over; but b's capacity says how large the last recipient's message
	// was, and this one's is about the same: one allocation instead of
	// one per doubling.
	size := b.Cap()
	b.Reset()
	b.Grow(size)
	if t.fastSubject != nil {
		write(b, t.fastSubject, &f)
	} else if err = t.subject.Execute(b, f); err != nil {
		return
	}
	n1 := b.Len()
	if err = t.html.Execute(b, f); err != nil {
		return
	}
	n2 := b.Len()
	if t.fastText != nil {
		write(b, t.fastText, &f)
	} else if err = t.text.Execute(b, f); err != nil {
		return
	}
	s := b.String()
	return s[:n1], s[n1:n2], s[n2:], nil
}

// TestUnsubscribePath is the unsubscribe link of a test send: it looks
// like a recipient's, and leads to a page that says it is a test; no
// signed token names anybody in it, so it cannot unsubscribe anyone.
const TestUnsubscribePath = "/unsubscribe/test"

// Message is one rendered campaign email; ListUnsubscribe is the URL of
// its List-Unsubscribe header (the same link as the body's).
type Message struct{ Subject, HTML, Text, ListUnsubscribe string }

// TestMessage renders c as a test send to a staff member: the recipient's
// rendering (the same templates and fields as the sender's), filled with
// the staff member's name and address and the test unsubscribe link, and
// the subject prefixed "[Test] ".
func TestMessage(c *ladle.Campaign, restaurant, name, email, publicURL string) (*Message, error) {
	tpl, errs := ParseTemplates(c)
	if len(errs) > 0 {
		return nil, fmt.Errorf("campaign %s: templates: %v", c.ID, errs)
	}
	var b strings.Builder
	unsub := strings.TrimRight(publicURL, "/") + TestUnsubscribePath
	subject, html, text, err := tpl.Render(&b, Fields{Name: name, Email: email, Restaurant: restaurant, UnsubscribeURL: unsub})
	if err != nil {
		return nil, err
	}
	return &Message{Subject: "[Test] " + subject, HTML: html, Text: text, ListUnsubscribe: unsub}, nil
}
