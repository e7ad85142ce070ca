package httpapi

import (
	"net/http"
	"strings"

	"github.com/ladle-dev/ladle"
)

// handleOrderCreate is POST /api/v1/restaurants/{slug}/orders.
func handleOrderCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, err := d.Store.RestaurantBySlug(r.Context(), r.PathValue("slug"))
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		// The key is checked before the body so that a client that forgot it
		// learns that first, whatever else is wrong.
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			writeError(w, r, d, ladle.Errorf(ladle.KindInvalid, ladle.CodeIdempotencyKeyMissing,
				"an Idempotency-Key header is required to place an order"))
			return
		}
		var req ladle.OrderRequest
		if err := decode(w, r, &req); err != nil {
			writeError(w, r, d, err)
			return
		}
		res, err := d.Ordering.Place(r.Context(), rest, key, &req)
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		h := w.Header()
		if res.Replayed {
			h.Set("Idempotent-Replayed", "true")
		}
		if res.Status == http.StatusCreated {
			h.Set("Content-Type", "application/json")
			h.Set("Location", "/api/v1/orders/"+res.Order.ID)
		} else {
			h.Set("Content-Type", "application/problem+json")
		}
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(res.Status)
		_, _ = w.Write(res.Body)
	})
}

// handleOrderGet is GET /api/v1/orders/{id}: the guest's view, with the
// access token as a bearer token or ?token=. Any failure is a 404.
func handleOrderGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("token")
		if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
			token = strings.TrimPrefix(auth, "Bearer ")
		}
		o, err := d.Ordering.GuestOrder(r.Context(), r.PathValue("id"), token)
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		// Private: the order carries the guest's contact details.
		w.Header().Set("Cache-Control", "private, no-store")
		writeJSON(w, http.StatusOK, o)
	})
}
