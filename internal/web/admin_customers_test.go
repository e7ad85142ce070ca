package web

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// customerRowRE reads one row of the customers table: id, email, name,
// consent, suppressed cell.
var customerRowRE = regexp.MustCompile(`<tr data-customer-id="(\d+)"><td class="mail-to" data-email>([^<]*)</td><td>([^<]*)</td><td data-consent>([^<]*)</td>\s*<td data-suppressed>(.*?)</td></tr>`)

type shownCustomer struct{ id, email, name, consent, suppressed string }

func customerRows(body string) []shownCustomer {
	var out []shownCustomer
	for _, m := range customerRowRE.FindAllStringSubmatch(body, -1) {
		out = append(out, shownCustomer{m[1], html.UnescapeString(m[2]), html.UnescapeString(m[3]), html.UnescapeString(m[4]),
			html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(m[5], ""))})
	}
	return out
}

// nextLink is the page's "Next" URL, or "".
func nextLink(body string) string {
	m := regexp.MustCompile(`href="([^"]*)" rel="next"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// A manager sees the restaurant's customers with their consent as
// recorded (opted in since when and how, pending since when, none) and
// any suppression, 50 a page with every customer on exactly one page,
// narrowed by a search; never another restaurant's customers. The staff
// role is refused, another restaurant's manager gets the 404 page, and
// a broken page link or search is a 400 page.
func TestCustomersPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "sqlite", func(d *Deps) { d.Campaigns = campaign.NewService(d.Store.(*sqlstore.Store), quiet) })
	st := e.store.(*sqlstore.Store)
	rid, oid := e.fx.Restaurant.ID, e.fx.Other.ID
	page := "/admin/r/" + itoa(rid) + "/customers"

	// 15:00 UTC is 11:00 in New York, the restaurant's zone: the same day.
	at := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	rows := []ladle.CustomerImport{
		{Email: "zed@example.com", Name: "Zed Zimmer", MarketingOptIn: true},
		{Email: "nobody@example.com", Name: "No Body"},
		{Email: "bounced@example.com", Name: "Bo Unce", MarketingOptIn: true},
	}
	for i := range 55 {
		rows = append(rows, ladle.CustomerImport{Email: fmt.Sprintf("bulk%02d@example.com", i), Name: "Bulk Buyer"})
	}
	if _, err := st.ImportCustomers(ctx, rid, rows, at); err != nil {
		t.Fatal(err)
	}
	if err := st.Suppress(ctx, rid, "bounced@example.com", ladle.SuppressHardBounce, at); err != nil {
		t.Fatal(err)
	}
	// A guest ticks the box under double opt-in: pending.
	if err := st.SetDoubleOptIn(ctx, rid, true); err != nil {
		t.Fatal(err)
	}
	r, err := st.RestaurantByID(ctx, rid)
	if err != nil {
		t.Fatal(err)
	}
	req := e.request("pending@example.com")
	req.MarketingOptIn = true
	e.place(r, req)
	pending, err := st.CustomerByEmail(ctx, rid, "pending@example.com")
	if err != nil || pending.ConsentPendingAt == nil {
		t.Fatalf("the pending customer: %+v, %v", pending, err)
	}
	pendingSince := pending.ConsentPendingAt.In(r.Location()).Format("Jan 2, 2006")
	// Another restaurant's customer, who would match the search "zed".
	if _, err := st.ImportCustomers(ctx, oid, []ladle.CustomerImport{{Email: "foreign@example.com", Name: "Zed Foreign"}}, at); err != nil {
		t.Fatal(err)
	}
	const total = 3 + 55 + 1

	mgr := e.manager("mgr", rid)
	cl := e.client()
	cl.login(mgr)
	cl.get("/admin/r/"+itoa(rid)+"/campaigns").want(t, http.StatusOK, `<a href="`+page+`" id="see-customers">See customers</a>`)

	// Two pages: 50, then the rest; each customer once.
	res := cl.get(page)
	res.want(t, http.StatusOK, `<th scope="col">Email</th>`, "<caption")
	first := customerRows(res.body)
	next := nextLink(res.body)
	if len(first) != customersPageSize || next == "" {
		t.Fatalf("first page: %d customers, next %q\n%s", len(first), next, res.body)
	}
	res = cl.get(next)
	res.want(t, http.StatusOK, `← First page`)
	second := customerRows(res.body)
	if len(second) != total-customersPageSize || nextLink(res.body) != "" {
		t.Fatalf("second page (%s): %d customers, next %q", next, len(second), nextLink(res.body))
	}
	shown := map[string]shownCustomer{}
	for _, c := range append(first, second...) {
		if _, dup := shown[c.email]; dup {
			t.Fatalf("%s is on both pages", c.email)
		}
		shown[c.email] = c
	}
	if len(shown) != total {
		t.Fatalf("%d customers across the pages, want %d", len(shown), total)
	}
	if _, ok := shown["foreign@example.com"]; ok {
		t.Fatal("another restaurant's customer is listed")
	}
	for email, want := range map[string][2]string{
		"zed@example.com":     {"Opted in since Mar 14, 2026 via import", "No"},
		"nobody@example.com":  {"Not opted in", "No"},
		"bounced@example.com": {"Opted in since Mar 14, 2026 via import", "Hard bounce"},
		"pending@example.com": {"Pending confirmation since " + pendingSince, "No"},
		"bulk07@example.com":  {"Not opted in", "No"},
	} {
		if c := shown[email]; c.consent != want[0] || c.suppressed != want[1] {
			t.Errorf("%s: consent %q, suppressed %q; want %q, %q", email, c.consent, c.suppressed, want[0], want[1])
		}
	}
	if c := shown["zed@example.com"]; c.name != "Zed Zimmer" {
		t.Errorf("zed's name: %q", c.name)
	}

	// Search: any case, email or name; paging keeps the search.
	res = cl.get(page + "?q=ZED")
	res.want(t, http.StatusOK)
	if got := customerRows(res.body); len(got) != 1 || got[0].email != "zed@example.com" {
		t.Errorf("search ZED: %+v", got)
	}
	res = cl.get(page + "?q=bulk+buyer")
	first = customerRows(res.body)
	next = nextLink(res.body)
	if len(first) != customersPageSize || !strings.Contains(next, "q=bulk+buyer") {
		t.Fatalf("search bulk buyer: %d customers, next %q", len(first), next)
	}
	if second = customerRows(cl.get(next).body); len(second) != 55-customersPageSize {
		t.Fatalf("search bulk buyer, page 2: %d customers", len(second))
	}
	cl.get(page+"?q=nomatch").want(t, http.StatusOK, "No customers match “nomatch”.")

	// Bad input: a clear 400 page, never a 500.
	for _, q := range []string{"after=abc", "after=-3", "after=1e3", "after=99999999999999999999",
		"q=" + strings.Repeat("x", ladle.MaxCustomerSearch+1), "q=%FF%FE", "q=a%00b"} {
		res := cl.get(page + "?" + q)
		if res.status != http.StatusBadRequest || !strings.Contains(res.body, `role="alert"`) {
			t.Errorf("?%s: status %d, want 400 with an alert\n%s", q, res.status, res.body)
		}
		if len(customerRows(res.body)) != 0 {
			t.Errorf("?%s: a 400 page lists customers", q)
		}
	}
	cl.get(page+"?after=abc").want(t, http.StatusBadRequest, "That page link is broken")
	cl.get(page+"?q="+strings.Repeat("x", ladle.MaxCustomerSearch+1)).want(t, http.StatusBadRequest, "Search for at most 100 characters")
	if res := cl.get(page + "?q=" + strings.Repeat("é", ladle.MaxCustomerSearch)); res.status != http.StatusOK {
		t.Errorf("a search of %d characters: %d", ladle.MaxCustomerSearch, res.status)
	}

	// The staff role is refused; another restaurant's staff and managers
	// get the one 404 page, with nothing of this restaurant's.
	staff := e.client()
	staff.login(e.staffA)
	if res := staff.get(page); res.status != http.StatusForbidden || strings.Contains(res.body, "zed@example.com") {
		t.Errorf("staff role: %d, want 403 without customers", res.status)
	}
	for _, u := range []*ladle.User{e.staffB, e.manager("other", oid)} {
		c := e.client()
		c.login(u)
		res := c.get(page)
		res.want(t, http.StatusNotFound)
		res.wantNot(t, "zed@example.com", "Zed Zimmer")
	}
}
