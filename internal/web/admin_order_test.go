package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle"
)

// TestOrderDetailPage: the staff order page shows the lines with their
// modifiers and notes, the payment, and a status history that names the
// staff member of each move and the system for the payment's; the kitchen
// ticket prints the same lines without money.
func TestOrderDetailPage(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		e.clock.Set(ladle.Now())
		req := e.request("detail@example.com")
		req.Lines[0].Note = "No pickles, <b>please</b>"
		o := e.place(e.fx.Restaurant, req)
		c := e.client()
		c.login(e.staffA)
		status := "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders/" + o.ID + "/status"
		c.post(status, url.Values{"status": {"accepted"}}).want(t, http.StatusSeeOther)
		e.clock.Add(90e9)
		c.post(status, url.Values{"status": {"cancelled"}, "reason": {"Out of buns"}}).want(t, http.StatusSeeOther)

		page := c.get(orderURL(e.fx.Restaurant.ID, o.ID))
		page.want(t, http.StatusOK, "#"+itoa(o.Number), "Burger", "Size: Large", "No pickles, &lt;b&gt;please&lt;/b&gt;",
			"Pay at pickup", `id="refunds"`, "by Staff a", "Out of buns", "(order created)")
		hist := page.body[strings.Index(page.body, "data-history"):]
		hist = hist[:strings.Index(hist, "</ol>")]
		if strings.Count(hist, "<li") != 3 || strings.Count(hist, "by Staff a") != 2 || strings.Count(hist, "by the system") != 1 {
			t.Fatalf("history = %s", hist)
		}
		entries, err := e.store.OrderHistory(t.Context(), e.fx.Restaurant.ID, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 3 || entries[1].UserID != e.staffA.ID || entries[2].To != ladle.StatusCancelled ||
			entries[2].At.Sub(entries[1].At) != 90e9 {
			t.Fatalf("history = %+v", entries)
		}

		ticket := c.get(orderURL(e.fx.Restaurant.ID, o.ID) + "/ticket")
		ticket.want(t, http.StatusOK, "kitchen-ticket", "Burger", "Large", "NOTE: No pickles", "CANCELLED")
		ticket.wantNot(t, formatMoney(o.Total, o.Currency))
	})
}
