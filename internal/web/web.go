// Package web is Ladle's server-rendered HTML: the guest storefront (menu,
// cart, checkout, order status) and the staff pages (login, order board).
//
// Pages are html/template files and plain JS/CSS, all embedded: there is no
// front-end build step. The checkout form posts to this package, which calls
// the ordering service directly (the same Idempotency-Key protocol as the
// JSON API), so a guest without JavaScript can still place an order once
// the cart is filled.
package web

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/limit"
	"github.com/ladle-dev/ladle/internal/live"
	"github.com/ladle-dev/ladle/internal/ordering"
)

// Deps are everything the web pages need. Store, Ordering and Auth are
// required; the rest have defaults.
type Deps struct {
	Store ladle.Store
	// Menus serves menu documents to the storefront (a cache in front of the
	// store); nil reads from Store. Checkout never prices from it.
	Menus    ladle.MenuReader
	Ordering *ordering.Service
	Auth     *auth.Manager
	Logger   *slog.Logger
	// ImageURL maps an item's image key to the URL the browser loads; nil
	// shows no images.
	ImageURL func(key string) string
	// Now is the clock (pickup slots, "today" on the staff board).
	Now ladle.Clock
	// TrustedOrigins may post to state-changing routes from another origin
	// (e.g. "https://admin.example.com"); normally empty.
	TrustedOrigins []string
	// MenuChanged is called after each menu edit commits (menucache's
	// Invalidate), so every process drops the old menu; nil when nothing
	// caches menus. (menu_editor.go)
	MenuChanged MenuChangedFunc
	// Images stores uploaded item photos (a blob.Store); nil turns image
	// upload off. (menu_editor_image.go)
	Images ImageStore
	// Live feeds the staff board and the guest's status page with
	// server-sent events (live.go); nil leaves them to their timed reloads.
	Live *live.Hub
	// Deliveries backs /admin/…/mailbox and /admin/…/dead-letters
	// (admin_mailbox.go); nil turns those pages off.
	Deliveries Deliveries
	// Limits bound what can pile up (internal/limit); nil fields admit
	// everything.
	Limits Limits
	// System backs the owners' System page (admin_system.go); nil turns it
	// off.
	System SystemBoard
	// Campaigns backs /admin/…/campaigns (admin_campaign.go); nil turns
	// those pages off. Store must implement ladle.CampaignStore too.
	Campaigns CampaignService
	// StripePublishableKey, when set, makes the checkout collect cards with
	// Stripe.js and finish 3-D Secure (static/stripe.js); the CSP then
	// allows js.stripe.com. "" loads nothing of Stripe's.
	StripePublishableKey string
}

// Limits are the web pages' shares of the server's limiters.
type Limits struct {
	// Orders bounds order placements in flight: the checkout POST shares it
	// with the JSON API.
	Orders *limit.Limiter
	// Staff bounds staff page requests in flight (not their live streams,
	// not uploads).
	Staff *limit.Limiter
	// Uploads bounds image uploads in flight.
	Uploads *limit.Limiter
	// Streams bounds the live streams open in this process; StreamsPerClient
	// how many one client address holds.
	Streams          *limit.Limiter
	StreamsPerClient *limit.PerClient
	// RequestTimeout bounds the database work of one page request (0:
	// none). Live streams and uploads are exempt: a stream lives on, and an
	// upload's body may take longer than that to arrive.
	RequestTimeout time.Duration
}

// server holds the parsed templates and the dependencies.
type server struct {
	Deps
	pages  map[string]*template.Template
	assets *assets
	// sessions holds the staff live streams per login session, so a logout
	// ends them (live.go).
	sessions *live.Sessions
}

// New returns the web handler. Mount it at "/" beside the JSON API
// ("/api/v1/"); it serves "/", "/r/…", "/orders/…", "/admin/…" and
// "/static/…". It panics if a required dependency is missing or an embedded
// template does not parse: both are programming errors caught by any test.
func New(d Deps) http.Handler {
	if d.Store == nil || d.Ordering == nil || d.Auth == nil {
		panic("web: Deps.Store, Deps.Ordering and Deps.Auth are required")
	}
	if d.Menus == nil {
		d.Menus = d.Store
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = ladle.Now
	}
	s := &server{Deps: d, assets: loadAssets(), sessions: live.NewSessions()}
	s.pages = s.parseTemplates()
	return s.routes()
}

// bounded runs h with the request's context bounded by Limits.RequestTimeout.
func (s *server) bounded(h http.Handler) http.Handler {
	if s.Limits.RequestTimeout <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.Limits.RequestTimeout)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// stream admits a live stream: one of Limits.Streams (503 at once when all
// are taken: no queue, a stream would hold its place for hours) and one of
// its client's Limits.StreamsPerClient (429).
func (s *server) stream(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		releaseClient, err := s.Limits.StreamsPerClient.Acquire(s.Auth.ClientIP(r)) // through --trusted-proxies
		if err != nil {
			limit.WriteShed(w, r, err)
			return
		}
		defer releaseClient()
		release, err := s.Limits.Streams.Acquire(r.Context())
		if err != nil {
			limit.WriteShed(w, r, err)
			return
		}
		defer release()
		h.ServeHTTP(w, r)
	})
}
