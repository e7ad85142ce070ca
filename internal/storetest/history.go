package storetest

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "History/Search", fn: testHistorySearch},
		testCase{name: "History/StatusHistory", fn: testStatusHistory},
		testCase{name: "History/SalesReport", fn: testSalesReport},
		testCase{name: "History/SalesReportRefunds", fn: testSalesReportRefunds},
		testCase{name: "Coupon/Update", fn: testCouponUpdate},
	)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func at(t time.Time) ladle.Clock { return func() time.Time { return t } }

func ids(os []ladle.Order) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.ID
	}
	return out
}

func testHistorySearch(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	ada := place(t, s, f, withEmail(f, "ada@example.com"), at(now.Add(-26*time.Hour)))
	req := withEmail(f, "Grace@Example.com")
	req.Customer.Name, req.Customer.Phone = "Grace Hopper", "+12125550100"
	grace := place(t, s, f, req, at(now.Add(-time.Hour)))
	req = withEmail(f, "zed@example.com")
	req.Customer.Name = "Zed 100% Real_Name"
	zed := place(t, s, f, req, at(now))
	tie := place(t, s, f, withEmail(f, "tie@example.com"), at(now)) // same instant: the id orders them
	foreign, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: f.Other.ID, Now: now, Request: &ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: "Grace Hopper", Email: "grace@example.com", Phone: "+12125550100"},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       []ladle.LineRequest{{ItemID: f.OtherItem.ID, Quantity: 1}},
		Payment:     ladle.PaymentInput{Method: "pay_at_pickup"}}})
	ok(t, err)

	all := ladle.OrderQuery{From: now.Add(-48 * time.Hour), To: now.Add(time.Hour)}
	search := func(q ladle.OrderQuery) []string {
		t.Helper()
		got, err := s.SearchOrders(ctx, rid, q)
		ok(t, err)
		for _, o := range got {
			if o.RestaurantID != rid || len(o.Lines) == 0 {
				t.Fatalf("SearchOrders returned %+v", o)
			}
		}
		return ids(got)
	}
	newest := []string{max(zed.ID, tie.ID), min(zed.ID, tie.ID), grace.ID, ada.ID}
	if got := search(all); !slices.Equal(got, newest) {
		t.Fatalf("all = %v, want %v", got, newest)
	}
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"#" + itoa(grace.Number), []string{grace.ID}},
		{itoa(grace.Number), []string{grace.ID}},
		{"GRACE@example.com", []string{grace.ID}},
		{"(212) 555-0100", []string{grace.ID}},
		{"hopp", []string{grace.ID}},
		{"100%", []string{zed.ID}},      // % is a character, not a wildcard
		{"r_al", nil},                   // nor is _ (it would match "real")
		{"real_name", []string{zed.ID}}, // case-insensitive
		{"nobody@example.com", nil},
	} {
		q := all
		q.Search = c.q
		if got := search(q); !slices.Equal(got, c.want) {
			t.Errorf("search %q = %v, want %v", c.q, got, c.want)
		}
	}
	// The range is [From, To): an order at To is out, one at From is in.
	if got := search(ladle.OrderQuery{From: grace.CreatedAt, To: zed.CreatedAt}); !slices.Equal(got, []string{grace.ID}) {
		t.Fatalf("[grace, zed) = %v", got)
	}
	// Keyset pages of 2, through the tie.
	q := all
	q.Limit = 2
	var pages []string
	for range 5 {
		got, err := s.SearchOrders(ctx, rid, q)
		ok(t, err)
		pages = append(pages, ids(got)...)
		if len(got) < 2 {
			break
		}
		last := got[len(got)-1]
		c, parsed := ladle.ParseOrderCursor(ladle.OrderCursor{CreatedAt: last.CreatedAt, ID: last.ID}.String())
		if !parsed {
			t.Fatal("cursor does not round-trip")
		}
		q.After = &c
	}
	if !slices.Equal(pages, newest) {
		t.Fatalf("pages = %v, want %v", pages, newest)
	}
	// Statuses.
	_, err = s.SetOrderStatus(ctx, rid, ada.ID, ladle.StatusCancelled, "no show", 0, now)
	ok(t, err)
	q = all
	q.Statuses = []ladle.OrderStatus{ladle.StatusCancelled}
	if got := search(q); !slices.Equal(got, []string{ada.ID}) {
		t.Fatalf("cancelled = %v", got)
	}
	// Tenant scope: the other restaurant sees only its own Grace.
	q = all
	q.Search = "grace@example.com"
	got, err := s.SearchOrders(ctx, f.Other.ID, q)
	ok(t, err)
	if !slices.Equal(ids(got), []string{foreign.ID}) {
		t.Fatalf("other restaurant's search = %v", ids(got))
	}
	_, err = s.SearchOrders(ctx, rid, ladle.OrderQuery{From: now, To: now})
	wantCode(t, err, ladle.CodeValidation)
}

func testStatusHistory(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	o := place(t, s, f, cardRequest(f))
	settled := now.Add(2 * time.Second)
	_, err := s.SettlePayment(ctx, ladle.Settlement{OrderID: o.ID, Result: ladle.PaymentResult{Captured: true, ChargeID: "ch_1"}, Now: settled})
	ok(t, err)
	_, err = s.SetOrderStatus(ctx, rid, o.ID, ladle.StatusAccepted, "", f.Owner.ID, now.Add(time.Minute))
	ok(t, err)
	_, err = s.SetOrderStatus(ctx, rid, o.ID, ladle.StatusCancelled, "out of buns", 0, now.Add(2*time.Minute))
	ok(t, err)
	h, err := s.OrderHistory(ctx, rid, o.ID)
	ok(t, err)
	want := []ladle.StatusEntry{
		{To: ladle.StatusPendingPayment, At: o.CreatedAt},
		{From: ladle.StatusPendingPayment, To: ladle.StatusPlaced, At: settled},
		{From: ladle.StatusPlaced, To: ladle.StatusAccepted, UserID: f.Owner.ID, UserName: f.Owner.Name, At: now.Add(time.Minute)},
		{From: ladle.StatusAccepted, To: ladle.StatusCancelled, Reason: "out of buns", At: now.Add(2 * time.Minute)},
	}
	if len(h) != len(want) {
		t.Fatalf("history = %+v", h)
	}
	for i := range want {
		if h[i].From != want[i].From || h[i].To != want[i].To || h[i].UserID != want[i].UserID ||
			h[i].UserName != want[i].UserName || h[i].Reason != want[i].Reason || !h[i].At.Equal(want[i].At) {
			t.Errorf("history[%d] = %+v, want %+v", i, h[i], want[i])
		}
	}
	// A refused move writes nothing.
	_, err = s.SetOrderStatus(ctx, rid, o.ID, ladle.StatusAccepted, "", f.Owner.ID, now.Add(3*time.Minute))
	wantCode(t, err, ladle.CodeInvalidTransition)
	if h2, _ := s.OrderHistory(ctx, rid, o.ID); len(h2) != len(want) {
		t.Fatalf("a refused move added history: %+v", h2)
	}
	// Pay at pickup is created placed; a declined card ends payment_failed.
	p := place(t, s, f, withEmail(f, "pickup@example.com"))
	if h, _ := s.OrderHistory(ctx, rid, p.ID); len(h) != 1 || h[0].To != ladle.StatusPlaced {
		t.Fatalf("pay at pickup history = %+v", h)
	}
	d := place(t, s, f, func() *ladle.OrderRequest { r := cardRequest(f); r.Customer.Email = "d@example.com"; return r }())
	_, err = s.SettlePayment(ctx, ladle.Settlement{OrderID: d.ID, Result: ladle.PaymentResult{FailureReason: "declined"}, Now: settled})
	ok(t, err)
	if h, _ := s.OrderHistory(ctx, rid, d.ID); len(h) != 2 || h[1].To != ladle.StatusPaymentFailed || h[1].UserID != 0 {
		t.Fatalf("declined history = %+v", h)
	}
	_, err = s.OrderHistory(ctx, f.Other.ID, o.ID)
	wantNotFound(t, err)
}

func testSalesReport(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	loc := f.Restaurant.Location() // America/New_York: now is 08:30 local
	a := place(t, s, f, withEmail(f, "a@example.com"), at(now))
	req := withEmail(f, "b@example.com")
	req.CouponCode = "SAVE10"
	b := place(t, s, f, req, at(now.Add(-25*time.Hour)))
	c := place(t, s, f, withEmail(f, "c@example.com"), at(now.Add(-2*time.Hour)))
	_, err := s.SetOrderStatus(ctx, rid, c.ID, ladle.StatusCancelled, "closed", 0, now)
	ok(t, err)
	pending := cardRequest(f)
	pending.Customer.Email = "p@example.com"
	place(t, s, f, pending, at(now)) // pending payment: not a sale
	_, err = s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: f.Other.ID, Now: now, Request: &ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: "X", Email: "x@example.com"},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       []ladle.LineRequest{{ItemID: f.OtherItem.ID, Quantity: 3}},
		Payment:     ladle.PaymentInput{Method: "pay_at_pickup"}}})
	ok(t, err)
	if b.Discount == 0 {
		t.Fatal("the coupon gave no discount")
	}

	from := time.Date(2030, 5, 15, 0, 0, 0, 0, loc)
	to := time.Date(2030, 5, 18, 0, 0, 0, 0, loc)
	slots, items, coupons, err := s.SalesReport(ctx, rid, from, to, 10)
	ok(t, err)
	rep := ladle.BuildReport(loc, from, to, slots, items, coupons)
	if rep.Orders != 2 || rep.Revenue != a.Total+b.Total || rep.Discounts != b.Discount || rep.Cancelled != 1 ||
		rep.Tax != a.Tax+b.Tax || rep.AverageTicket != (a.Total+b.Total)/2 {
		t.Fatalf("report = %+v", rep)
	}
	if len(rep.Days) != 3 || rep.Days[1].Label != "2030-05-16" || rep.Days[1].Orders != 1 || rep.Days[1].Revenue != b.Total ||
		rep.Days[2].Orders != 1 || rep.Days[2].Revenue != a.Total || rep.Days[0].Orders != 0 {
		t.Fatalf("days = %+v", rep.Days)
	}
	if rep.Hours[8].Orders != 1 || rep.Hours[7].Orders != 1 || rep.Hours[12].Orders != 0 {
		t.Fatalf("hours = %+v", rep.Hours) // 12:30 UTC is 08:30 in New York
	}
	if len(rep.TopItems) != 2 || rep.TopItems[0].Name != "Burger" || rep.TopItems[0].Quantity != 4 ||
		rep.TopItems[1].Name != "Fries" || rep.TopItems[1].Quantity != 2 {
		t.Fatalf("top items = %+v", rep.TopItems)
	}
	if len(rep.Coupons) != 1 || rep.Coupons[0] != (ladle.CouponUse{Code: "SAVE10", Orders: 1, Discount: b.Discount}) {
		t.Fatalf("coupons = %+v", rep.Coupons)
	}
	// The same instants in Paris fall on other days and hours.
	paris, _ := time.LoadLocation("Europe/Paris")
	rep = ladle.BuildReport(paris, from, to, slots, items, coupons)
	if rep.Hours[14].Orders != 1 || rep.Hours[13].Orders != 1 {
		t.Fatalf("Paris hours = %+v", rep.Hours)
	}
	// Another restaurant's report has none of it.
	slots, _, _, err = s.SalesReport(ctx, f.Other.ID, from, to, 10)
	ok(t, err)
	if other := ladle.BuildReport(loc, from, to, slots, nil, nil); other.Orders != 1 || other.Revenue == a.Total {
		t.Fatalf("other restaurant's report = %+v", other)
	}
}

// testSalesReportRefunds: a refund counts on the local day it succeeded,
// not the day its order was placed; pending and failed refunds do not
// count, nor do a cancelled order's; net is gross minus refunded.
func testSalesReportRefunds(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	loc := f.Restaurant.Location()
	o := captured(t, s, f, "net@example.com", "ch_net") // Friday 2030-05-17, 08:30 local
	settle := func(orderID, key string, amount ladle.Money, succeeded bool, when time.Time) {
		t.Helper()
		r, _, err := s.CreateRefund(ctx, newRefund(f, orderID, key, amount))
		ok(t, err)
		_, err = s.SettleRefund(ctx, ladle.RefundSettlement{RestaurantID: rid, RefundID: r.ID, Attempt: 1,
			Succeeded: succeeded, ProviderRefundID: "re_" + key + orderID[len(orderID)-6:], FailureReason: "declined", Now: when})
		ok(t, err)
	}
	saturday := now.Add(24 * time.Hour)
	settle(o.ID, "k1", 500, true, saturday)
	settle(o.ID, "k2", 300, false, saturday)
	_, _, err := s.CreateRefund(ctx, newRefund(f, o.ID, "k3", 200)) // pending
	ok(t, err)
	c := captured(t, s, f, "net-cancel@example.com", "ch_net_cancel")
	settle(c.ID, "k1", 100, true, now)
	_, err = s.SetOrderStatus(ctx, rid, c.ID, ladle.StatusCancelled, "closed", 0, now)
	ok(t, err)

	report := func(from, to time.Time) *ladle.Report {
		t.Helper()
		slots, items, coupons, err := s.SalesReport(ctx, rid, from, to, 10)
		ok(t, err)
		return ladle.BuildReport(loc, from, to, slots, items, coupons)
	}
	friday, sunday := time.Date(2030, 5, 17, 0, 0, 0, 0, loc), time.Date(2030, 5, 19, 0, 0, 0, 0, loc)
	rep := report(friday, sunday)
	if rep.Orders != 1 || rep.Revenue != o.Total || rep.Refunded != 500 || rep.Net != o.Total-500 {
		t.Fatalf("report: orders %d, gross %d, refunded %d, net %d; want 1, %d, 500, %d", rep.Orders, rep.Revenue, rep.Refunded, rep.Net, o.Total, o.Total-500)
	}
	if d := rep.Days; len(d) != 2 || d[0].Revenue != o.Total || d[0].Refunded != 0 || d[0].Net != o.Total ||
		d[1].Orders != 0 || d[1].Revenue != 0 || d[1].Refunded != 500 || d[1].Net != -500 {
		t.Fatalf("days = %+v", rep.Days)
	}
	if h := rep.Hours[8]; h.Revenue != o.Total || h.Refunded != 500 || h.Net != o.Total-500 {
		t.Fatalf("08:00 = %+v", h)
	}
	// Friday alone: the sale, not Saturday's refund.
	if rep := report(friday, friday.AddDate(0, 0, 1)); rep.Revenue != o.Total || rep.Refunded != 0 || rep.Net != o.Total {
		t.Fatalf("Friday: %+v", rep)
	}
	// Saturday alone: the refund, no sale.
	if rep := report(friday.AddDate(0, 0, 1), sunday); rep.Orders != 0 || rep.Refunded != 500 || rep.Net != -500 || rep.AverageTicket != 0 {
		t.Fatalf("Saturday: %+v", rep)
	}
}

func testCouponUpdate(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	req := withEmail(f, "u@example.com")
	req.CouponCode = "SAVE10"
	place(t, s, f, req)
	place(t, s, f, func() *ladle.OrderRequest { r := withEmail(f, "v@example.com"); r.CouponCode = "SAVE10"; return r }())
	until := now.Add(time.Hour)
	c := &ladle.Coupon{ID: f.Coupon.ID, RestaurantID: rid, Kind: "fixed", Value: 300, MinSubtotal: 1000,
		ValidUntil: &until, MaxUses: 1, PerCustomerLimit: 1, Active: false}
	wantCode(t, s.UpdateCoupon(ctx, c), ladle.CodeValidation) // 2 uses already
	c.MaxUses = 5
	ok(t, s.UpdateCoupon(ctx, c))
	got, err := s.CouponByID(ctx, rid, f.Coupon.ID)
	ok(t, err)
	if got.Code != "SAVE10" || got.Kind != "fixed" || got.Value != 300 || got.MinSubtotal != 1000 || got.Uses != 2 ||
		got.MaxUses != 5 || got.Active || got.ValidUntil == nil || !got.ValidUntil.Equal(until) {
		t.Fatalf("updated coupon = %+v", got)
	}
	// Inactive: checkout refuses it.
	_, err = s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Now: now,
		Request: func() *ladle.OrderRequest { r := withEmail(f, "w@example.com"); r.CouponCode = "SAVE10"; return r }()})
	wantCode(t, err, ladle.CodeCouponInvalid)
	// Another restaurant's coupon is not found, and unchanged.
	c.ID = f.OtherCoupon.ID
	wantNotFound(t, s.UpdateCoupon(ctx, c))
	_, err = s.CouponByID(ctx, rid, f.OtherCoupon.ID)
	wantNotFound(t, err)
	if o, _ := s.CouponByID(ctx, f.Other.ID, f.OtherCoupon.ID); !o.Active || o.Value != 500 {
		t.Fatalf("other coupon changed: %+v", o)
	}
}
