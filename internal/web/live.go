package web

import (
	"net/http"

	"github.com/ladle-dev/ladle/internal/live"
)

// Live updates over server-sent events (internal/live): the staff board and
// the guest's status page each hold an EventSource; static/live.js reloads
// what changed. Without Deps.Live the streams say "off" once and the pages
// keep to their periodic reload.

// handleBoardLive streams every change of the restaurant's orders to the
// staff board: new orders and status changes made on any screen, by any
// process.
func (s *server) handleBoardLive(w http.ResponseWriter, r *http.Request, st *staffView) {
	if s.Live == nil {
		liveOff(w)
		return
	}
	sub := s.Live.Subscribe(st.Restaurant.ID, "")
	live.ServeSSE(w, r, s.Live, sub, func(u live.Update) any { return u })
}

// handleOrderLive streams one order's status to the guest holding its access
// token (the same check, and the same 404, as the status page).
func (s *server) handleOrderLive(w http.ResponseWriter, r *http.Request) {
	o, err := s.Ordering.GuestOrder(r.Context(), r.PathValue("id"), r.URL.Query().Get("token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Live == nil {
		liveOff(w)
		return
	}
	sub := s.Live.Subscribe(o.RestaurantID, o.ID)
	live.ServeSSE(w, r, s.Live, sub, func(u live.Update) any { return u.Guest() })
}

// liveOff answers a stream request when live updates are not configured: one
// "off" event, which makes live.js close the stream, and a day's retry delay
// for any client that does not understand it.
func liveOff(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("retry: 86400000\nevent: off\ndata: {}\n\n"))
}
