package ordering

import (
	"context"
	"time"

	"github.com/ladle-dev/ladle"
)

// RecoverPayments settles card payments that have been pending for longer
// than minAge: charges whose response was lost, or whose process died between
// creating the order and settling it. It calls the provider again with the
// payment's own idempotency key, so a card that was charged is not charged
// again; the provider's answer settles the order. It returns how many
// payments it settled.
func (s *Service) RecoverPayments(ctx context.Context, minAge time.Duration) (int, error) {
	pays, err := s.store.PendingPayments(ctx, s.now().Add(-minAge), 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range pays {
		if _, err := s.chargePayment(ctx, &pays[i], pays[i].OrderID); err != nil {
			if ladle.ErrorCode(err) != ladle.CodePaymentPending {
				return n, err
			}
			continue // still unknown: next round
		}
		n++
	}
	return n, nil
}

// Run is the ordering service's background loop: it recovers pending
// payments every interval and reaps expired idempotency keys and order
// fingerprints. It returns when ctx is done.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	lastReap := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.RecoverPayments(ctx, 2*s.chargeTimeout); err != nil {
			s.log.Error("recover payments", "err", err)
		} else if n > 0 {
			s.log.Info("recovered payments", "settled", n)
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
