package web

import (
	"net/http"
	"time"

	"github.com/ladle-dev/ladle"
)

// boardPage is today's orders of one restaurant, in lanes by status.
type boardPage struct {
	page
	Restaurant *ladle.Restaurant
	Loc        *time.Location
	Now        time.Time
	Day        string
	Lanes      []boardLane
	Total      int
	// Error is a refused action, shown above the board; ErrorOrder is the
	// order it was about.
	Error      string
	ErrorOrder string
	// Updated is the order just changed (highlighted).
	Updated string
	// Pause is the "pause online ordering" switch (admin_hours.go); nil
	// for staff who may not use it.
	Pause *pauseView
}

type boardLane struct {
	ID     string
	Title  string
	Empty  string
	Orders []ladle.Order
}

// handleBoard shows today's orders (today in the restaurant's time zone).
func (s *server) handleBoard(w http.ResponseWriter, r *http.Request, st *staffView) {
	s.renderBoard(w, r, st, http.StatusOK, "", "")
}

// renderBoard renders the board, with an error message when an action was
// refused (status is then its 4xx).
func (s *server) renderBoard(w http.ResponseWriter, r *http.Request, st *staffView, status int, errMsg, errOrder string) {
	rest := st.Restaurant
	loc := rest.Location()
	now := s.Now()
	y, m, d := now.In(loc).Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, loc).UTC()
	orders, err := s.Store.Orders(r.Context(), rest.ID, ladle.OrderFilter{Since: midnight})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lanes := []boardLane{
		{ID: "new", Title: "New", Empty: "No new orders."},
		{ID: "kitchen", Title: "In the kitchen", Empty: "Nothing cooking."},
		{ID: "ready", Title: "Ready for pickup", Empty: "Nothing waiting."},
		{ID: "done", Title: "Done", Empty: "Nothing finished yet today."},
	}
	// Orders come newest first; active lanes read oldest first (the order
	// to work on), the done lane newest first.
	for i := len(orders) - 1; i >= 0; i-- {
		o := orders[i]
		switch o.Status {
		case ladle.StatusPlaced:
			lanes[0].Orders = append(lanes[0].Orders, o)
		case ladle.StatusAccepted, ladle.StatusPreparing:
			lanes[1].Orders = append(lanes[1].Orders, o)
		case ladle.StatusReady:
			lanes[2].Orders = append(lanes[2].Orders, o)
		}
	}
	total := 0
	for _, o := range orders {
		if !o.Status.OnBoard() {
			continue
		}
		total++
		if o.Status == ladle.StatusCompleted || o.Status == ladle.StatusCancelled {
			lanes[3].Orders = append(lanes[3].Orders, o)
		}
	}
	s.render(w, r, status, "admin_board.html", boardPage{
		page:       page{Title: "Orders · " + rest.Name, Staff: st},
		Restaurant: rest, Loc: loc, Now: now,
		Day:   now.In(loc).Format("Monday, January 2"),
		Lanes: lanes, Total: total,
		Error: errMsg, ErrorOrder: errOrder, Pause: s.boardPause(r, st),
		Updated: r.URL.Query().Get("updated"),
	})
}
