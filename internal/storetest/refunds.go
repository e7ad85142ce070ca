package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
)

func init() {
	register(
		testCase{name: "Refunds/BoundAndKeys", fn: testRefundBound},
		testCase{name: "Refunds/SettleRetry", fn: testRefundSettleRetry},
		testCase{name: "Refunds/CancelRefundsInFull", fn: testRefundOnCancel},
		testCase{name: "Refunds/ConcurrentBound", fn: testRefundConcurrentBound},
		testCase{name: "Refunds/ProviderReported", fn: testRefundProviderReported},
		testCase{name: "Refunds/TenantScoped", fn: testRefundScoped},
		testCase{name: "Refunds/TestProviderLedger", fn: testRefundLedger},
	)
}

// captured places a card order and settles it captured with chargeID.
func captured(t *testing.T, s ladle.Store, f *Fixture, email, chargeID string) *ladle.Order {
	t.Helper()
	req := cardRequest(f)
	req.Customer.Email = email
	o := place(t, s, f, req)
	o, err := s.SettlePayment(ctx, ladle.Settlement{OrderID: o.ID, Result: ladle.PaymentResult{Captured: true, ChargeID: chargeID}, Now: now})
	ok(t, err)
	return o
}

func newRefund(f *Fixture, orderID, key string, amount ladle.Money, lines ...ladle.RefundLine) ladle.NewRefund {
	return ladle.NewRefund{ID: newID(), RestaurantID: f.Restaurant.ID, OrderID: orderID, RequestKey: key,
		Amount: amount, Lines: lines, Source: ladle.RefundSourceStaff, Reason: "cold fries", CreatedBy: 7, Now: now}
}

func testRefundBound(t *testing.T, e *env) {
	s, f := e.seed()
	o := captured(t, s, f, "bound@example.com", "ch_bound")

	r, created, err := s.CreateRefund(ctx, newRefund(f, o.ID, "k1", 1000))
	ok(t, err)
	if !created || r.Status != ladle.RefundPending || r.Amount != 1000 || r.ChargeID != "ch_bound" || r.Currency != o.Currency ||
		r.Attempt != 1 || r.ProviderKey != ladle.RefundProviderKey(r.ID, 1) || r.Reason != "cold fries" || r.CreatedBy != 7 {
		t.Fatalf("refund = %+v, created %v", r, created)
	}
	// The same request again: the same refund, nothing new.
	again, created, err := s.CreateRefund(ctx, newRefund(f, o.ID, "k1", 1000))
	ok(t, err)
	if created || again.ID != r.ID {
		t.Fatalf("same key made another refund: %+v created %v", again, created)
	}
	// Lines: one burger of two, priced as its share of what was paid.
	lr, _, err := s.CreateRefund(ctx, newRefund(f, o.ID, "k2", 0, ladle.RefundLine{Position: 0, Quantity: 1}))
	ok(t, err)
	want := ladle.LineRefundAmount(o, o.Lines[0], 1)
	if lr.Amount != want || want <= 0 || len(lr.Lines) != 1 || lr.Lines[0].Amount != want {
		t.Fatalf("line refund = %+v, want amount %d", lr, want)
	}
	// More of a line than is left of it.
	_, _, err = s.CreateRefund(ctx, newRefund(f, o.ID, "k3", 0, ladle.RefundLine{Position: 0, Quantity: 2}))
	wantCode(t, err, ladle.CodeRefundExceeds)
	_, _, err = s.CreateRefund(ctx, newRefund(f, o.ID, "k3", 0, ladle.RefundLine{Position: 9, Quantity: 1}))
	wantCode(t, err, ladle.CodeValidation)
	// More than is left: 422 with what is left.
	left := RequestTotal - 1000 - want
	_, _, err = s.CreateRefund(ctx, newRefund(f, o.ID, "k4", left+1))
	wantCode(t, err, ladle.CodeRefundExceeds)
	var le *ladle.Error
	if !asError(err, &le) || le.Kind != ladle.KindUnprocessable || le.Extra["remaining"] != int64(left) {
		t.Fatalf("exceeding refund: %#v", err)
	}
	_, _, err = s.CreateRefund(ctx, newRefund(f, o.ID, "k5", 0))
	wantCode(t, err, ladle.CodeValidation)
	last, _, err := s.CreateRefund(ctx, newRefund(f, o.ID, "k6", left))
	ok(t, err)
	_, tot, err := s.Refunds(ctx, f.Restaurant.ID, o.ID)
	ok(t, err)
	if tot.Captured != RequestTotal || tot.Pending != RequestTotal || tot.Remaining != 0 || tot.Refunded != 0 || last.Amount != left {
		t.Fatalf("totals = %+v", tot)
	}

	// Pay at pickup: nothing to refund.
	p := place(t, s, f, withEmail(f, "pickup@example.com"))
	_, _, err = s.CreateRefund(ctx, newRefund(f, p.ID, "k1", 100))
	wantCode(t, err, ladle.CodeRefundNotRefundable)
}

func testRefundSettleRetry(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	o := captured(t, s, f, "settle@example.com", "ch_settle")
	r, _, err := s.CreateRefund(ctx, newRefund(f, o.ID, "k1", 500))
	ok(t, err)

	// Refused: failed with the reason, its amount free again.
	failed, err := s.SettleRefund(ctx, ladle.RefundSettlement{RestaurantID: rid, RefundID: r.ID, Attempt: 1,
		FailureReason: "card closed", Now: now.Add(time.Second)})
	ok(t, err)
	if failed.Status != ladle.RefundFailed || failed.FailureReason != "card closed" {
		t.Fatalf("failed refund = %+v", failed)
	}
	_, tot, err := s.Refunds(ctx, rid, o.ID)
	ok(t, err)
	if tot.Remaining != RequestTotal {
		t.Fatalf("a failed refund still holds money: %+v", tot)
	}
	if evs := eventsOf(events(t, s, rid), ladle.EventRefundCreated); len(evs) != 0 {
		t.Fatalf("a failed refund announced: %d events", len(evs))
	}

	// Retry: attempt 2 with a new key; a second retry of attempt 1 is a no-op.
	retried, moved, err := s.RetryRefund(ctx, rid, r.ID, 1, now.Add(2*time.Second))
	ok(t, err)
	if !moved || retried.Status != ladle.RefundPending || retried.Attempt != 2 || retried.ProviderKey != ladle.RefundProviderKey(r.ID, 2) ||
		retried.FailureReason != "" {
		t.Fatalf("retried = %+v moved %v", retried, moved)
	}
	again, moved, err := s.RetryRefund(ctx, rid, r.ID, 1, now.Add(3*time.Second))
	ok(t, err)
	if moved || again.Attempt != 2 {
		t.Fatalf("double retry moved it again: %+v", again)
	}
	// A late answer for attempt 1 changes nothing.
	late, err := s.SettleRefund(ctx, ladle.RefundSettlement{RestaurantID: rid, RefundID: r.ID, Attempt: 1,
		Succeeded: true, ProviderRefundID: "re_old", Now: now.Add(4 * time.Second)})
	ok(t, err)
	if late.Status != ladle.RefundPending || late.ProviderRefundID != "" {
		t.Fatalf("an old attempt's answer settled the new one: %+v", late)
	}

	ok2, err := s.SettleRefund(ctx, ladle.RefundSettlement{RestaurantID: rid, RefundID: r.ID, Attempt: 2,
		Succeeded: true, ProviderRefundID: "re_1", Now: now.Add(5 * time.Second)})
	ok(t, err)
	if ok2.Status != ladle.RefundSucceeded || ok2.ProviderRefundID != "re_1" {
		t.Fatalf("succeeded refund = %+v", ok2)
	}
	// Settling again: no second effect.
	_, err = s.SettleRefund(ctx, ladle.RefundSettlement{RestaurantID: rid, RefundID: r.ID, Attempt: 2,
		Succeeded: true, ProviderRefundID: "re_1", Now: now.Add(6 * time.Second)})
	ok(t, err)
	got, err := s.Order(ctx, o.ID)
	ok(t, err)
	if got.Refunded != 500 {
		t.Fatalf("order refunded = %d, want 500", got.Refunded)
	}
	evs := eventsOf(events(t, s, rid), ladle.EventRefundCreated)
	if len(evs) != 1 {
		t.Fatalf("refund.created events = %d, want 1", len(evs))
	}
	if p := decode[ladle.Refund](t, evs[0]); p.ID != r.ID || p.Amount != 500 || p.Status != ladle.RefundSucceeded || evs[0].AggregateID != o.ID {
		t.Fatalf("refund.created payload = %+v", p)
	}
	list, tot, err := s.Refunds(ctx, rid, o.ID)
	ok(t, err)
	if len(list) != 1 || tot.Refunded != 500 || tot.Remaining != RequestTotal-500 {
		t.Fatalf("refunds = %+v totals %+v", list, tot)
	}
}

func testRefundOnCancel(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	o := captured(t, s, f, "cancel@example.com", "ch_cancel")
	part, _, err := s.CreateRefund(ctx, newRefund(f, o.ID, "k1", 300))
	ok(t, err)
	_, err = s.SettleRefund(ctx, ladle.RefundSettlement{RestaurantID: rid, RefundID: part.ID, Attempt: 1,
		Succeeded: true, ProviderRefundID: "re_part", Now: now})
	ok(t, err)

	_, err = s.SetOrderStatus(ctx, rid, o.ID, ladle.StatusCancelled, "kitchen fire", 0, now.Add(time.Minute))
	ok(t, err)
	list, tot, err := s.Refunds(ctx, rid, o.ID)
	ok(t, err)
	if len(list) != 2 {
		t.Fatalf("refunds after cancel = %+v", list)
	}
	c := list[1]
	if c.RequestKey != ladle.RefundCancelKey || c.Source != ladle.RefundSourceCancel || c.Amount != RequestTotal-300 ||
		c.Status != ladle.RefundPending || c.Reason != "kitchen fire" || tot.Remaining != 0 {
		t.Fatalf("cancel refund = %+v, totals %+v", c, tot)
	}

	// Pay at pickup: cancelling refunds nothing.
	p := place(t, s, f, withEmail(f, "pickup-cancel@example.com"))
	_, err = s.SetOrderStatus(ctx, rid, p.ID, ladle.StatusCancelled, "closed", 0, now)
	ok(t, err)
	list, _, err = s.Refunds(ctx, rid, p.ID)
	ok(t, err)
	if len(list) != 0 {
		t.Fatalf("pay-at-pickup cancel refunded: %+v", list)
	}
}

// testRefundConcurrentBound: many refunds with different keys race for an
// order; together they never exceed what was captured.
func testRefundConcurrentBound(t *testing.T, e *env) {
	s, f := e.seed()
	o := captured(t, s, f, "race@example.com", "ch_race")
	const n = 8
	each := RequestTotal / 3 // three fit, not four
	var wg sync.WaitGroup
	var mu sync.Mutex
	made, exceeded := 0, 0
	for i := range n {
		wg.Go(func() {
			_, _, err := s.CreateRefund(ctx, newRefund(f, o.ID, fmt.Sprintf("race-%d", i), each))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				made++
			case ladle.ErrorCode(err) == ladle.CodeRefundExceeds:
				exceeded++
			default:
				t.Errorf("refund %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if made != 3 || exceeded != n-3 {
		t.Fatalf("made %d refunds, refused %d; want 3 and %d", made, exceeded, n-3)
	}
}

func testRefundProviderReported(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	o := captured(t, s, f, "dash@example.com", "ch_dash")
	p := ladle.ProviderRefund{ChargeID: "ch_dash", RefundID: "re_dash", Amount: 700, Currency: "usd", Now: now}
	r, created, err := s.RecordProviderRefund(ctx, p)
	ok(t, err)
	if !created || r.Status != ladle.RefundSucceeded || r.Source != ladle.RefundSourceProvider || r.Amount != 700 {
		t.Fatalf("reported refund = %+v", r)
	}
	// Reported again: nothing more.
	_, created, err = s.RecordProviderRefund(ctx, p)
	ok(t, err)
	if created {
		t.Fatal("a duplicate report made a second refund")
	}
	// Our own pending refund, reported before our call returned: settled, not doubled.
	own, _, err := s.CreateRefund(ctx, newRefund(f, o.ID, "k1", 200))
	ok(t, err)
	r, created, err = s.RecordProviderRefund(ctx, ladle.ProviderRefund{ChargeID: "ch_dash", RefundID: "re_own", Amount: 200, LadleRefundID: own.ID, Now: now})
	ok(t, err)
	if created || r.ID != own.ID || r.Status != ladle.RefundSucceeded {
		t.Fatalf("own refund reported = %+v created %v", r, created)
	}
	got, err := s.Order(ctx, o.ID)
	ok(t, err)
	if got.Refunded != 900 {
		t.Fatalf("refunded = %d, want 900", got.Refunded)
	}
	if evs := eventsOf(events(t, s, rid), ladle.EventRefundCreated); len(evs) != 2 {
		t.Fatalf("refund.created events = %d, want 2", len(evs))
	}
	_, _, err = s.RecordProviderRefund(ctx, ladle.ProviderRefund{ChargeID: "ch_unknown", RefundID: "re_x", Amount: 1, Now: now})
	wantNotFound(t, err)
}

func testRefundScoped(t *testing.T, e *env) {
	s, f := e.seed()
	o := captured(t, s, f, "scoped@example.com", "ch_scoped")
	r, _, err := s.CreateRefund(ctx, newRefund(f, o.ID, "k1", 100))
	ok(t, err)
	in := newRefund(f, o.ID, "k2", 100)
	in.RestaurantID = f.Other.ID
	_, _, err = s.CreateRefund(ctx, in)
	wantNotFound(t, err)
	_, _, err = s.Refunds(ctx, f.Other.ID, o.ID)
	wantNotFound(t, err)
	_, err = s.Refund(ctx, f.Other.ID, r.ID)
	wantNotFound(t, err)
	_, _, err = s.RetryRefund(ctx, f.Other.ID, r.ID, 1, now)
	wantNotFound(t, err)
}

// testRefundLedger: the test processor's ledger keeps one refund per key,
// whichever of many concurrent callers asks.
func testRefundLedger(t *testing.T, e *env) {
	s := e.open(t)
	l, isLedger := s.(payment.TestRefundLedger)
	if !isLedger {
		t.Fatalf("%T does not keep the test processor's refunds", s)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]int{}
	for i := range 8 {
		wg.Go(func() {
			got, _, err := l.RecordTestRefund(ctx, payment.TestRefund{Key: "refund:x:1", ID: fmt.Sprintf("re_%d", i),
				ChargeID: "ch_1", Amount: 100, Currency: "USD", Created: now})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[got.ID]++
			mu.Unlock()
		})
	}
	wg.Wait()
	all, err := l.TestRefunds(ctx)
	ok(t, err)
	if len(ids) != 1 || len(all) != 1 || all[0].Amount != 100 {
		t.Fatalf("one key became refunds %v (ledger %+v)", ids, all)
	}
}
