package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/ladle-dev/ladle"
)

// Deliveries is what staff see of the events' consumers: the emails Ladle
// sent or tried to send (with the dev mailbox, the emails themselves) and
// the dead letters, which they can replay. sqlstore.Store implements it.
// Every method is scoped to one restaurant.
type Deliveries interface {
	Emails(ctx context.Context, restaurantID, beforeID int64, limit int) ([]ladle.Email, error)
	Email(ctx context.Context, restaurantID, id int64) (*ladle.Email, error)
	EmailCounts(ctx context.Context, restaurantID int64) (map[string]int, error)
	DeadLetters(ctx context.Context, restaurantID int64, includeReplayed bool, limit int) ([]ladle.DeadLetter, error)
	DeadLetter(ctx context.Context, restaurantID, id int64) (*ladle.DeadLetter, error)
	ReplayDeadLetter(ctx context.Context, restaurantID, id int64, now time.Time) (*ladle.DeadLetter, error)
}

// deliveryRoutes are the mailbox and dead-letter pages (registered with the
// other restaurant-scoped routes in routes.go).
var deliveryRoutes = []staffRoute{
	{"GET /admin/r/{rid}/orders/live", func(s *server) staffHandler { return s.handleBoardLive }},
	{"GET /admin/r/{rid}/mailbox", func(s *server) staffHandler { return s.handleMailbox }},
	{"GET /admin/r/{rid}/mailbox/{id}", func(s *server) staffHandler { return s.handleMailboxMessage }},
	{"GET /admin/r/{rid}/mailbox/{id}/html", func(s *server) staffHandler { return s.handleMailboxHTML }},
	{"GET /admin/r/{rid}/dead-letters", func(s *server) staffHandler { return s.handleDeadLetters }},
	{"POST /admin/r/{rid}/dead-letters/{id}/replay", func(s *server) staffHandler { return s.handleReplay }},
}

const mailboxPageSize = 50

type mailboxPage struct {
	page
	Restaurant  *ladle.Restaurant
	Emails      []ladle.Email
	Counts      map[string]int
	NextBefore  int64 // older page's cursor, 0 when there is none
	DeadLetters int
	Loc         *time.Location
	Now         time.Time
}

// handleMailboxRedirect sends /admin/mailbox to the mailbox of the user's
// first restaurant (each restaurant's mailbox is its own).
func (s *server) handleMailboxRedirect(w http.ResponseWriter, r *http.Request, st *staffView) {
	if len(st.Memberships) == 0 {
		s.notFound(w, r)
		return
	}
	http.Redirect(w, r, "/admin/r/"+strconv.FormatInt(st.Memberships[0].RestaurantID, 10)+"/mailbox", http.StatusSeeOther)
}

// handleMailbox lists the restaurant's emails, newest first: the dev mailbox
// and the record of what went out (and what did not, and why).
func (s *server) handleMailbox(w http.ResponseWriter, r *http.Request, st *staffView) {
	if s.Deliveries == nil {
		s.notFound(w, r)
		return
	}
	ctx := r.Context()
	rid := st.Restaurant.ID
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	emails, err := s.Deliveries.Emails(ctx, rid, before, mailboxPageSize+1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := mailboxPage{page: page{Title: "Mailbox · " + st.Restaurant.Name, Staff: st}, Restaurant: st.Restaurant,
		Loc: st.Restaurant.Location(), Now: s.Now()}
	if len(emails) > mailboxPageSize {
		emails = emails[:mailboxPageSize]
		p.NextBefore = emails[len(emails)-1].ID
	}
	p.Emails = emails
	if p.Counts, err = s.Deliveries.EmailCounts(ctx, rid); err != nil {
		s.fail(w, r, err)
		return
	}
	dls, err := s.Deliveries.DeadLetters(ctx, rid, false, 500)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p.DeadLetters = len(dls)
	s.render(w, r, http.StatusOK, "admin_mailbox.html", p)
}

type mailMessagePage struct {
	page
	Restaurant *ladle.Restaurant
	Email      *ladle.Email
	Loc        *time.Location
	Now        time.Time
}

func (s *server) mailboxEmail(w http.ResponseWriter, r *http.Request, st *staffView) (*ladle.Email, bool) {
	if s.Deliveries == nil {
		s.notFound(w, r)
		return nil, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(w, r)
		return nil, false
	}
	e, err := s.Deliveries.Email(r.Context(), st.Restaurant.ID, id)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return e, true
}

// handleMailboxMessage shows one email: its headers, status, text part, and
// its HTML part in a sandboxed frame.
func (s *server) handleMailboxMessage(w http.ResponseWriter, r *http.Request, st *staffView) {
	e, ok := s.mailboxEmail(w, r, st)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "admin_mail_message.html", mailMessagePage{
		page:       page{Title: e.Subject + " · Mailbox", Staff: st},
		Restaurant: st.Restaurant, Email: e, Loc: st.Restaurant.Location(), Now: s.Now(),
	})
}

// handleMailboxHTML serves an email's HTML part for the frame on the message
// page. The email's HTML is our own template's output, but it is shown
// as an untrusted document anyway: sandboxed, no scripts, no network but
// images, and only inside our own pages.
func (s *server) handleMailboxHTML(w http.ResponseWriter, r *http.Request, st *staffView) {
	e, ok := s.mailboxEmail(w, r, st)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Replaces the site-wide policy: emails carry inline styles, and this
	// page is meant to be framed by the message page. The sandbox keeps the
	// origin (allow-same-origin) so the message page can size the frame to
	// the whole email; scripts, forms, popups and navigating the page
	// stay off, and default-src 'none' refuses scripts a second time.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-ancestors 'self'; sandbox allow-same-origin")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	_, _ = w.Write([]byte(e.HTML))
}

type deadLettersPage struct {
	page
	Restaurant *ladle.Restaurant
	Letters    []ladle.DeadLetter
	All        bool
	CanReplay  bool
	Replayed   string // id of the letter just replayed
	Error      string
	Loc        *time.Location
	Now        time.Time
}

// handleDeadLetters lists the events a consumer gave up on, with the reason
// and a replay button.
func (s *server) handleDeadLetters(w http.ResponseWriter, r *http.Request, st *staffView) {
	s.renderDeadLetters(w, r, st, http.StatusOK, "")
}

func (s *server) renderDeadLetters(w http.ResponseWriter, r *http.Request, st *staffView, status int, errMsg string) {
	if s.Deliveries == nil {
		s.notFound(w, r)
		return
	}
	all := r.URL.Query().Get("all") == "1"
	letters, err := s.Deliveries.DeadLetters(r.Context(), st.Restaurant.ID, all, 200)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, status, "admin_dead_letters.html", deadLettersPage{
		page:       page{Title: "Failed deliveries · " + st.Restaurant.Name, Staff: st},
		Restaurant: st.Restaurant, Letters: letters, All: all, CanReplay: st.Role.CanEditMenu(),
		Replayed: r.URL.Query().Get("replayed"), Error: errMsg, Loc: st.Restaurant.Location(), Now: s.Now(),
	})
}

// handleReplay sends a dead letter back to its consumer (owners and
// managers: a replay sends email). Replaying twice is refused.
func (s *server) handleReplay(w http.ResponseWriter, r *http.Request, st *staffView) {
	if s.Deliveries == nil {
		s.notFound(w, r)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(w, r)
		return
	}
	// Not this restaurant's letter: the same 404 as any, before the role
	// check, so the answer says nothing about other restaurants.
	if _, err := s.Deliveries.DeadLetter(r.Context(), st.Restaurant.ID, id); err != nil {
		s.fail(w, r, err)
		return
	}
	if !st.Role.CanEditMenu() {
		s.renderDeadLetters(w, r, st, http.StatusForbidden, "Only owners and managers can replay failed deliveries.")
		return
	}
	if _, err := s.Deliveries.ReplayDeadLetter(r.Context(), st.Restaurant.ID, id, s.Now()); err != nil {
		switch ladle.ErrorKind(err) {
		case ladle.KindConflict:
			s.renderDeadLetters(w, r, st, http.StatusConflict, "That delivery was replayed already.")
		default:
			s.fail(w, r, err)
		}
		return
	}
	http.Redirect(w, r, "/admin/r/"+strconv.FormatInt(st.Restaurant.ID, 10)+"/dead-letters?replayed="+strconv.FormatInt(id, 10), http.StatusSeeOther)
}
