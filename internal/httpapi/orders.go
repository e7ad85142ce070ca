package httpapi

import (
	"net/http"
	"strings"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/limit"
	"github.com/ladle-dev/ladle/internal/ordering"
)

// handleOrderCreate is POST /api/v1/restaurants/{slug}/orders.
func handleOrderCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Everything that needs no database comes first: the key, then the
		// whole body, read and decoded before any database work, so a slow
		// database can never make the server's read timeout cut a valid
		// body short (that would be a 400 telling the client not to retry).
		// The key is checked before the body so that a client that forgot it
		// learns that first, whatever else is wrong.
		// Go's server answers control characters in a header itself (plain
		// text 400, before any handler); everything else that is not
		// printable ASCII is refused here.
		key := r.Header.Get("Idempotency-Key")
		if err := ladle.CheckIdempotencyKey(key); err != nil {
			writeError(w, r, d, err)
			return
		}
		// Under overload most requests are shed: shed them before the body
		// is decoded, when the queue is already full.
		if err := d.OrderLimit.ShedIfFull(); err != nil {
			limit.WriteShed(w, r, err)
			return
		}
		var req ladle.OrderRequest
		if err := decode(w, r, &req); err != nil {
			writeError(w, r, d, err)
			return
		}
		// Then a slot (or a 503 with Retry-After), and a deadline for the
		// database work.
		release, err := d.OrderLimit.Acquire(r.Context())
		if err != nil {
			limit.WriteShed(w, r, err)
			return
		}
		defer release()
		ctx, cancel := d.deadline(r.Context())
		defer cancel()
		rest, err := d.Store.RestaurantBySlug(ctx, r.PathValue("slug"))
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		res, err := d.Ordering.Place(ctx, rest, key, &req)
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		writeResult(w, res)
	})
}

// writeResult writes an order placement's outcome: 201 (placed), 202 (the
// card needs the guest's action) or a 402 problem (declined).
func writeResult(w http.ResponseWriter, res *ordering.Result) {
	h := w.Header()
	if res.Replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	if res.Order != nil {
		h.Set("Content-Type", "application/json")
		h.Set("Location", "/api/v1/orders/"+res.Order.ID)
	} else {
		h.Set("Content-Type", "application/problem+json")
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(res.Status)
	_, _ = w.Write(res.Body)
}

// handlePaymentConfirm is POST /api/v1/orders/{id}/payment/confirm, with
// the order's access token (?token= or bearer): the guest's browser is
// back from 3-D Secure. Ladle asks the provider and answers like the
// order POST: 201 placed, 402 declined, 202 still to do, 503 with
// Retry-After (payment_pending) when the provider cannot be asked. The
// webhook may have placed the order first; the answer is then 201 all the
// same, and the order was placed once.
func handlePaymentConfirm(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := d.deadline(r.Context())
		defer cancel()
		o, err := d.Ordering.GuestOrder(ctx, r.PathValue("id"), guestToken(r))
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		res, err := d.Ordering.ResolvePayment(ctx, o.ID, "")
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		writeResult(w, res)
	})
}

// guestToken is the order access token of a guest request: a bearer token
// or ?token=.
func guestToken(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); strings.HasPrefix(auth, "Bearer ") {
		return strings.TrimPrefix(auth, "Bearer ")
	}
	return r.URL.Query().Get("token")
}

// handleOrderGet is GET /api/v1/orders/{id}: the guest's view, with the
// access token as a bearer token or ?token=. Any failure is a 404.
func handleOrderGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := d.deadline(r.Context())
		defer cancel()
		o, err := d.Ordering.GuestOrder(ctx, r.PathValue("id"), guestToken(r))
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		// Private: the order carries the guest's contact details.
		w.Header().Set("Cache-Control", "private, no-store")
		writeJSON(w, http.StatusOK, o)
	})
}
