package campaign

import (
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"

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
	return t, nil
}

// Render renders the three parts for one recipient into b (reused).
func (t *Templates) Render(b *strings.Builder, f Fields) (subject, html, text string, err error) {
	b.Reset()
	if err = t.subject.Execute(b, f); err != nil {
		return
	}
	n1 := b.Len()
	if err = t.html.Execute(b, f); err != nil {
		return
	}
	n2 := b.Len()
	if err = t.text.Execute(b, f); err != nil {
		return
	}
	s := b.String()
	return s[:n1], s[n1:n2], s[n2:], nil
}
