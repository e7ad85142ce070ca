package ordering

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
)

// Refunds. A refund is a row first (ladle.RefundStore.CreateRefund: pending,
// bounded by what is left of the captured payment, unique per order and
// request key), then one call to the processor with the refund's own key
// (Refund.ProviderKey), then the answer recorded (SettleRefund: succeeded
// with refund.created in the outbox, or failed). So:
//
//   - a double click or a retried request finds the row its first request
//     made and does not call the processor again; only the request that
//     created the row calls it;
//   - a call whose outcome was lost (timeout, broken connection, a process
//     that died) leaves the refund pending, and RecoverRefunds asks the
//     processor again with the same key: it refunds at most once;
//   - a refused refund is failed, with the processor's reason, until staff
//     retry it: a new attempt with a new key (the processor remembers the
//     refusal under the old one).

// WithRefunder sets the processor's refunds API. Default: the payment
// provider, if it implements ladle.Refunder.
func WithRefunder(r ladle.Refunder) Option { return func(s *Service) { s.refunder = r } }

// WithConnectedAccount sets how a restaurant's connected account at the
// processor is found, for its refunds (RefundRequest.Account). Default:
// none.
func WithConnectedAccount(f func(ctx context.Context, restaurantID int64) string) Option {
	return func(s *Service) { s.accountOf = f }
}

// RefundInput is a refund asked for by staff or the staff API.
type RefundInput struct {
	// Key makes the request idempotent within the order: the staff form's
	// nonce, or the API's Idempotency-Key. Required.
	Key    string
	Amount ladle.Money        // an amount, or
	Lines  []ladle.RefundLine // lines (position and quantity)
	Reason string
	Source string // ladle.RefundSourceStaff or ladle.RefundSourceAPI
	By     int64  // the staff user
}

// Refund refunds part of the order's captured card payment (or all that is
// left of it). It returns the refund as it stands: succeeded, failed (with
// the processor's reason), or pending when the processor's answer is not
// known yet or another request with the same key is still asking. Errors:
// validation_failed, refund_exceeds_captured (422, with "remaining"),
// not_refundable (409), not_found (the order is not the restaurant's).
func (s *Service) Refund(ctx context.Context, restaurantID int64, orderID string, in RefundInput) (*ladle.Refund, error) {
	if in.Key == "" {
		return nil, ladle.Errorf(ladle.KindInvalid, ladle.CodeIdempotencyKeyMissing, "a refund needs an idempotency key")
	}
	if len(in.Key) > MaxKeyLen {
		return nil, ladle.Errorf(ladle.KindInvalid, ladle.CodeValidation, "the idempotency key is longer than %d characters", MaxKeyLen)
	}
	if in.Source == "" {
		in.Source = ladle.RefundSourceStaff
	}
	// Like a placement: once asked, the refund runs to its end even if the
	// client goes away, bounded by the order timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.orderTimeout)
	defer cancel()
	r, created, err := s.store.CreateRefund(ctx, ladle.NewRefund{ID: uuid.Must(uuid.NewV7()).String(),
		RestaurantID: restaurantID, OrderID: orderID, RequestKey: in.Key, Amount: in.Amount, Lines: in.Lines,
		Source: in.Source, Reason: in.Reason, CreatedBy: in.By, Now: s.now()})
	if err != nil {
		return nil, err
	}
	if !created {
		return r, nil // the first request with this key asks the processor
	}
	return s.callRefund(ctx, r), nil
}

// RefundCancelled asks the processor for the refund a cancellation of the
// order recorded (SetOrderStatus), if it is still pending and untried: the
// request that cancelled calls this once. It returns that refund, nil when
// the order had nothing to refund.
func (s *Service) RefundCancelled(ctx context.Context, restaurantID int64, orderID string) (*ladle.Refund, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.orderTimeout)
	defer cancel()
	refunds, _, err := s.store.Refunds(ctx, restaurantID, orderID)
	if err != nil {
		return nil, err
	}
	for i := range refunds {
		r := &refunds[i]
		if r.RequestKey != ladle.RefundCancelKey {
			continue
		}
		if r.Status == ladle.RefundPending && r.Attempt == 1 && r.Recoveries == 0 {
			return s.callRefund(ctx, r), nil
		}
		return r, nil
	}
	return nil, nil
}

// RetryRefund retries a failed refund at attempt (the attempt the staff
// member saw failing): a new attempt with a new processor key. A second
// click for the same attempt changes nothing and returns the refund as it
// stands.
func (s *Service) RetryRefund(ctx context.Context, restaurantID int64, refundID string, attempt int) (*ladle.Refund, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.orderTimeout)
	defer cancel()
	r, retried, err := s.store.RetryRefund(ctx, restaurantID, refundID, attempt, s.now())
	if err != nil || !retried {
		return r, err
	}
	return s.callRefund(ctx, r), nil
}

// callRefund asks the processor for a pending refund and records its
// answer. An unknown outcome (or a failure to record the answer) leaves the
// refund pending for RecoverRefunds, and returns it as such.
func (s *Service) callRefund(ctx context.Context, r *ladle.Refund) *ladle.Refund {
	st, known := s.askRefund(ctx, r)
	if !known {
		return r
	}
	settled, err := s.store.SettleRefund(ctx, st)
	if err != nil {
		s.log.Error("record refund outcome", "refund", r.ID, "order", r.OrderID, "err", err)
		return r
	}
	return settled
}

// askRefund calls the processor for r's current attempt; known is false
// when the outcome is not known.
func (s *Service) askRefund(ctx context.Context, r *ladle.Refund) (st ladle.RefundSettlement, known bool) {
	st = ladle.RefundSettlement{RestaurantID: r.RestaurantID, RefundID: r.ID, Attempt: r.Attempt}
	if s.refunder == nil {
		s.log.Error("refund asked for, but the payment provider cannot refund", "refund", r.ID)
		return st, false
	}
	account := ""
	if s.accountOf != nil {
		account = s.accountOf(ctx, r.RestaurantID)
	}
	cctx, cancel := context.WithTimeout(ctx, s.chargeTimeout)
	res, err := s.refunder.Refund(cctx, ladle.RefundRequest{Key: r.ProviderKey, ChargeID: r.ChargeID,
		Amount: r.Amount, Currency: r.Currency, Account: account, Reason: r.Reason})
	cancel()
	st.Now = s.now()
	switch {
	case err == nil:
		st.Succeeded, st.ProviderRefundID = true, res.RefundID
		return st, true
	case ladle.ErrorCode(err) == ladle.CodeRefundFailed:
		var e *ladle.Error
		errors.As(err, &e)
		st.FailureReason = e.Message
		return st, true
	default:
		s.log.Warn("refund outcome unknown", "refund", r.ID, "order", r.OrderID, "err", err)
		return st, false
	}
}

// RecoverRefunds asks the processor again, with the same key, for refunds
// pending longer than minAge (their call's answer was lost, or the process
// died), and records the answers. Each attempt that stays unknown backs off
// (retryBackoff); past ProviderKeyLifetime the key may be forgotten by the
// processor, so the refund is failed with a reason telling staff to check
// the processor's dashboard before retrying. It returns how many refunds it
// settled and the first error of the round.
func (s *Service) RecoverRefunds(ctx context.Context, minAge time.Duration) (int, error) {
	now := s.now()
	refunds, err := s.store.PendingRefunds(ctx, now.Add(-minAge), now, recoveryBatch)
	if err != nil {
		return 0, err
	}
	n := 0
	var first error
	for i := range refunds {
		r := &refunds[i]
		if ctx.Err() != nil {
			break
		}
		if now.Sub(r.UpdatedAt) >= ProviderKeyLifetime {
			_, err := s.store.SettleRefund(ctx, ladle.RefundSettlement{RestaurantID: r.RestaurantID, RefundID: r.ID,
				Attempt: r.Attempt, FailureReason: AttentionRefundUnconfirmed, Now: now})
			if err != nil && first == nil {
				first = err
			}
			continue
		}
		st, known := s.askRefund(ctx, r)
		if known {
			if _, err := s.store.SettleRefund(ctx, st); err == nil {
				n++
				continue
			} else if first == nil {
				first = err
			}
		}
		if err := s.store.RefundAttempted(ctx, r.ID, now.Add(retryBackoff(r.Recoveries))); err != nil && first == nil {
			first = err
		}
	}
	return n, first
}

// AttentionRefundUnconfirmed is the failure reason of a refund the
// processor never confirmed within ProviderKeyLifetime.
const AttentionRefundUnconfirmed = "the card processor never confirmed this refund: check its dashboard before retrying"
