package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"github.com/ladle-dev/ladle"
)

// Kind names an email template.
type Kind string

const (
	KindReceipt Kind = "receipt" // on order.placed: lines, totals, order number, status link
	KindReady   Kind = "ready"   // on order.status_changed to ready
	KindRefund  Kind = "refund"  // on refund.created: the amount, the lines, what was refunded so far
	// KindConfirm asks a guest who ticked the marketing box to confirm it
	// (double opt-in): the confirmation link.
	KindConfirm Kind = "confirm"
)

// Kinds lists every template kind.
var Kinds = []Kind{KindReceipt, KindReady, KindRefund, KindConfirm}

//go:embed templates/*.txt templates/*.html
var defaultFiles embed.FS

// Data is what a template sees.
type Data struct {
	Restaurant *ladle.Restaurant
	Order      *ladle.Order
	StatusURL  string // absolute link to the guest's status page
	// Refund is the refund a refund email is about (nil for the others).
	Refund *ladle.Refund
	// ConfirmURL is a confirmation email's link (double opt-in).
	ConfirmURL string
}

// Rendered is a rendered email, before addressing.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

// Templates renders emails from per-restaurant templates. Each kind has a
// plain-text file <kind>.txt, which also defines the subject as
// {{define "subject"}}…{{end}}, and an HTML file <kind>.html. The built-in
// ones are embedded; a restaurant gets its own by putting either file in
// <dir>/<restaurant slug>/ (the other one keeps the default). Files are
// re-read when they change, so an owner's edit needs no restart.
//
// Template functions: money (an amount in the order's currency), local (a
// time in the restaurant's time zone), pickup (the order's pickup time or
// "As soon as possible") and lineName (the name of the order's line at a
// position, for a refund's lines).
type Templates struct {
	dir      string
	defaults map[Kind]*set

	mu    sync.Mutex
	files map[string]cachedFile // override path -> parsed file
}

type set struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

type cachedFile struct {
	mod  time.Time
	text *texttemplate.Template
	html *htmltemplate.Template
}

// NewTemplates parses the built-in templates; dir ("" for none) holds the
// per-restaurant overrides.
func NewTemplates(dir string) (*Templates, error) {
	t := &Templates{dir: dir, defaults: map[Kind]*set{}, files: map[string]cachedFile{}}
	for _, k := range Kinds {
		txt, err := fs.ReadFile(defaultFiles, "templates/"+string(k)+".txt")
		if err != nil {
			return nil, err
		}
		html, err := fs.ReadFile(defaultFiles, "templates/"+string(k)+".html")
		if err != nil {
			return nil, err
		}
		s := &set{}
		if s.text, err = parseText(string(k), string(txt)); err != nil {
			return nil, err
		}
		if s.html, err = parseHTML(string(k), string(html)); err != nil {
			return nil, err
		}
		t.defaults[k] = s
	}
	return t, nil
}

// placeholder funcs let templates parse; every render binds real ones to a
// clone (the functions depend on the order's currency and the restaurant's
// time zone).
var placeholderFuncs = map[string]any{
	"money":    func(ladle.Money) string { return "" },
	"local":    func(time.Time) string { return "" },
	"pickup":   func(*ladle.Order) string { return "" },
	"lineName": func(*ladle.Order, int) string { return "" },
}

func parseText(name, src string) (*texttemplate.Template, error) {
	t, err := texttemplate.New(name).Funcs(placeholderFuncs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("mail: template %s.txt: %w", name, err)
	}
	if t.Lookup("subject") == nil {
		return nil, fmt.Errorf("mail: template %s.txt does not define \"subject\"", name)
	}
	return t, nil
}

func parseHTML(name, src string) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(name).Funcs(placeholderFuncs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("mail: template %s.html: %w", name, err)
	}
	return t, nil
}

var slugRE = regexp.MustCompile(`^[a-z0-9-]{2,64}$`)

// Render renders the kind's email for d.Restaurant, using that restaurant's
// own templates where it has them.
func (t *Templates) Render(kind Kind, d Data) (Rendered, error) {
	def, ok := t.defaults[kind]
	if !ok {
		return Rendered{}, fmt.Errorf("mail: unknown template %q", kind)
	}
	if d.Restaurant == nil || d.Order == nil {
		return Rendered{}, errors.New("mail: render needs a restaurant and an order")
	}
	text, html := def.text, def.html
	if t.dir != "" && slugRE.MatchString(d.Restaurant.Slug) {
		base := filepath.Join(t.dir, d.Restaurant.Slug, string(kind))
		f, err := t.override(base+".txt", false)
		if err != nil {
			return Rendered{}, err
		}
		if f != nil {
			text = f.text
		}
		if f, err = t.override(base+".html", true); err != nil {
			return Rendered{}, err
		}
		if f != nil {
			html = f.html
		}
	}
	funcs := renderFuncs(d)
	tc, err := text.Clone()
	if err != nil {
		return Rendered{}, err
	}
	tc.Funcs(funcs)
	hc, err := html.Clone()
	if err != nil {
		return Rendered{}, err
	}
	hc.Funcs(funcs)

	var subject, body, hbody bytes.Buffer
	if err := tc.ExecuteTemplate(&subject, "subject", d); err != nil {
		return Rendered{}, fmt.Errorf("mail: %s subject: %w", kind, err)
	}
	if err := tc.Execute(&body, d); err != nil {
		return Rendered{}, fmt.Errorf("mail: %s text: %w", kind, err)
	}
	if err := hc.Execute(&hbody, d); err != nil {
		return Rendered{}, fmt.Errorf("mail: %s html: %w", kind, err)
	}
	return Rendered{
		Subject: HeaderText(subject.String()),
		Text:    strings.TrimSpace(body.String()) + "\n",
		HTML:    hbody.String(),
	}, nil
}

// override returns the parsed override file at path, nil if there is none.
func (t *Templates) override(path string, isHTML bool) (*cachedFile, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mail: template %s: %w", path, err)
	}
	t.mu.Lock()
	c, ok := t.files[path]
	t.mu.Unlock()
	if ok && c.mod.Equal(st.ModTime()) {
		return &c, nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mail: template %s: %w", path, err)
	}
	c = cachedFile{mod: st.ModTime()}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if isHTML {
		c.html, err = parseHTML(name, string(src))
	} else {
		c.text, err = parseText(name, string(src))
	}
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.files[path] = c
	t.mu.Unlock()
	return &c, nil
}

func renderFuncs(d Data) map[string]any {
	cur := d.Order.Currency
	if cur == "" {
		cur = d.Restaurant.Currency
	}
	loc := d.Restaurant.Location()
	local := func(t time.Time) string { return t.In(loc).Format("Mon 2 Jan 2006, 15:04 MST") }
	return map[string]any{
		"money": func(m ladle.Money) string { return FormatMoney(m, cur) },
		"local": local,
		"lineName": func(o *ladle.Order, position int) string {
			if position < 0 || position >= len(o.Lines) {
				return "item"
			}
			return o.Lines[position].Name
		},
		"pickup": func(o *ladle.Order) string {
			if o.Fulfillment.Time == nil {
				if o.ReadyEstimate != nil {
					return "As soon as possible (ready around " + o.ReadyEstimate.In(loc).Format("15:04 MST") + ")"
				}
				return "As soon as possible"
			}
			return local(*o.Fulfillment.Time)
		},
	}
}
