package ordering

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
)

// paid places a card order through svc and returns it, captured.
func (b *bundle) paid(t *testing.T, svc *Service, email string) *ladle.Order {
	t.Helper()
	req := b.cardRequest()
	req.Customer.Email = email
	res, err := svc.Place(context.Background(), b.fix.Restaurant, "key-"+email, req)
	if err != nil || res.Order == nil {
		t.Fatalf("place: %v", err)
	}
	return res.Order
}

// ledgerRefunds counts the refunds the test processor made (from the
// database: every process's).
func ledgerRefunds(t *testing.T, r *payment.TestRefunder) []payment.TestRefund {
	t.Helper()
	list, err := r.Refunds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestRefundDoubleClick: concurrent requests with one key, then a retry of
// it, make one refund row and one processor call.
func TestRefundDoubleClick(t *testing.T) {
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		refunder := payment.NewTestRefunder(b.store)
		svc := b.service(WithRefunder(refunder))
		o := b.paid(t, svc, "double@example.com")
		rid := b.fix.Restaurant.ID

		var wg sync.WaitGroup
		ids := make([]string, 8)
		for i := range ids {
			wg.Go(func() {
				r, err := svc.Refund(ctx, rid, o.ID, RefundInput{Key: "form-nonce-1", Amount: 500, Reason: "cold"})
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = r.ID
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("one key, several refunds: %v", ids)
			}
		}
		again, err := svc.Refund(ctx, rid, o.ID, RefundInput{Key: "form-nonce-1", Amount: 500, Reason: "cold"})
		if err != nil || again.ID != ids[0] || again.Status != ladle.RefundSucceeded {
			t.Fatalf("retried request = %+v, %v", again, err)
		}
		if refunder.Calls() != 1 || len(ledgerRefunds(t, refunder)) != 1 {
			t.Fatalf("processor calls %d, refunds %d; want 1 and 1", refunder.Calls(), len(ledgerRefunds(t, refunder)))
		}
		got, _ := b.store.Order(ctx, o.ID)
		if got.Refunded != 500 {
			t.Fatalf("order refunded %d, want 500", got.Refunded)
		}
		// More than is left: 422.
		_, err = svc.Refund(ctx, rid, o.ID, RefundInput{Key: "form-nonce-2", Amount: o.Total})
		if ladle.ErrorCode(err) != ladle.CodeRefundExceeds || ladle.ErrorKind(err) != ladle.KindUnprocessable {
			t.Fatalf("refund past the captured amount: %v", err)
		}
		if refunder.Calls() != 1 {
			t.Fatalf("a refused request called the processor")
		}
	})
}

// TestRefundLostResponseRecoveredByAnotherProcess: the processor refunds
// but the answer is lost; another process's recovery loop asks again with
// the same key and records it. One refund at the processor.
func TestRefundLostResponseRecoveredByAnotherProcess(t *testing.T) {
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		api := payment.NewTestRefunder(b.store)
		worker := payment.NewTestRefunder(b.store) // another process: its own counters, the same ledger
		apiSvc := b.service(WithRefunder(api))
		workerSvc := b.service(WithRefunder(worker))
		o := b.paid(t, apiSvc, "lost@example.com")
		rid := b.fix.Restaurant.ID

		api.LoseNext(1)
		r, err := apiSvc.Refund(ctx, rid, o.ID, RefundInput{Key: "k", Amount: 700})
		if err != nil || r.Status != ladle.RefundPending {
			t.Fatalf("lost refund = %+v, %v; want pending", r, err)
		}
		if n, err := workerSvc.RecoverRefunds(ctx, workerSvc.StaleLock()); n != 0 || err != nil || worker.Calls() != 0 {
			t.Fatalf("a fresh refund was recovered (%d, %v): its request may still be asking", n, err)
		}
		b.clock.Add(workerSvc.StaleLock() + time.Second)
		if n, err := workerSvc.RecoverRefunds(ctx, workerSvc.StaleLock()); n != 1 || err != nil {
			t.Fatalf("recovery settled %d, %v; want 1", n, err)
		}
		got, err := b.store.Refund(ctx, rid, r.ID)
		if err != nil || got.Status != ladle.RefundSucceeded || got.ProviderRefundID == "" {
			t.Fatalf("recovered refund = %+v, %v", got, err)
		}
		if list := ledgerRefunds(t, api); len(list) != 1 || list[0].ID != got.ProviderRefundID || list[0].Amount != 700 {
			t.Fatalf("processor refunds = %+v, want the one", list)
		}
		if api.Calls()+worker.Calls() != 2 {
			t.Fatalf("calls: api %d worker %d, want 1 each", api.Calls(), worker.Calls())
		}
		// Nothing left to recover.
		b.clock.Add(time.Hour)
		if n, _ := workerSvc.RecoverRefunds(ctx, workerSvc.StaleLock()); n != 0 || worker.Calls() != 1 {
			t.Fatalf("a settled refund was recovered again")
		}
	})
}

// TestRefundRefusedThenRetried: a refused refund is failed with the reason
// and frees its amount; a retry (clicked twice) is one new attempt under a
// new key, and succeeds.
func TestRefundRefusedThenRetried(t *testing.T) {
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		refunder := payment.NewTestRefunder(b.store)
		svc := b.service(WithRefunder(refunder))
		o := b.paid(t, svc, "refused@example.com")
		rid := b.fix.Restaurant.ID

		refunder.RefuseNext(1)
		r, err := svc.Refund(ctx, rid, o.ID, RefundInput{Key: "k", Amount: 900})
		if err != nil || r.Status != ladle.RefundFailed || r.FailureReason == "" {
			t.Fatalf("refused refund = %+v, %v", r, err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := svc.RetryRefund(ctx, rid, r.ID, 1); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, _ := b.store.Refund(ctx, rid, r.ID)
		if got.Status != ladle.RefundSucceeded || got.Attempt != 2 {
			t.Fatalf("retried refund = %+v", got)
		}
		if refunder.Calls() != 2 || len(ledgerRefunds(t, refunder)) != 1 {
			t.Fatalf("calls %d, refunds made %d; want 2 calls (refused, retried) and 1 refund", refunder.Calls(), len(ledgerRefunds(t, refunder)))
		}
	})
}

// TestCancelRefundsRest: cancelling a card order that was partly refunded
// refunds the rest, once, whoever asks.
func TestCancelRefundsRest(t *testing.T) {
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		refunder := payment.NewTestRefunder(b.store)
		svc := b.service(WithRefunder(refunder))
		o := b.paid(t, svc, "cancel@example.com")
		rid := b.fix.Restaurant.ID
		if _, err := svc.Refund(ctx, rid, o.ID, RefundInput{Key: "k", Lines: []ladle.RefundLine{{Position: 1, Quantity: 1}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.store.SetOrderStatus(ctx, rid, o.ID, ladle.StatusCancelled, "closing early", 0, b.clock.Now()); err != nil {
			t.Fatal(err)
		}
		r, err := svc.RefundCancelled(ctx, rid, o.ID)
		if err != nil || r == nil || r.Status != ladle.RefundSucceeded {
			t.Fatalf("cancel refund = %+v, %v", r, err)
		}
		if again, _ := svc.RefundCancelled(ctx, rid, o.ID); again.ID != r.ID || refunder.Calls() != 2 {
			t.Fatalf("a second ask called the processor again (%d calls)", refunder.Calls())
		}
		got, _ := b.store.Order(ctx, o.ID)
		if got.Refunded != o.Total {
			t.Fatalf("refunded %d of %d", got.Refunded, o.Total)
		}
	})
}
