package httpapi

import (
	"net/http"

	"github.com/ladle-dev/ladle"
)

// handleQuote is POST /api/v1/restaurants/{slug}/quote: the order body
// (payment and contact optional, no Idempotency-Key) priced exactly as the
// order would be (ordering.Service.Quote), or the problem the order would
// get. Nothing is written, and nothing is reserved: a coupon's last use or
// a slot's last place can still go to someone else before the order.
func handleQuote(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req ladle.OrderRequest
		if err := decode(w, r, &req); err != nil {
			writeError(w, r, d, err)
			return
		}
		ctx, cancel := d.deadline(r.Context())
		defer cancel()
		rest, err := d.Store.RestaurantBySlug(ctx, r.PathValue("slug"))
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		q, err := d.Ordering.Quote(ctx, rest, &req)
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, q)
	})
}
