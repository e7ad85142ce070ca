package campaign_test

import (
	"strings"
	"testing"
	texttemplate "text/template"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/campaign"
)

// The subject and text render as text/template renders them, whether they
// take the fast path (literal text and fields) or not.
func TestRenderMatchesTextTemplate(t *testing.T) {
	f := campaign.Fields{Name: `Zoë <b>&"x"`, Email: "z@example.com", Restaurant: "Chez {{.Name}}", UnsubscribeURL: "https://x.example/u/a?b=c&d"}
	for _, src := range []string{
		"plain",
		"",
		"Hi {{.Name}}, {{.Restaurant}} misses you: {{.UnsubscribeURL}} ({{.Email}})",
		"{{.Name}}{{.Name}}",
		"{{- .Name -}} ! {{ .Email }}",
		"{{if .Name}}yes {{.Name}}{{end}}",
		`{{.Name | printf "%q"}}`,
		`{{printf "%s-%s" .Name .Email}}`,
		"{{/* a comment */}}after",
		"{{$n := .Name}}{{$n}}",
		"{{with .Email}}{{.}}{{end}}",
	} {
		tpl, errs := campaign.ParseTemplates(&ladle.Campaign{Subject: src, HTML: "<p>{{.Name}}</p>", Text: src + "\nline two"})
		if len(errs) > 0 {
			t.Fatalf("%q: %v", src, errs)
		}
		var b strings.Builder
		subject, _, text, err := tpl.Render(&b, f)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		want := func(s string) string {
			var w strings.Builder
			if err := texttemplate.Must(texttemplate.New("").Option("missingkey=error").Parse(s)).Execute(&w, f); err != nil {
				t.Fatal(err)
			}
			return w.String()
		}
		if subject != want(src) || text != want(src+"\nline two") {
			t.Errorf("%q: got subject %q, text %q; want %q, %q", src, subject, text, want(src), want(src+"\nline two"))
		}
	}
}

// BenchmarkRender renders a campaign's three parts for one recipient.
//
//	go test -run '^$' -bench Render ./internal/campaign/
func BenchmarkRender(b *testing.B) {
	html := strings.Repeat("<p>Spring menu is here, come and taste it.</p>", 7) + `<p>Hi {{.Name}} — <a href="{{.UnsubscribeURL}}">unsubscribe</a></p>`
	tpl, errs := campaign.ParseTemplates(&ladle.Campaign{Subject: "Spring menu, {{.Name}}", HTML: html,
		Text: "Hi {{.Name}}, the spring menu is here. Unsubscribe: {{.UnsubscribeURL}}"})
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	f := campaign.Fields{Name: "Guest 42", Email: "b0000042@bench.example", Restaurant: "Demo Kitchen", UnsubscribeURL: "https://bench.example/unsubscribe/abc.def"}
	var buf strings.Builder
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := tpl.Render(&buf, f); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnsubscribeToken signs one recipient's unsubscribe token, as
// the sender does for every email.
//
//	go test -run '^$' -bench UnsubscribeToken ./internal/campaign/
func BenchmarkUnsubscribeToken(b *testing.B) {
	s := campaign.NewSigner([]byte("bench secret"))
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Token(42, "b0000042@bench.example")
	}
}
