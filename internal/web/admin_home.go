package web

import (
	"net/http"
)

type adminHomePage struct {
	page
}

// handleAdminHome picks a restaurant: straight to its board when the user
// has one, a list when several, an explanation when none.
func (s *server) handleAdminHome(w http.ResponseWriter, r *http.Request, st *staffView) {
	if len(st.Memberships) == 1 {
		http.Redirect(w, r, boardURL(st.Memberships[0].RestaurantID), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "admin_home.html", adminHomePage{page: page{Title: "Your restaurants", Staff: st}})
}

// handleRestaurantHome is the restaurant's staff landing page: the board.
func (s *server) handleRestaurantHome(w http.ResponseWriter, r *http.Request, st *staffView) {
	http.Redirect(w, r, boardURL(st.Restaurant.ID), http.StatusSeeOther)
}
