package web

import (
	"net/http"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/httpcache"
)

type indexPage struct {
	page
	Restaurants []ladle.Restaurant
}

// handleIndex lists the restaurants.
func (s *server) handleIndex(w http.ResponseWriter, r *http.Request) {
	rs, err := s.Store.Restaurants(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", string(httpcache.Public(10*time.Second, time.Minute)))
	s.render(w, r, http.StatusOK, "index.html", indexPage{page: page{Title: "Order ahead"}, Restaurants: rs})
}
