package web

import (
	"net/http"

	"github.com/ladle-dev/ladle/internal/live"
)

// Live updates over server-sent events (internal/live): the staff board and
// the guest's status page each hold an EventSource; static/live.js reloads
// what changed. Without Deps.Live both answer 404 and the pages fall back to
// their periodic reload.

// handleBoardLive streams every change of the restaurant's orders to the
// staff board: new orders and status changes made on any screen, by any
// process.
func (s *server) handleBoardLive(w http.ResponseWriter, r *http.Request, st *staffView) {
	if s.Live == nil {
		s.notFound(w, r)
		return
	}
	sub := s.Live.Subscribe(st.Restaurant.ID, "")
	live.ServeSSE(w, r, s.Live, sub, func(u live.Update) any { return u })
}

// handleOrderLive streams one order's status to the guest holding its access
// token (the same check, and the same 404, as the status page).
func (s *server) handleOrderLive(w http.ResponseWriter, r *http.Request) {
	if s.Live == nil {
		s.notFound(w, r)
		return
	}
	o, err := s.Ordering.GuestOrder(r.Context(), r.PathValue("id"), r.URL.Query().Get("token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sub := s.Live.Subscribe(o.RestaurantID, o.ID)
	live.ServeSSE(w, r, s.Live, sub, func(u live.Update) any { return u.Guest() })
}
