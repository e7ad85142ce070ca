package ordering

import (
	"context"
	"errors"
	"time"

	"github.com/ladle-dev/ladle"
)

// ProviderKeyLifetime is how long the payment provider remembers an
// idempotency key (Stripe: 24 hours). Past it a retried charge could be a
// new charge, so the recovery loop stops retrying and asks staff.
const ProviderKeyLifetime = 24 * time.Hour

// recoveryBatch bounds one round of RecoverPayments.
const recoveryBatch = 100

// AttentionPaymentUnconfirmed is Order.Attention for an order whose card
// payment the provider never confirmed within ProviderKeyLifetime.
const AttentionPaymentUnconfirmed = "payment_unconfirmed"

// RecoverPayments settles card payments that have been pending for longer
// than minAge: charges whose response was lost, whose process died between
// creating the order and settling it, or that waited for the guest's
// action. It asks the provider (Lookup) what became of the charge and
// settles the order as the provider has it; only if the provider never saw
// the charge does it charge, with the payment's own idempotency key, so a
// card is never charged twice. Any process sharing the database (api or
// worker, after any restart) may run it: the settlement is conditional on
// the payment still being pending, so one of them settles it.
//
// A payment whose attempt fails (outcome still unknown, provider or
// database error) is skipped and retried later with its own exponential
// backoff (retryBackoff); the store hands out due payments least recently
// tried first, so one poisoned row never starves the rest. A payment still
// unknown after ProviderKeyLifetime is given up: its order is flagged for
// staff (AttentionPaymentUnconfirmed) and shows on the board.
//
// It returns how many payments it settled (or found settled by another
// process at the same moment) and the first error of the round (the others are logged); it never stops at an error.
func (s *Service) RecoverPayments(ctx context.Context, minAge time.Duration) (int, error) {
	now := s.now()
	pays, err := s.store.PendingPayments(ctx, now.Add(-minAge), now, recoveryBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	note := func(err error) {
		if first == nil {
			first = err
		}
	}
	for i := range pays {
		p := &pays[i]
		if ctx.Err() != nil {
			break
		}
		if now.Sub(p.CreatedAt) >= ProviderKeyLifetime {
			if err := s.store.GiveUpPayment(ctx, p.ID, AttentionPaymentUnconfirmed, now); err != nil {
				note(err)
				continue
			}
			s.log.Error("payment outcome still unknown after the provider's key lifetime; order flagged for staff",
				"order", p.OrderID, "payment", p.ID, "attempts", p.Attempts)
			continue
		}
		_, _, err := s.resolve(ctx, p, "")
		if err == nil {
			n++
			continue
		}
		var action *actionRequired
		if !errors.As(err, &action) && ladle.ErrorCode(err) != ladle.CodePaymentPending {
			s.log.Warn("recover payment", "order", p.OrderID, "err", err)
			note(err)
		}
		if err := s.store.PaymentAttempted(ctx, p.ID, now.Add(retryBackoff(p.Attempts))); err != nil {
			note(err)
		}
	}
	return n, first
}

// retryBackoff is the wait after the attempts-th failed recovery attempt
// of one payment: 10s doubling, at most 30 minutes.
func retryBackoff(attempts int) time.Duration {
	d := 10 * time.Second
	for i := 0; i < attempts && d < 30*time.Minute; i++ {
		d *= 2
	}
	return min(d, 30*time.Minute)
}

// Run is the ordering service's background loop: it releases the keys an
// earlier run of this holder left locked, then recovers pending payments
// and refunds (refund.go) every interval and reaps expired idempotency keys and order fingerprints.
// It returns when ctx is done.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	if err := s.ReleaseOwnKeys(ctx); err != nil {
		s.log.Warn("release idempotency keys of an earlier run", "err", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	lastReap := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Older than the stale-lock time: no live request still holds it.
		if n, err := s.RecoverPayments(ctx, s.staleLock); err != nil {
			s.log.Error("recover payments", "settled", n, "err", err)
		} else if n > 0 {
			s.log.Info("recovered payments", "settled", n)
		}
		if n, err := s.RecoverRefunds(ctx, s.staleLock); err != nil {
			s.log.Error("recover refunds", "settled", n, "err", err)
		} else if n > 0 {
			s.log.Info("recovered refunds", "settled", n)
		}
		if now := s.now(); now.Sub(lastReap) > 10*time.Minute {
			lastReap = now
			if n, err := s.store.ReapIdempotencyKeys(ctx, now.Add(-ladle.IdempotencyKeyTTL)); err != nil {
				s.log.Error("reap idempotency keys", "err", err)
			} else if n > 0 {
				s.log.Info("reaped idempotency keys", "deleted", n)
			}
		}
	}
}
