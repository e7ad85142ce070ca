package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ladle-dev/ladle"
)

// staffView is who is signed in and where: the layout's staff header reads
// it, and restaurant-scoped handlers get it with Restaurant and Role set.
type staffView struct {
	User        *ladle.User
	Memberships []ladle.Membership
	Restaurant  *ladle.Restaurant // nil on the restaurant picker
	Role        ladle.Role
}

// staffHandler is a handler that runs for a signed-in staff member.
type staffHandler func(w http.ResponseWriter, r *http.Request, st *staffView)

// requireUser runs h for a signed-in user, with their memberships loaded;
// anyone else is sent to the login page (GET requests come back afterwards).
func (s *server) requireUser(h staffHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, ok := s.staff(w, r)
		if !ok {
			return
		}
		h(w, r, st)
	})
}

// requireMember runs h only if the signed-in user is a member of the
// restaurant {rid}, checked against the store on every request. A restaurant
// the user does not belong to is a 404, exactly like one that does not
// exist: staff of one restaurant cannot even learn that another's id is
// taken.
func (s *server) requireMember(h staffHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, ok := s.staff(w, r)
		if !ok {
			return
		}
		rid, err := strconv.ParseInt(r.PathValue("rid"), 10, 64)
		if err != nil || rid <= 0 {
			s.notFound(w, r)
			return
		}
		m, err := s.Store.Membership(r.Context(), st.User.ID, rid)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		rest, err := s.Store.RestaurantByID(r.Context(), m.RestaurantID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		st.Restaurant, st.Role = rest, m.Role
		h(w, r, st)
	})
}

// staff loads the signed-in user and their memberships, or redirects to the
// login page and returns false.
func (s *server) staff(w http.ResponseWriter, r *http.Request) (*staffView, bool) {
	u, err := s.Auth.User(r)
	if err != nil {
		if ladle.ErrorKind(err) != ladle.KindUnauthorized {
			s.fail(w, r, err)
			return nil, false
		}
		target := "/admin/login"
		if r.Method == http.MethodGet {
			target += "?next=" + url.QueryEscape(r.URL.RequestURI())
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return nil, false
	}
	ms, err := s.Store.Memberships(r.Context(), u.ID)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return &staffView{User: u, Memberships: ms}, true
}

// safeNext returns next if it is a local staff path, else "/admin/": the
// login form must not become an open redirect.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/admin/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/admin/"
	}
	return next
}

// boardURL is the order board of a restaurant.
func boardURL(rid int64) string { return "/admin/r/" + strconv.FormatInt(rid, 10) + "/orders" }
