package web

import (
	"net/http"
	"strings"
)

// routes maps the whole surface of the web UI. Every state-changing route is
// behind cross-origin protection (the whole mux is wrapped: it only ever
// checks unsafe methods), and every staff route scoped to a restaurant goes
// through requireMember.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()

	// Guest storefront.
	// Page requests that read the database run under a deadline; the
	// checkout sets its own after reading the form, and live streams are
	// admitted by s.stream (web.go).
	mux.Handle("GET /{$}", s.bounded(http.HandlerFunc(s.handleIndex)))
	mux.Handle("GET /r/{slug}", s.bounded(http.HandlerFunc(s.handleMenu)))
	mux.Handle("GET /r/{slug}/checkout", s.bounded(http.HandlerFunc(s.handleCheckout)))
	mux.HandleFunc("POST /r/{slug}/checkout", s.handleCheckoutPost)
	mux.Handle("GET /orders/{id}", s.bounded(http.HandlerFunc(s.handleOrder)))
	mux.Handle("GET /orders/{id}/live", s.stream(http.HandlerFunc(s.handleOrderLive))) // live.go
	mux.HandleFunc("GET /static/{file}", s.assets.serve)

	// Staff.
	mux.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	})
	mux.Handle("GET /admin/login", s.bounded(http.HandlerFunc(s.handleLogin)))
	mux.Handle("POST /admin/login", s.bounded(http.HandlerFunc(s.handleLoginPost)))
	mux.Handle("POST /admin/logout", s.bounded(http.HandlerFunc(s.handleLogout)))
	mux.Handle("GET /admin/{$}", s.staffPage(s.requireUser(s.handleAdminHome)))
	mux.Handle("GET /admin/mailbox", s.staffPage(s.requireUser(s.handleMailboxRedirect))) // admin_mailbox.go
	for _, rt := range staffRoutes {
		h := s.requireMember(rt.Handler(s))
		switch {
		case strings.HasSuffix(rt.Pattern, "/live"): // a live stream: no deadline, no staff slot held for hours
			h = s.stream(h)
		case strings.HasSuffix(rt.Pattern, "/image"): // an upload: bounded on its own, no deadline while the body arrives
			h = s.Limits.Uploads.Wrap(h)
		case strings.HasSuffix(rt.Pattern, ".csv"): // an export streams for longer than a page: its own deadline (admin_history.go)
			h = s.Limits.Staff.Wrap(h)
		default:
			h = s.staffPage(h)
		}
		mux.Handle(rt.Pattern, h)
	}

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { s.noRoute(mux, w, r) })

	csrf, err := crossOrigin(s)
	if err != nil {
		panic("web: " + err.Error())
	}
	return securityHeaders(csrf.Handler(mux), s.StripePublishableKey != "")
}

// staffPage admits a staff page request under the staff limiter and the
// request deadline.
func (s *server) staffPage(h http.Handler) http.Handler {
	return s.Limits.Staff.Wrap(s.bounded(h))
}

// staffRoute is a staff route scoped to one restaurant ({rid} in the
// pattern). The handler runs only after requireMember has found the signed-in
// user's membership of that restaurant; the restaurant it gets is the one of
// the membership, never one named by the client alone.
type staffRoute struct {
	Pattern string
	Handler func(*server) staffHandler
}

// staffRoutes lists every restaurant-scoped staff route. The tenant
// isolation test walks this list, so a route added here is covered.
var staffRoutes = append([]staffRoute{
	{"GET /admin/r/{rid}/{$}", func(s *server) staffHandler { return s.handleRestaurantHome }},
	{"GET /admin/r/{rid}/orders", func(s *server) staffHandler { return s.handleBoard }},
	{"POST /admin/r/{rid}/orders/{id}/status", func(s *server) staffHandler { return s.handleStatusPost }},
}, append(menuEditorRoutes, append(deliveryRoutes, append(systemRoutes, paymentRoutes...)...)...)...) // menu_editor.go, admin_mailbox.go, admin_system.go

// securityHeaders sets the headers every page carries. The CSP allows only
// our own scripts and styles (no inline script: JSON data blocks are not
// executed), images from anywhere (item photos may sit on a CDN), and no
// framing. Referrer-Policy keeps the order status token, which is in the
// URL, from leaking to other sites.
func securityHeaders(next http.Handler, stripeJS bool) http.Handler {
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; img-src * data:; " +
		"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
	if stripeJS {
		// Stripe.js and the frames it opens (card field, 3-D Secure), only
		// when a publishable key is configured.
		csp = strings.Replace(csp, "script-src 'self'", "script-src 'self' https://js.stripe.com", 1) +
			"; frame-src https://js.stripe.com https://hooks.stripe.com; connect-src 'self' https://api.stripe.com"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}
