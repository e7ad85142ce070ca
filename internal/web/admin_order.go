package web

import (
	"net/http"
	"time"

	"github.com/ladle-dev/ladle"
)

// orderRoutes are one order's staff pages: its detail page and its
// printable kitchen ticket. Every staff role may see them.
var orderRoutes = []staffRoute{
	{"GET /admin/r/{rid}/orders/{id}", func(s *server) staffHandler { return s.handleOrderDetail }},
	{"GET /admin/r/{rid}/orders/{id}/ticket", func(s *server) staffHandler { return s.handleKitchenTicket }},
}

func init() { staffRoutes = append(staffRoutes, orderRoutes...) }

// orderDetailPage is everything staff know about one order.
type orderDetailPage struct {
	page
	Restaurant *ladle.Restaurant
	Loc        *time.Location
	Now        time.Time
	Order      *ladle.Order
	Payments   []ladle.Payment
	Emails     []ladle.Email
	History    []ladle.StatusEntry
	// Refunds is what the "order_refunds" partial (partial_order_refunds.html)
	// shows in the payments section; loadOrderRefunds fills it.
	Refunds any
}

// loadOrderRefunds, when set (by the refunds pages, in their own file's
// init), loads what the "order_refunds" partial shows for the order. The
// order is already the member's restaurant's.
var loadOrderRefunds func(s *server, r *http.Request, st *staffView, o *ladle.Order) (any, error)

// handleOrderDetail shows one order of the member's restaurant: lines,
// totals, payments (and refunds), the emails sent about it and its status
// history with who made each change. Another restaurant's order is a 404.
func (s *server) handleOrderDetail(w http.ResponseWriter, r *http.Request, st *staffView) {
	s.renderOrderDetail(w, r, st, http.StatusOK)
}

// renderOrderDetail renders the order page with status (a refused form on
// it re-renders it with its 4xx).
func (s *server) renderOrderDetail(w http.ResponseWriter, r *http.Request, st *staffView, status int) {
	ctx, rid := r.Context(), st.Restaurant.ID
	o, err := s.Store.RestaurantOrder(ctx, rid, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := orderDetailPage{page: page{Title: orderTitle(o) + " · " + st.Restaurant.Name, Staff: st},
		Restaurant: st.Restaurant, Loc: st.Restaurant.Location(), Now: s.Now(), Order: o}
	if p.Payments, err = s.Store.Payments(ctx, o.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.Emails, err = s.Store.OrderEmails(ctx, rid, o.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if p.History, err = s.Store.OrderHistory(ctx, rid, o.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if loadOrderRefunds != nil {
		if p.Refunds, err = loadOrderRefunds(s, r, st, o); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.render(w, r, status, "admin_order.html", p)
}

// handleKitchenTicket is the order as the kitchen prints it: big number,
// pickup time, lines with their modifiers and notes, nothing about money.
func (s *server) handleKitchenTicket(w http.ResponseWriter, r *http.Request, st *staffView) {
	o, err := s.Store.RestaurantOrder(r.Context(), st.Restaurant.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "admin_ticket.html", orderDetailPage{
		page:       page{Title: "Ticket " + orderTitle(o), Staff: st},
		Restaurant: st.Restaurant, Loc: st.Restaurant.Location(), Now: s.Now(), Order: o})
}

// orderTitle names an order for people: "#12", or "Unplaced order" for one
// that never got a number (its card payment is pending or failed).
func orderTitle(o *ladle.Order) string {
	if o.Number == 0 {
		return "Unplaced order"
	}
	return "#" + itoa(o.Number)
}

// orderURL is an order's staff detail page.
func orderURL(rid int64, id string) string { return "/admin/r/" + itoa(rid) + "/orders/" + id }
