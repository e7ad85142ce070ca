package storetest

import (
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "SettlePayment/Captured", fn: testSettleCaptured},
		testCase{name: "SettlePayment/DeclinedReleases", fn: testSettleDeclined},
		testCase{name: "PendingPayments", fn: testPendingPayments},
	)
}

func testSettleCaptured(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	o := place(t, s, f, cardRequest(f))
	if o.Status != ladle.StatusPendingPayment || o.PaymentStatus != ladle.PaymentPending {
		t.Fatalf("card order = %+v", o)
	}
	ps, err := s.Payments(ctx, o.ID)
	ok(t, err)
	if len(ps) != 1 || ps[0].Status != ladle.PaymentPending || ps[0].Token != "tok_visa" || ps[0].Method != "card" ||
		ps[0].IdempotencyKey != ladle.PaymentKey(o.ID) || ps[0].Amount != RequestTotal {
		t.Fatalf("card payment = %+v", ps)
	}
	if evs := events(t, s, rid); len(eventsOf(evs, ladle.EventOrderPlaced)) != 0 {
		t.Fatalf("an unpaid order was announced: %v", eventTypes(evs))
	}

	settled := now.Add(3 * time.Second)
	got, err := s.SettlePayment(ctx, ladle.Settlement{OrderID: o.ID, Result: ladle.PaymentResult{Captured: true, ChargeID: "ch_123"}, Now: settled})
	ok(t, err)
	if o.Number != 0 {
		t.Fatalf("an unpaid order took number %d", o.Number)
	}
	if got.Status != ladle.StatusPlaced || got.PaymentStatus != ladle.PaymentCaptured || got.Number != 1 ||
		!got.UpdatedAt.Equal(settled) || len(got.Lines) != 2 {
		t.Fatalf("settled order = %+v", got)
	}
	ps, err = s.Payments(ctx, o.ID)
	ok(t, err)
	if ps[0].Status != ladle.PaymentCaptured || ps[0].ChargeID != "ch_123" || !ps[0].UpdatedAt.Equal(settled) || ps[0].Token != "" {
		t.Fatalf("captured payment = %+v", ps[0])
	}
	evs := events(t, s, rid)
	captured, placed := eventsOf(evs, ladle.EventPaymentCaptured), eventsOf(evs, ladle.EventOrderPlaced)
	if len(captured) != 1 || len(placed) != 1 {
		t.Fatalf("events after capture: %v", eventTypes(evs))
	}
	if p := decode[ladle.Payment](t, captured[0]); p.OrderID != o.ID || p.ChargeID != "ch_123" || p.Status != ladle.PaymentCaptured {
		t.Fatalf("payment.captured payload = %+v", p)
	}
	if p := decode[ladle.Order](t, placed[0]); p.ID != o.ID || p.Status != ladle.StatusPlaced || p.Number != got.Number {
		t.Fatalf("order.placed payload = %+v", p)
	}

	// Settling again (a late decline from the recovery loop) changes nothing.
	again, err := s.SettlePayment(ctx, ladle.Settlement{OrderID: o.ID, Result: ladle.PaymentResult{FailureReason: "late"}, Now: settled.Add(time.Minute)})
	ok(t, err)
	if again.Status != ladle.StatusPlaced || !again.UpdatedAt.Equal(settled) {
		t.Fatalf("second settlement changed the order: %+v", again)
	}
	if n := len(events(t, s, rid)); n != len(evs) {
		t.Fatalf("second settlement appended events: %d → %d", len(evs), n)
	}
	// A pay-at-pickup order has nothing to settle.
	pp := place(t, s, f, withEmail(f, "pp@example.com"))
	got, err = s.SettlePayment(ctx, ladle.Settlement{OrderID: pp.ID, Result: ladle.PaymentResult{Captured: true, ChargeID: "ch_x"}, Now: settled})
	ok(t, err)
	if got.Status != ladle.StatusPlaced || got.PaymentStatus != ladle.PaymentDueAtPickup {
		t.Fatalf("settling pay-at-pickup changed it: %+v", got)
	}
	_, err = s.SettlePayment(ctx, ladle.Settlement{OrderID: newID(), Result: ladle.PaymentResult{Captured: true, ChargeID: "ch_x"}, Now: settled})
	wantNotFound(t, err)
}

func testSettleDeclined(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	once := &ladle.Coupon{RestaurantID: rid, Code: "LASTONE", Kind: "fixed", Value: 300, MaxUses: 1, PerCustomerLimit: 1, Active: true}
	ok(t, s.CreateCoupon(ctx, once))
	req := cardRequest(f)
	req.CouponCode = "LASTONE"
	o := place(t, s, f, req)
	if c, _ := s.CouponByCode(ctx, rid, "LASTONE"); c.Uses != 1 {
		t.Fatalf("uses after order = %d", c.Uses)
	}

	got, err := s.SettlePayment(ctx, ladle.Settlement{OrderID: o.ID, Result: ladle.PaymentResult{FailureReason: "card_declined"}, Now: now.Add(time.Second)})
	ok(t, err)
	if got.Status != ladle.StatusPaymentFailed || got.PaymentStatus != ladle.PaymentDeclined {
		t.Fatalf("declined order = %+v", got)
	}
	ps, err := s.Payments(ctx, o.ID)
	ok(t, err)
	if ps[0].Status != ladle.PaymentDeclined || ps[0].FailureReason != "card_declined" {
		t.Fatalf("declined payment = %+v", ps[0])
	}
	c, err := s.CouponByCode(ctx, rid, "LASTONE")
	ok(t, err)
	if c.Uses != 0 {
		t.Fatalf("decline did not release the coupon: uses %d", c.Uses)
	}
	rs, err := s.Redemptions(ctx, rid, c.ID)
	ok(t, err)
	if len(rs) != 0 {
		t.Fatalf("redemption kept after decline: %+v", rs)
	}
	if evs := events(t, s, rid); len(eventsOf(evs, ladle.EventOrderPlaced))+len(eventsOf(evs, ladle.EventPaymentCaptured)) != 0 {
		t.Fatalf("a declined order was announced: %v", eventTypes(evs))
	}
	board, err := s.Orders(ctx, rid, ladle.OrderFilter{})
	ok(t, err)
	if len(board) != 0 {
		t.Fatalf("declined order on the board: %+v", board)
	}

	// The guest tries another card at once: same content (fingerprint
	// released), same coupon (use released, per customer too).
	req = cardRequest(f)
	req.CouponCode = "LASTONE"
	req.Payment.Token = "tok_mastercard"
	retry, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newID(), RestaurantID: rid, Request: req, Now: now.Add(2 * time.Second)})
	ok(t, err)
	if retry.Discount != 300 {
		t.Fatalf("retry discount = %d", retry.Discount)
	}
	got, err = s.SettlePayment(ctx, ladle.Settlement{OrderID: retry.ID, Result: ladle.PaymentResult{Captured: true, ChargeID: "ch_ok"}, Now: now.Add(3 * time.Second)})
	ok(t, err)
	if got.Status != ladle.StatusPlaced {
		t.Fatalf("retry = %+v", got)
	}
	if c, _ := s.CouponByCode(ctx, rid, "LASTONE"); c.Uses != 1 {
		t.Fatalf("uses after paid retry = %d", c.Uses)
	}
	// The failed order itself stays as it was.
	failed, err := s.Order(ctx, o.ID)
	ok(t, err)
	if failed.Status != ladle.StatusPaymentFailed {
		t.Fatalf("failed order = %+v", failed)
	}
}

func testPendingPayments(t *testing.T, e *env) {
	s, f := e.seed()
	at := func(d time.Duration) ladle.Clock { return func() time.Time { return now.Add(d) } }
	a := place(t, s, f, cardRequest(f), at(0))
	b := place(t, s, f, withCardEmail(f, "b@example.com"), at(time.Second))
	c := place(t, s, f, withCardEmail(f, "c@example.com"), at(2*time.Second))
	place(t, s, f, withEmail(f, "pickup@example.com"), at(0)) // not a card payment
	_, err := s.SettlePayment(ctx, ladle.Settlement{OrderID: b.ID, Result: ladle.PaymentResult{Captured: true, ChargeID: "ch_b"}, Now: now.Add(3 * time.Second)})
	ok(t, err)

	later := now.Add(time.Hour)
	ps, err := s.PendingPayments(ctx, later, later, 10)
	ok(t, err)
	if len(ps) != 2 || ps[0].OrderID != a.ID || ps[1].OrderID != c.ID || ps[0].Token != "tok_visa" {
		t.Fatalf("pending = %+v, want a then c", ps)
	}
	ps, err = s.PendingPayments(ctx, now.Add(2*time.Second), later, 10)
	ok(t, err)
	if len(ps) != 1 || ps[0].OrderID != a.ID {
		t.Fatalf("pending before c = %+v", ps)
	}
	ps, err = s.PendingPayments(ctx, later, later, 1)
	ok(t, err)
	if len(ps) != 1 || ps[0].OrderID != a.ID {
		t.Fatalf("limit 1 = %+v", ps)
	}

	// An attempt that stays unknown moves the row back (round robin) and
	// hides it until it is due again.
	ok(t, s.PaymentAttempted(ctx, ps[0].ID, later.Add(time.Minute)))
	ps, err = s.PendingPayments(ctx, later, later, 10)
	ok(t, err)
	if len(ps) != 1 || ps[0].OrderID != c.ID {
		t.Fatalf("after a's attempt = %+v, want only c", ps)
	}
	ok(t, s.PaymentAttempted(ctx, ps[0].ID, later.Add(30*time.Second)))
	ps, err = s.PendingPayments(ctx, later, later.Add(2*time.Minute), 10)
	ok(t, err)
	if len(ps) != 2 || ps[0].OrderID != c.ID || ps[1].OrderID != a.ID {
		t.Fatalf("both due again = %+v, want c (tried earlier) then a", ps)
	}

	// Given up: out of the loop, order flagged and on the board.
	ok(t, s.GiveUpPayment(ctx, ps[1].ID, "payment not confirmed by the provider", later))
	ps, err = s.PendingPayments(ctx, later, later.Add(time.Hour), 10)
	ok(t, err)
	if len(ps) != 1 || ps[0].OrderID != c.ID {
		t.Fatalf("after giving up a = %+v", ps)
	}
	got, err := s.Order(ctx, a.ID)
	ok(t, err)
	if got.Attention == "" || got.Status != ladle.StatusPendingPayment {
		t.Fatalf("given-up order = %+v", got)
	}
	board, err := s.Orders(ctx, f.Restaurant.ID, ladle.OrderFilter{})
	ok(t, err)
	found := false
	for _, o := range board {
		found = found || o.ID == a.ID
		if o.ID == c.ID {
			t.Fatal("a pending card order without attention is on the board")
		}
	}
	if !found {
		t.Fatal("the order flagged for attention is not on the board")
	}
}

func withCardEmail(f *Fixture, email string) *ladle.OrderRequest {
	r := cardRequest(f)
	r.Customer.Email = email
	return r
}
