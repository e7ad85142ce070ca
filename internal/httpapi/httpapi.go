// Package httpapi is Ladle's public JSON API under /api/v1/. Errors are RFC
// 9457 problem documents (internal/problem) with a stable code.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/httpserver"
	"github.com/ladle-dev/ladle/internal/limit"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/ordering"
)

// Deps are the API's dependencies, all required but Logger.
type Deps struct {
	Store ladle.Store
	// Menus serves menu documents, pre-encoded with their ETag and image
	// URLs (internal/menucache).
	Menus    *menucache.Cache
	Ordering *ordering.Service
	Logger   *slog.Logger

	// OrderLimit bounds order placements in flight (shared with the web
	// checkout); MenuLimit the menu reads. nil admits everything.
	OrderLimit *limit.Limiter
	MenuLimit  *limit.Limiter
	// RequestTimeout bounds the database work of one request (0: none). An
	// order's placement after its key is claimed is bounded by the ordering
	// service's own timeout instead.
	RequestTimeout time.Duration
	// StripeWebhookSecret verifies POST /webhooks/stripe ("": the route
	// answers 404).
	StripeWebhookSecret string
}

// deadline returns ctx bounded by the request timeout.
func (d Deps) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if d.RequestTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d.RequestTimeout)
}

// MaxBodyBytes bounds a request body. An order of MaxLines lines with notes
// fits in well under this.
const MaxBodyBytes = 64 << 10

// Register adds the API's routes to mux. Every route is listed here.
func Register(mux *http.ServeMux, d Deps) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	mux.Handle("GET /api/v1/restaurants/{slug}/menu", d.MenuLimit.Wrap(handleMenu(d)))
	mux.Handle("POST /api/v1/restaurants/{slug}/orders", handleOrderCreate(d))
	mux.Handle("POST /api/v1/restaurants/{slug}/quote", d.MenuLimit.Wrap(handleQuote(d)))
	mux.Handle("GET /api/v1/restaurants/{slug}/pickup-slots", d.MenuLimit.Wrap(handlePickupSlots(d)))
	mux.Handle("GET /api/v1/orders/{id}", handleOrderGet(d))
	mux.Handle("POST /api/v1/orders/{id}/payment/confirm", handlePaymentConfirm(d))
	mux.Handle("POST /webhooks/stripe", handleStripeWebhook(d))
	mux.Handle(apiSpace, handleNotFound(d, mux)) // JSON 404s and 405s for the rest of the API space
}

// apiSpace is the pattern of the API's catch-all.
const apiSpace = "/api/"

// handleNotFound answers what no API route takes: 405 with Allow when the
// path is a route of other methods (mux's routes are registered by now,
// including the ones cmd/ladle adds after Register), 404 otherwise. The
// catch-all is what makes this needed: it matches every method, so the
// mux never answers 405 by itself.
func handleNotFound(d Deps, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allow := httpserver.AllowedMethods(mux, r, apiSpace, "/"); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, r, d, ladle.Errorf(ladle.KindMethodNotAllowed, ladle.CodeMethodNotAllowed,
				"%s is not allowed on this route; it takes %s", r.Method, strings.Join(allow, ", ")))
			return
		}
		writeError(w, r, d, ladle.NotFound("route"))
	})
}
