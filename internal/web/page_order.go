package web

import (
	"net/http"
	"time"

	"github.com/ladle-dev/ladle"
)

// orderPage is the guest's order status page.
type orderPage struct {
	page
	Restaurant *ladle.Restaurant
	Order      *ladle.Order
	Loc        *time.Location
	Now        time.Time
	// FromCheckout is true right after placing: the page's JS then empties
	// the cart and forgets the checkout attempt.
	FromCheckout bool
	// RefundPending and RefundFailed are the card refunds on their way and
	// refused so far (admin_refund.go: guestRefunds).
	RefundPending, RefundFailed ladle.Money
}

// handleOrder shows an order to the guest holding its access token. A wrong
// token is the same 404 as an unknown order.
func (s *server) handleOrder(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o, err := s.Ordering.GuestOrder(r.Context(), r.PathValue("id"), q.Get("token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rest, err := s.Store.RestaurantByID(r.Context(), o.RestaurantID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	refresh := 0
	switch o.Status {
	case ladle.StatusCompleted, ladle.StatusCancelled, ladle.StatusPaymentFailed:
	default:
		refresh = 30 // keep "placed → ready" current without JS
	}
	pending, failed, err := s.guestRefunds(r, o)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "order.html", orderPage{
		RefundPending: pending, RefundFailed: failed,
		page:         page{Title: guestOrderTitle(o) + " · " + rest.Name, Refresh: refresh},
		Restaurant:   rest,
		Order:        o,
		Loc:          rest.Location(),
		Now:          s.Now(),
		FromCheckout: q.Get("placed") == "1",
	})
}

// guestOrderTitle names an order for the guest: its number once it has one
// (a card order gets it at capture; one still confirming, or declined, has
// none).
func guestOrderTitle(o *ladle.Order) string {
	if o.Number == 0 {
		return "Your order"
	}
	return "Order #" + itoa(o.Number)
}

// step is one stage of the progress bar on the status page.
type step struct{ Label, State string } // State: done, current, todo

var stepOrder = []ladle.OrderStatus{ladle.StatusPlaced, ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady, ladle.StatusCompleted}

// Steps is the order's progress from placed to picked up.
func (p orderPage) Steps() []step {
	cur := -1
	for i, st := range stepOrder {
		if st == p.Order.Status {
			cur = i
		}
	}
	out := make([]step, len(stepOrder))
	for i, st := range stepOrder {
		state := "todo"
		switch {
		case i < cur:
			state = "done"
		case i == cur:
			state = "current"
		}
		out[i] = step{Label: statusLabel(st), State: state}
	}
	return out
}
