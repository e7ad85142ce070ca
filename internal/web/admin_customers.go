package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

// The customers page: the restaurant's customers and each one's marketing
// consent, for the staff who may see campaigns (owners and managers).
func init() {
	staffRoutes = append(staffRoutes,
		staffRoute{"GET /admin/r/{rid}/customers", func(s *server) staffHandler { return s.handleCustomers }})
}

// customersPageSize is how many customers one page lists.
const customersPageSize = 50

type customersPage struct {
	page
	Restaurant *ladle.Restaurant
	Q          string
	Error      string
	BadSearch  bool // Error is about the search box
	Customers  []customerRow
	// Next is the next page's URL, "" on the last; First is the first
	// page's, "" on it.
	Next, First string
}

// customerRow is one customer as the page shows them.
type customerRow struct {
	ID          int64
	Email, Name string
	Consent     string // "Opted in since …", "Pending confirmation since …", "Not opted in"
	OptedIn     bool
	Suppressed  string // why campaigns never mail them, or ""
}

var suppressionLabels = map[ladle.SuppressionReason]string{
	ladle.SuppressUnsubscribed: "Unsubscribed",
	ladle.SuppressHardBounce:   "Hard bounce",
	ladle.SuppressComplaint:    "Complaint",
}

func suppressionLabel(why ladle.SuppressionReason) string { return label(suppressionLabels, why) }

// consentText says a customer's consent as recorded, dates in loc. A
// suppression is shown beside it, not instead of it.
func consentText(c *ladle.Customer, loc *time.Location) string {
	day := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return " since " + t.In(loc).Format("Jan 2, 2006")
	}
	switch {
	case c.MarketingOptIn:
		s := "Opted in" + day(c.ConsentAt)
		if c.ConsentSource != "" {
			s += " via " + c.ConsentSource
		}
		return s
	case c.ConsentPendingAt != nil:
		return "Pending confirmation" + day(c.ConsentPendingAt)
	}
	return "Not opted in"
}

// handleCustomers lists the restaurant's customers, 50 a page in the
// order they first came, narrowed by a search (q: a part of the email or
// name). A bad page link or search is a 400 page that says so.
func (s *server) handleCustomers(w http.ResponseWriter, r *http.Request, st *staffView) {
	cs := s.campaignAccess(w, r, st)
	if cs == nil {
		return
	}
	rest := st.Restaurant
	base := "/admin/r/" + itoa(rest.ID) + "/customers"
	qs := r.URL.Query()
	p := customersPage{page: page{Title: "Customers · " + rest.Name, Staff: st}, Restaurant: rest,
		Q: strings.TrimSpace(qs.Get("q"))}
	q := ladle.CustomerQuery{Search: p.Q, Limit: customersPageSize + 1}
	if a := qs.Get("after"); a != "" {
		after, err := strconv.ParseInt(a, 10, 64)
		if err != nil || after < 0 {
			p.Error = "That page link is broken; start again from the first page."
			s.render(w, r, http.StatusBadRequest, "admin_customers.html", p)
			return
		}
		q.After = after
	}
	if err := q.Validate(); err != nil {
		p.Error = "Search for at most " + strconv.Itoa(ladle.MaxCustomerSearch) + " characters of plain text: a part of an email or name."
		p.Q, p.BadSearch = "", true
		s.render(w, r, http.StatusBadRequest, "admin_customers.html", p)
		return
	}
	list, err := cs.ListCustomers(r.Context(), rest.ID, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := url.Values{}
	if p.Q != "" {
		v.Set("q", p.Q)
	}
	if q.After > 0 {
		p.First = base
		if len(v) > 0 {
			p.First += "?" + v.Encode()
		}
	}
	if len(list) > customersPageSize {
		list = list[:customersPageSize]
		v.Set("after", strconv.FormatInt(list[len(list)-1].ID, 10))
		p.Next = base + "?" + v.Encode()
	}
	loc := rest.Location()
	for i := range list {
		c := &list[i]
		p.Customers = append(p.Customers, customerRow{ID: c.ID, Email: c.Email, Name: c.Name,
			Consent: consentText(c, loc), OptedIn: c.MarketingOptIn, Suppressed: suppressionLabel(c.Suppressed)})
	}
	s.render(w, r, http.StatusOK, "admin_customers.html", p)
}
