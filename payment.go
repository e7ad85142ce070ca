package ladle

import (
	"context"
	"errors"
)

// PaymentProvider takes money. Implementations: internal/payment (the
// built-in test provider). A real processor (Stripe, Adyen) fits the same
// shape because all of them honour an idempotency key.
type PaymentProvider interface {
	// Charge charges req.Amount to req.Token. Calling Charge again with the
	// same req.Key returns the first call's outcome and never charges twice.
	//
	// Outcomes: a ChargeResult on success; an *Error of KindPaymentRequired
	// with code payment_declined when the card is declined (final);
	// ErrPaymentUnknown when the call timed out or the connection broke, so
	// the charge may or may not have happened (retry with the same key to
	// find out); any other error is treated like ErrPaymentUnknown.
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)
}

// ChargeRequest is one charge.
type ChargeRequest struct {
	Key         string // idempotency key: PaymentKey(order id)
	Amount      Money
	Currency    string
	Token       string
	Description string
}

// ChargeResult is a successful charge.
type ChargeResult struct {
	ChargeID string
}

// ErrPaymentUnknown means the outcome of a charge is not known yet.
var ErrPaymentUnknown = errors.New("payment outcome unknown")

// PaymentResult is what the ordering service tells the store about a
// pending payment: captured (with the charge id) or declined (with a reason).
type PaymentResult struct {
	Captured      bool
	ChargeID      string
	FailureReason string
}
