package web

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/httpserver"
	"github.com/ladle-dev/ladle/internal/problem"
)

//go:embed templates
var templatesFS embed.FS

// page is what every template's layout reads. Page view models embed it.
type page struct {
	Title string
	// Staff is set on staff pages: the layout then shows the staff header.
	Staff *staffView
	// Refresh reloads the page after that many seconds (0: never): a meta
	// refresh inside <noscript> without JS, app.js's timer (paused while
	// the live stream is on) with it, so screen readers are not
	// interrupted by a page that reloads under them.
	Refresh int
}

// parseTemplates parses each page together with the layout and the
// partials, so every page is one self-contained template set.
func (s *server) parseTemplates() map[string]*template.Template {
	funcs := template.FuncMap{
		"asset":       s.assets.URL,
		"money":       formatMoney,
		"image":       s.imageURL,
		"statusLabel": statusLabel,
		"actionLabel": actionLabel,
		"groupHint":   groupHint,
		"clock":       clockTime,
		"fullTime":    fullTime,
		"dietaryTags": func() []ladle.DietaryTag { return ladle.DietaryTags },
		"dietary":     ladle.DietaryLabel,
		"join":        strings.Join,
		// phone writes a stored number for display, in national form when
		// it is in the restaurant's country.
		"phone":   func(p string, r *ladle.Restaurant) string { return formatPhone(p, callingCode(r.Phone)) },
		"compact": compactPhone,
		"single":  func(g ladle.ModifierGroup) bool { return g.Max == 1 },
		"nextStatuses": func(st ladle.OrderStatus) []ladle.OrderStatus {
			var out []ladle.OrderStatus
			for _, n := range ladle.NextStatuses(st) {
				if n != ladle.StatusCancelled {
					out = append(out, n)
				}
			}
			return out
		},
		"canCancel": func(st ladle.OrderStatus) bool { return ladle.CanTransition(st, ladle.StatusCancelled) },
		"stripeKey": func() string { return s.StripePublishableKey },
		"percent":   func(bp int) string { return strconv.FormatFloat(float64(bp)/100, 'f', -1, 64) + "%" },
	}
	for name, fn := range backofficeFuncs { // admin_history.go
		funcs[name] = fn
	}
	entries, err := templatesFS.ReadDir("templates")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "layout.html" || strings.HasPrefix(name, "partial_") {
			continue
		}
		t := template.New(name).Funcs(funcs)
		t = template.Must(t.ParseFS(templatesFS, "templates/layout.html", "templates/partial_*.html", "templates/"+name))
		pages[name] = t
	}
	return pages
}

// render executes a page into a buffer first, so a template error becomes a
// clean 500 instead of half a page. Pages default to Cache-Control:
// no-store; public pages set their own policy before calling render.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t, ok := s.pages[name]
	if !ok {
		panic("web: no template " + name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", data); err != nil {
		s.Logger.Error("web: render", "template", name, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

type errorPage struct {
	page
	Status  int
	Message string
}

// errorPage renders a plain error page with a status.
func (s *server) errorPage(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	s.render(w, r, status, "error.html", errorPage{page: page{Title: title}, Status: status, Message: message})
}

// notFound is the one 404 page: for a missing row, a row of another
// restaurant, and a bad order token alike.
// noRoute answers what no route of mux takes: 405 with Allow when the path
// is a page of other methods (a PUT to a menu page), 404 otherwise.
func (s *server) noRoute(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	if allow := httpserver.AllowedMethods(mux, r, "/"); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.errorPage(w, r, http.StatusMethodNotAllowed, "Not allowed here",
			"This page can't take that kind of request. Start again from the home page.")
		return
	}
	s.notFound(w, r)
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, http.StatusNotFound, "Page not found",
		"We couldn't find that page. Check the link, or start again from the home page.")
}

// fail renders err as a page: its kind picks the status; internal errors
// are logged and shown without detail.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	err = problem.Classify(err)
	switch ladle.ErrorKind(err) {
	case ladle.KindNotFound:
		s.notFound(w, r)
	case ladle.KindInternal:
		s.Logger.Error("web: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Something went wrong",
			"Something went wrong on our side. Please try again in a moment.")
	default:
		var e *ladle.Error
		errors.As(err, &e) // the kind is not internal, so err wraps one
		if ra := ladle.RetryAfter(err); ra > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ra))
		} else if st := problem.Status(err); st == http.StatusServiceUnavailable || st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		if ladle.ErrorKind(err) == ladle.KindUnavailable {
			s.Logger.Warn("web: unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		s.errorPage(w, r, problem.Status(err), http.StatusText(problem.Status(err)), sentence(e.Message)+".")
	}
}

func (s *server) imageURL(key string) string {
	if key == "" || s.ImageURL == nil {
		return ""
	}
	return s.ImageURL(key)
}

// sentence capitalises a domain message for display.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

var statusLabels = map[ladle.OrderStatus]string{
	ladle.StatusPendingPayment: "Confirming payment",
	ladle.StatusPaymentFailed:  "Payment failed",
	ladle.StatusPlaced:         "Placed",
	ladle.StatusAccepted:       "Accepted",
	ladle.StatusPreparing:      "Preparing",
	ladle.StatusReady:          "Ready for pickup",
	ladle.StatusCompleted:      "Picked up",
	ladle.StatusCancelled:      "Cancelled",
}

func statusLabel(s ladle.OrderStatus) string { return label(statusLabels, s) }

// label is what staff read for k (a status, a reason) from labels, or k
// itself when labels has nothing for it.
func label[K ~string](labels map[K]string, k K) string {
	if l, ok := labels[k]; ok {
		return l
	}
	return string(k)
}

// actionLabel is the staff button that moves an order to s.
func actionLabel(s ladle.OrderStatus) string {
	switch s {
	case ladle.StatusAccepted:
		return "Accept"
	case ladle.StatusPreparing:
		return "Start preparing"
	case ladle.StatusReady:
		return "Mark ready"
	case ladle.StatusCompleted:
		return "Mark picked up"
	case ladle.StatusCancelled:
		return "Cancel order"
	}
	return "Move to " + statusLabel(s)
}

// groupHint says what a modifier group asks of the guest.
func groupHint(g ladle.ModifierGroup) string {
	switch {
	case g.Min == 0 && g.Max == 0:
		return "optional"
	case g.Min == 0 && g.Max == 1:
		return "optional, choose 1"
	case g.Min == 0:
		return "optional, up to " + strconv.Itoa(g.Max)
	case g.Min == g.Max:
		return "required, choose " + strconv.Itoa(g.Min)
	case g.Max == 0:
		return "required, at least " + strconv.Itoa(g.Min)
	default:
		return "required, choose " + strconv.Itoa(g.Min) + "–" + strconv.Itoa(g.Max)
	}
}

// clockTime formats t in loc for people: "3:45 PM", with the day when it is
// not today.
func clockTime(t time.Time, loc *time.Location, now time.Time) string {
	lt := t.In(loc)
	ln := now.In(loc)
	if lt.YearDay() == ln.YearDay() && lt.Year() == ln.Year() {
		return lt.Format("3:04 PM")
	}
	if lt.Sub(ln) > 0 && lt.Sub(ln) < 48*time.Hour && lt.YearDay() == ln.AddDate(0, 0, 1).YearDay() {
		return "tomorrow " + lt.Format("3:04 PM")
	}
	return lt.Format("Mon Jan 2, 3:04 PM")
}

// fullTime is a date and time with its zone, for records (an email sent):
// "Tue, Dec 1, 2026 at 3:04 PM EST".
func fullTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Mon, Jan 2, 2006 at 3:04 PM MST")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
