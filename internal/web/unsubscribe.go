package web

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/campaign"
)

// UnsubscribeStore is what the unsubscribe page needs.
type UnsubscribeStore interface {
	Suppress(ctx context.Context, restaurantID int64, email string, why ladle.SuppressionReason, now time.Time) error
	RestaurantByID(ctx context.Context, id int64) (*ladle.Restaurant, error)
}

// Unsubscribe serves /unsubscribe/{token}, the List-Unsubscribe link of
// every campaign email:
//
//   - POST unsubscribes at once, without a login: the one-click POST of
//     RFC 8058 that mail clients send (body List-Unsubscribe=One-Click),
//     and the button of the page below. The signed token is the
//     authority, so it is not behind the cross-origin check (a mail
//     client's POST has no Origin of ours).
//   - GET only shows a page with that button: mail scanners and link
//     previews fetch links, and must not unsubscribe anyone.
//
// A token that does not verify is a 404 page, the same for both.
func Unsubscribe(store UnsubscribeStore, signer *campaign.Signer, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenPageHeaders(w)
		if !tokenMethod(w, r) {
			return
		}
		if "/unsubscribe/"+r.PathValue("token") == campaign.TestUnsubscribePath {
			// A test send's link: nobody to unsubscribe.
			_ = unsubscribePage.Execute(w, unsubView{Title: "Test email", Message: "This is the unsubscribe link of a " +
				"test email. In the campaign, each recipient's link unsubscribes them; this one unsubscribed nobody."})
			return
		}
		rid, email, err := signer.Parse(r.PathValue("token"))
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			_ = unsubscribePage.Execute(w, unsubView{Title: "Link not valid", Message: "This unsubscribe link is not valid. Use the link from the email exactly as it is."})
			return
		}
		tokenAction(w, r, log, store, rid, unsubView{Title: "Unsubscribe?", Email: email},
			func(ctx context.Context, v unsubView) (int, unsubView, error) {
				if err := store.Suppress(ctx, rid, email, ladle.SuppressUnsubscribed, time.Now()); err != nil {
					return 0, v, err
				}
				v.Title, v.Done = "Unsubscribed", true
				return http.StatusOK, v, nil
			})
	})
}

// tokenAction serves a page behind a verified token of the restaurant's:
// GET (or HEAD) shows v with its button and changes nothing; POST runs
// act and shows the page it returns (a failure is a 503 with
// Retry-After). The headers are tokenPageHeaders'.
func tokenAction(w http.ResponseWriter, r *http.Request, log *slog.Logger, store interface {
	RestaurantByID(ctx context.Context, id int64) (*ladle.Restaurant, error)
}, rid int64, v unsubView, act func(ctx context.Context, v unsubView) (int, unsubView, error)) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	v.Restaurant = restaurantName(ctx, store, rid)
	status := http.StatusOK
	// The method is GET, HEAD or POST: the handler checked it first
	// (tokenMethod).
	switch r.Method {
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		var err error
		if status, v, err = act(ctx, v); err != nil {
			log.Warn("token page action failed", "restaurant", rid, "confirm", v.Confirm, "err", err)
			w.Header().Set("Retry-After", "5")
			status, v = http.StatusServiceUnavailable, unsubView{Title: "Try again", Confirm: v.Confirm,
				Message: "We could not record this just now. Please try again in a moment."}
		}
	default:
		v.Form = true
	}
	w.WriteHeader(status)
	_ = unsubscribePage.Execute(w, v)
}

// tokenMethod answers a method the token pages do not take with a 405
// page and Allow, and says whether r's method is one they take. It goes
// before the token is looked at: what a wrong method gets does not depend
// on the link.
func tokenMethod(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
		return true
	}
	w.Header().Set("Allow", "GET, HEAD, POST")
	w.WriteHeader(http.StatusMethodNotAllowed)
	_ = unsubscribePage.Execute(w, unsubView{Title: "Not allowed here",
		Message: "This link takes GET (to show the page) and POST (its button) only."})
	return false
}

// tokenPageHeaders sets the headers of the pages behind an emailed,
// signed link (unsubscribe, confirm): no referrer, no caching, no script.
func tokenPageHeaders(w http.ResponseWriter) http.Header {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	return h
}

// restaurantName is the restaurant's name for a token page.
func restaurantName(ctx context.Context, store interface {
	RestaurantByID(ctx context.Context, id int64) (*ladle.Restaurant, error)
}, id int64) string {
	if rest, err := store.RestaurantByID(ctx, id); err == nil {
		return rest.Name
	}
	return "this restaurant"
}

type unsubView struct {
	Title, Message, Restaurant, Email string
	Form, Done                        bool
	Confirm                           bool // the double opt-in page (confirm.go), not unsubscribe
}

var unsubscribePage = template.Must(template.New("unsubscribe").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}button{font-size:1rem;padding:.5rem 1rem}</style>
</head><body>
<h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .Confirm}}
{{if .Form}}<p>Get news and offers from <strong>{{.Restaurant}}</strong> by email at <strong>{{.Email}}</strong>?</p>
<form method="post"><button type="submit">Confirm</button></form>{{end}}
{{if .Done}}<p><strong>{{.Email}}</strong> will get news and offers from <strong>{{.Restaurant}}</strong>. Every one has a link to unsubscribe.</p>{{end}}
{{else}}
{{if .Form}}<p>Stop marketing emails from <strong>{{.Restaurant}}</strong> to <strong>{{.Email}}</strong>?</p>
<form method="post"><button type="submit" name="List-Unsubscribe" value="One-Click">Unsubscribe</button></form>{{end}}
{{if .Done}}<p><strong>{{.Email}}</strong> will get no more marketing emails from <strong>{{.Restaurant}}</strong>. Order receipts still arrive.</p>{{end}}
{{end}}
</body></html>
`))
