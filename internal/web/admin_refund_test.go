package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
)

// paidOrder places a card order for the fixture restaurant.
func (e *env) paidOrder(email string) *ladle.Order {
	e.t.Helper()
	req := e.request(email)
	req.Payment = ladle.PaymentInput{Method: "card", Token: payment.TokenVisa}
	o := e.place(e.fx.Restaurant, req)
	if o.PaymentStatus != ladle.PaymentCaptured {
		e.t.Fatalf("card order = %+v", o)
	}
	return o
}

// refundsMade is what the test processor refunded, from the database.
func (e *env) refundsMade() []payment.TestRefund {
	e.t.Helper()
	list, err := e.refunds.Refunds(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// guestPage is the order's status page as the guest sees it.
func (e *env) guestPage(c *client, o *ladle.Order) *response {
	e.t.Helper()
	return c.get(ordering.StatusURL(o.ID, e.svc.AccessToken(o.ID)))
}

// text returns the inner text of the first element carrying attr.
func text(t *testing.T, r *response, attr string) string {
	t.Helper()
	m := regexp.MustCompile(attr + `[^>]*>([^<]*)<`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no %s in\n%s", attr, r.body)
	}
	return strings.TrimSpace(m[1])
}

// TestCancelRefundsOnceDespiteDoubleClicks: a card order cancelled by four
// concurrent clicks, then a retried request, is refunded once, in full;
// staff and guest see it.
func TestCancelRefundsOnceDespiteDoubleClicks(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		o := e.paidOrder("cancel-refund@example.com")
		c := e.client()
		c.login(e.staffA) // the staff role: may cancel, not refund by hand
		status := "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders/" + o.ID + "/status"
		form := url.Values{"status": {"cancelled"}, "reason": {"Kitchen closed early"}}
		var wg sync.WaitGroup
		codes := make([]int, 4)
		for i := range codes {
			wg.Go(func() { codes[i] = c.post(status, form).status })
		}
		wg.Wait()
		ok := 0
		for _, code := range codes {
			switch code {
			case http.StatusSeeOther:
				ok++
			case http.StatusConflict:
			default:
				t.Fatalf("cancel clicks answered %v", codes)
			}
		}
		if ok != 1 {
			t.Fatalf("cancel clicks answered %v, want one 303", codes)
		}
		c.post(status, form).want(t, http.StatusConflict) // the retried request
		if e.refunds.Calls() != 1 {
			t.Fatalf("processor refund calls = %d, want 1", e.refunds.Calls())
		}
		made := e.refundsMade()
		if len(made) != 1 || made[0].Amount != o.Total {
			t.Fatalf("refunds made = %+v, want one of %d", made, o.Total)
		}

		page := c.get(orderURL(e.fx.Restaurant.ID, o.ID))
		page.want(t, http.StatusOK, `data-refund-status="succeeded"`, "Order cancelled", "Kitchen closed early")
		if got := text(t, page, "data-refunded"); got != formatMoney(o.Total, o.Currency) {
			t.Fatalf("staff page refunded = %q", got)
		}
		if got := text(t, page, "data-remaining"); got != formatMoney(0, o.Currency) {
			t.Fatalf("staff page remaining = %q", got)
		}
		page.wantNot(t, "data-refund-form") // nothing left; and the staff role may not
		c.get(boardURL(e.fx.Restaurant.ID)).want(t, http.StatusOK, "refunded in full")
		e.guestPage(e.client(), o).want(t, http.StatusOK, "refunded in full to your card")
	})
}

// TestPartialRefundUpdatesTotals: a manager refunds a line (the form sent
// twice at once: one refund), then is refused an amount past what is left;
// staff and guest pages show the new totals.
func TestPartialRefundUpdatesTotals(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		o := e.paidOrder("partial@example.com")
		c := e.client()
		c.login(e.manager("mgr", e.fx.Restaurant.ID))
		page := c.get(orderURL(e.fx.Restaurant.ID, o.ID))
		page.want(t, http.StatusOK, "data-refund-form", `name="line-1"`)
		form := url.Values{"key": {page.field(t, "key")}, "line-1": {"1"}, "line-0": {"0"}, "amount": {""}, "reason": {"Fries were cold"}}
		path := orderURL(e.fx.Restaurant.ID, o.ID) + "/refunds"
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if res := c.post(path, form); res.status != http.StatusSeeOther {
					t.Errorf("refund post: %d\n%s", res.status, res.body)
				}
			})
		}
		wg.Wait()
		c.post(path, form).want(t, http.StatusSeeOther) // re-sent: the same refund
		want := ladle.LineRefundAmount(o, o.Lines[1], 1)
		if made := e.refundsMade(); e.refunds.Calls() != 1 || len(made) != 1 || made[0].Amount != want {
			t.Fatalf("calls %d, refunds %+v; want one of %d", e.refunds.Calls(), made, want)
		}

		page = c.get(orderURL(e.fx.Restaurant.ID, o.ID))
		page.want(t, http.StatusOK, "Fries were cold", "1× Fries")
		if got := text(t, page, "data-refunded"); got != formatMoney(want, o.Currency) {
			t.Fatalf("staff refunded = %q, want %s", got, formatMoney(want, o.Currency))
		}
		left := o.Total - want
		if got := text(t, page, "data-remaining"); got != formatMoney(left, o.Currency) {
			t.Fatalf("staff remaining = %q, want %s", got, formatMoney(left, o.Currency))
		}
		e.guestPage(e.client(), o).want(t, http.StatusOK,
			"Paid "+formatMoney(o.Total, o.Currency)+" by card · "+formatMoney(want, o.Currency)+" refunded to your card.")

		// More than is left: 422, the input kept, nothing refunded.
		res := c.post(path, url.Values{"key": {"another"}, "amount": {amountText(left+1, o.Currency)}, "reason": {"too much"}})
		res.want(t, http.StatusUnprocessableEntity, "data-refund-error", "left to refund", `value="too much"`)
		if e.refunds.Calls() != 1 {
			t.Fatal("a refused refund reached the processor")
		}

		// The staff role may not refund; another restaurant's staff cannot see the order.
		staff := e.client()
		staff.login(e.user("plain", e.fx.Restaurant.ID))
		staff.post(path, url.Values{"key": {"k"}, "amount": {"1"}}).want(t, http.StatusForbidden)
		other := e.client()
		other.login(e.staffB)
		other.post(path, url.Values{"key": {"k"}, "amount": {"1"}}).want(t, http.StatusNotFound)
	})
}

// TestFailedRefundVisibleAndRetried: a refund the processor refuses shows
// as failed to staff (with Retry) and to the guest; a retry, clicked twice,
// is one new attempt and succeeds.
func TestFailedRefundVisibleAndRetried(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		o := e.paidOrder("failed-refund@example.com")
		c := e.client()
		c.login(e.manager("mgr", e.fx.Restaurant.ID))
		page := c.get(orderURL(e.fx.Restaurant.ID, o.ID))
		e.refunds.RefuseNext(1)
		c.post(orderURL(e.fx.Restaurant.ID, o.ID)+"/refunds", url.Values{"key": {page.field(t, "key")}, "amount": {"5.00"}}).
			want(t, http.StatusSeeOther)
		page = c.get(orderURL(e.fx.Restaurant.ID, o.ID))
		page.want(t, http.StatusOK, `data-refund-status="failed"`, "refused the refund", "Retry refund")
		e.guestPage(e.client(), o).want(t, http.StatusOK, "A refund of "+formatMoney(500, o.Currency)+" could not be made yet")

		m := regexp.MustCompile(`action="([^"]*/retry)"`).FindStringSubmatch(page.body)
		if m == nil {
			t.Fatalf("no retry form in\n%s", page.body)
		}
		retry := url.Values{"attempt": {page.field(t, "attempt")}}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if res := c.post(m[1], retry); res.status != http.StatusSeeOther {
					t.Errorf("retry: %d\n%s", res.status, res.body)
				}
			})
		}
		wg.Wait()
		if made := e.refundsMade(); e.refunds.Calls() != 2 || len(made) != 1 || made[0].Amount != 500 {
			t.Fatalf("calls %d, refunds %+v; want 2 calls and one refund of 500", e.refunds.Calls(), made)
		}
		c.get(orderURL(e.fx.Restaurant.ID, o.ID)).want(t, http.StatusOK, `data-refund-status="succeeded"`)
		e.guestPage(e.client(), o).want(t, http.StatusOK, formatMoney(500, o.Currency)+" refunded to your card.")
	})
}
