package ordering

import (
	"context"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/payment/paymenttest"
)

// TestRecoveryKeepsGoing: a pending payment that cannot be settled (its
// order was changed under it) does not stop the recovery round; it is
// retried later with backoff while the others settle, and after the
// provider's key lifetime it is given up with the order flagged on the
// staff board.
func TestRecoveryKeepsGoing(t *testing.T) {
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		svc := b.service()
		place := func(email, token string) string {
			t.Helper()
			req := b.cardRequest()
			req.Customer.Email = email
			req.Payment.Token = token
			_, err := svc.Place(ctx, b.fix.Restaurant, "key-"+email, req)
			if ladle.ErrorCode(err) != ladle.CodePaymentPending {
				t.Fatalf("place %s: %v, want payment_pending", email, err)
			}
			e := err.(*ladle.Error)
			return e.Extra["order_id"].(string)
		}
		poisoned := place("poison@example.com", payment.TokenTimeout)
		b.clock.Add(time.Second)
		good := place("good@example.com", payment.TokenTimeout)
		// The poisoned order left pending_payment behind its payment's back.
		if _, err := b.store.DB().ExecContext(ctx, `UPDATE orders SET status = 'cancelled' WHERE id = $1`, poisoned); err != nil {
			t.Fatal(err)
		}

		b.clock.Add(svc.StaleLock() + time.Second)
		n, err := svc.RecoverPayments(ctx, svc.StaleLock())
		if n != 1 || err == nil {
			t.Fatalf("first round settled %d (err %v), want 1 and the poisoned row's error", n, err)
		}
		if o, _ := b.store.Order(ctx, good); o.Status != ladle.StatusPlaced {
			t.Fatalf("the good order behind the poisoned one = %s", o.Status)
		}
		attempts := func() int {
			t.Helper()
			ps, err := b.store.Payments(ctx, poisoned)
			if err != nil || len(ps) != 1 {
				t.Fatalf("payments of the poisoned order: %v, %v", ps, err)
			}
			return ps[0].Attempts
		}
		tried := attempts()
		if n, err := svc.RecoverPayments(ctx, svc.StaleLock()); n != 0 || err != nil || attempts() != tried {
			t.Fatalf("immediate second round: %d, %v, %d more attempts; want the poisoned row backed off", n, err, attempts()-tried)
		}
		b.clock.Add(time.Minute)
		if _, err := svc.RecoverPayments(ctx, svc.StaleLock()); err == nil || attempts() != tried+1 {
			t.Fatalf("after its backoff the poisoned row is not retried (err %v)", err)
		}
		// Recovery asked the provider (Lookup): both charges were made by
		// the first calls, and none was made again.
		if c, n := paymenttest.Charges(t, b.pay), paymenttest.Calls(t, b.pay); c != 2 || n != 2 {
			t.Fatalf("charges %d, Charge calls %d; want 2 and 2", c, n)
		}

		b.clock.Add(ProviderKeyLifetime)
		if _, err := svc.RecoverPayments(ctx, svc.StaleLock()); err != nil {
			t.Fatalf("give-up round: %v", err)
		}
		o, err := b.store.Order(ctx, poisoned)
		if err != nil || o.Attention != AttentionPaymentUnconfirmed {
			t.Fatalf("given-up order = %+v, %v", o, err)
		}
		tried = attempts()
		b.clock.Add(time.Hour)
		if _, err := svc.RecoverPayments(ctx, svc.StaleLock()); err != nil || attempts() != tried {
			t.Fatalf("a given-up payment was tried again (%v)", err)
		}
	})
}
