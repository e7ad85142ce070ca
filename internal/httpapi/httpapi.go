// Package httpapi is Ladle's public JSON API under /api/v1/. Errors are RFC
// 9457 problem documents (internal/problem) with a stable code.
package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/ladle-dev/ladle"
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
}

// MaxBodyBytes bounds a request body. An order of MaxLines lines with notes
// fits in well under this.
const MaxBodyBytes = 64 << 10

// Register adds the API's routes to mux. Every route is listed here.
func Register(mux *http.ServeMux, d Deps) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	mux.Handle("GET /api/v1/restaurants/{slug}/menu", handleMenu(d))
	mux.Handle("POST /api/v1/restaurants/{slug}/orders", handleOrderCreate(d))
	mux.Handle("GET /api/v1/orders/{id}", handleOrderGet(d))
	mux.Handle("/api/", handleNotFound(d)) // JSON 404s for the rest of the API space
}

func handleNotFound(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, d, ladle.NotFound("route"))
	})
}
