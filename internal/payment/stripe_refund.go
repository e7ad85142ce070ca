package payment

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/stripe/stripe-go/v82"

	"github.com/ladle-dev/ladle"
)

// Refund implements ladle.Refunder: POST /v1/refunds for the PaymentIntent
// req.ChargeID, with Idempotency-Key req.Key (one per refund attempt, so a
// retried call is answered with the first refund) on the restaurant's
// connected account when it has one. The refund's metadata names Ladle's
// refund (ladle_refund_id), so Stripe's refund webhooks, which can arrive
// before this call returns, settle that refund instead of recording another.
func (s *Stripe) Refund(ctx context.Context, req ladle.RefundRequest) (ladle.RefundResult, error) {
	if req.Key == "" {
		return ladle.RefundResult{}, errors.New("payment: refund without an idempotency key")
	}
	p := &stripe.RefundCreateParams{
		PaymentIntent: stripe.String(req.ChargeID),
		Amount:        stripe.Int64(int64(req.Amount)),
	}
	p.SetIdempotencyKey(req.Key)
	if id := LadleRefundID(req.Key); id != "" {
		p.AddMetadata("ladle_refund_id", id)
	}
	if req.Reason != "" {
		p.AddMetadata("reason", truncate(req.Reason, 450))
	}
	if req.Account != "" {
		p.SetStripeAccount(req.Account)
	}
	rf, err := s.client.V1Refunds.Create(ctx, p)
	if err != nil {
		return ladle.RefundResult{}, refundError(err)
	}
	switch rf.Status {
	case stripe.RefundStatusFailed, stripe.RefundStatusCanceled:
		return ladle.RefundResult{}, refundRefused(nonEmpty(string(rf.FailureReason), "the refund was "+string(rf.Status)))
	}
	// succeeded, or pending at the bank: Stripe has taken the refund and
	// the money is on its way back; a later failure arrives as a
	// charge.refund.updated webhook.
	return ladle.RefundResult{RefundID: rf.ID}, nil
}

// LadleRefundID is Ladle's refund id in a refund's provider key
// ("refund:<id>:<attempt>", ladle.RefundProviderKey), or "".
func LadleRefundID(key string) string {
	rest, ok := strings.CutPrefix(key, "refund:")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	return id
}

// refundError maps a failed refund call: Stripe refusing the request (an
// invalid request: already refunded in full, amount above what is left, a
// disputed charge) is final for this key; anything else leaves the outcome
// unknown, to be asked again with the same key.
func refundError(err error) error {
	var se *stripe.Error
	if errors.As(err, &se) {
		if se.Type == stripe.ErrorTypeInvalidRequest || se.Type == stripe.ErrorTypeCard {
			return refundRefused(nonEmpty(se.Msg, "Stripe refused the refund"))
		}
		return fmt.Errorf("payment: stripe refund %d %s %s (request %s): %w", se.HTTPStatusCode, se.Type, se.Code, se.RequestID, ladle.ErrPaymentUnknown)
	}
	return fmt.Errorf("payment: stripe refund: %v: %w", err, ladle.ErrPaymentUnknown)
}

func refundRefused(msg string) error {
	return &ladle.Error{Kind: ladle.KindPaymentRequired, Code: ladle.CodeRefundFailed, Message: msg}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
