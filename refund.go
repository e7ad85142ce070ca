package ladle

import (
	"context"
	"strconv"
	"time"
)

// Refunder gives captured money back. The built-in test provider
// (internal/payment) implements it; a real processor does the same with its
// refunds API. It is separate from PaymentProvider so a provider that cannot
// refund still places orders (refunds then fail, visibly).
type Refunder interface {
	// Refund refunds req.Amount of the charge req.ChargeID. Calling it
	// again with the same req.Key returns the first call's outcome and
	// never refunds twice.
	//
	// Outcomes: a RefundResult on success; an *Error of
	// KindPaymentRequired with code refund_failed when the processor
	// refused the refund (final for this key: a retry needs a new key);
	// ErrPaymentUnknown (or any other error) when the outcome is not known
	// (retry with the same key to find out).
	Refund(ctx context.Context, req RefundRequest) (RefundResult, error)
}

// RefundRequest is one refund call.
type RefundRequest struct {
	Key      string // idempotency key: Refund.ProviderKey
	ChargeID string
	Amount   Money
	Currency string
	// Account is the restaurant's connected account at the processor
	// ("" for the platform's own).
	Account string
	Reason  string
}

// RefundResult is a successful refund.
type RefundResult struct {
	RefundID string
}

// RefundStatus is where a refund is.
//
//	pending ──> succeeded
//	   │  ▲
//	   ▼  │ (staff retry: a new attempt, a new provider key)
//	 failed
//
// pending: asked for, the processor's answer not recorded yet (the call is
// in flight, or its outcome was lost and the recovery loop asks again with
// the same key). succeeded: the processor refunded it; refund.created was
// written. failed: the processor refused; staff see why and may retry.
type RefundStatus string

const (
	RefundPending   RefundStatus = "pending"
	RefundSucceeded RefundStatus = "succeeded"
	RefundFailed    RefundStatus = "failed"
)

// Refund sources.
const (
	RefundSourceCancel   = "cancel"   // staff cancelled a card-paid order: the rest, in full
	RefundSourceStaff    = "staff"    // a partial refund from the staff order page
	RefundSourceAPI      = "api"      // the staff API
	RefundSourceProvider = "provider" // made at the processor (its dashboard) and reported to us
)

// RefundCancelKey is the request key of the refund a cancellation makes:
// one per order, so a cancel retried or clicked twice refunds once.
const RefundCancelKey = "cancel"

// Refund is money given back on one card payment.
type Refund struct {
	ID           string       `json:"id"` // UUIDv7
	RestaurantID int64        `json:"restaurant_id"`
	OrderID      string       `json:"order_id"`
	PaymentID    string       `json:"payment_id"`
	ChargeID     string       `json:"-"` // the captured payment's charge at the processor
	Amount       Money        `json:"amount"`
	Currency     string       `json:"currency"`
	Status       RefundStatus `json:"status"`
	Source       string       `json:"source"`
	Reason       string       `json:"reason,omitempty"`
	// Lines are the order lines refunded, when chosen by line.
	Lines []RefundLine `json:"lines,omitempty"`
	// RequestKey makes the request idempotent within the order: "cancel",
	// the staff form's nonce, or the API's Idempotency-Key.
	RequestKey string `json:"-"`
	// Attempt counts staff retries after a failure (1 first); each attempt
	// has its own ProviderKey "refund:<id>:<attempt>".
	Attempt          int    `json:"attempt"`
	ProviderKey      string `json:"-"`
	ProviderRefundID string `json:"provider_refund_id,omitempty"`
	FailureReason    string `json:"failure_reason,omitempty"`
	// Recoveries counts the recovery loop's attempts whose outcome stayed
	// unknown.
	Recoveries int       `json:"-"`
	CreatedBy  int64     `json:"-"` // staff user id, 0 for the system
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// RefundLine is a quantity of one order line (by position, from 0).
type RefundLine struct {
	Position int   `json:"position"`
	Quantity int   `json:"quantity"`
	Amount   Money `json:"amount"`
}

// RefundProviderKey is the processor idempotency key of a refund attempt.
func RefundProviderKey(refundID string, attempt int) string {
	return "refund:" + refundID + ":" + strconv.Itoa(attempt)
}

// LineRefundAmount is qty units of line l's share of what the guest paid
// for the order: the unit price scaled by (Total - Tip) / Subtotal, so the
// coupon discount and the tax are shared out in proportion (rounded down);
// the tip is not refunded by line (refund it as an amount).
func LineRefundAmount(o *Order, l OrderLine, qty int) Money {
	if o.Subtotal <= 0 || qty <= 0 {
		return 0
	}
	return Money(int64(l.UnitPrice) * int64(qty) * int64(o.Total-o.Tip) / int64(o.Subtotal))
}

// NewRefund is the input of CreateRefund.
type NewRefund struct {
	ID           string // pre-generated UUIDv7
	RestaurantID int64
	OrderID      string
	RequestKey   string
	Amount       Money
	Lines        []RefundLine // positions and quantities; amounts are filled by the store
	Source       string
	Reason       string
	CreatedBy    int64
	Now          time.Time
}

// RefundSettlement is the input of SettleRefund.
type RefundSettlement struct {
	RestaurantID int64
	RefundID     string
	Attempt      int // the attempt the answer is for; a later attempt ignores it
	// Succeeded with ProviderRefundID, or failed with FailureReason.
	Succeeded        bool
	ProviderRefundID string
	FailureReason    string
	Now              time.Time
}

// RefundTotals is an order's refund state.
type RefundTotals struct {
	Captured Money // the card payment captured
	Refunded Money // succeeded refunds
	Pending  Money // refunds asked for, not answered yet
	// Remaining is what may still be refunded: Captured - Refunded - Pending.
	Remaining Money
}

// Event type of a refund the processor made.
const EventRefundCreated = "refund.created" // payload: Refund (succeeded)

// Refund error codes.
const (
	CodeRefundExceeds       = "refund_exceeds_captured" // 422: more than captured minus refunded
	CodeRefundFailed        = "refund_failed"           // 402: the processor refused
	CodeRefundPending       = "refund_pending"          // 503: outcome not known yet
	CodeRefundNotRefundable = "not_refundable"          // 409: no captured card payment
)

// RefundStore keeps refunds. Every method is scoped to the restaurant where
// it takes one.
type RefundStore interface {
	// CreateRefund records a pending refund of the order's captured card
	// payment, in one transaction that locks the order: the amount is
	// in.Amount, or (when Lines are given) the lines' share of what was
	// paid (LineRefundAmount); it must be positive and at most Captured
	// minus every refund pending or succeeded (else 422
	// refund_exceeds_captured), and a line's quantity at most what is left
	// of it. No captured card payment: 409 not_refundable. A second call
	// with the same (order, RequestKey) returns the first refund and
	// created false, changing nothing.
	CreateRefund(ctx context.Context, in NewRefund) (r *Refund, created bool, err error)
	// SettleRefund records the processor's answer for a pending refund at
	// st.Attempt. Succeeded: the refund succeeds, the order's Refunded
	// grows, refund.created is appended. Failed: the refund fails with the
	// reason (its amount is free again). A refund no longer pending at
	// that attempt is returned unchanged.
	SettleRefund(ctx context.Context, st RefundSettlement) (*Refund, error)
	// RetryRefund moves a failed refund at attempt back to pending as
	// attempt+1, re-checking the bound (422 refund_exceeds_captured), and
	// reports retried true. A refund not failed at that attempt is
	// returned unchanged with retried false (a double click retries once).
	RetryRefund(ctx context.Context, restaurantID int64, refundID string, attempt int, now time.Time) (r *Refund, retried bool, err error)
	// Refunds lists the order's refunds, oldest first, with its totals.
	Refunds(ctx context.Context, restaurantID int64, orderID string) ([]Refund, RefundTotals, error)
	// Refund returns one refund of the restaurant.
	Refund(ctx context.Context, restaurantID int64, refundID string) (*Refund, error)
	// PendingRefunds lists pending refunds last changed before `before`
	// and due at now, least recently tried first (the recovery loop).
	PendingRefunds(ctx context.Context, before, now time.Time, limit int) ([]Refund, error)
	// RefundAttempted records a recovery attempt whose outcome stayed
	// unknown: next is when to try again.
	RefundAttempted(ctx context.Context, refundID string, next time.Time) error
	// RecordProviderRefund records a refund the processor reports (made in
	// its dashboard) on the order's captured payment, as succeeded, unless
	// a refund with that ProviderRefundID is recorded already (created
	// false, nothing changes). The amount is not bounded by what Ladle
	// knows: the processor is the truth.
	// If p.LadleRefundID names a pending refund of that order (the
	// processor's report of a refund Ladle asked for, arriving before its
	// answer), that refund is settled as succeeded instead.
	RecordProviderRefund(ctx context.Context, p ProviderRefund) (r *Refund, created bool, err error)
}

// ProviderRefund is a refund the processor reports.
type ProviderRefund struct {
	ChargeID      string
	RefundID      string // the processor's refund id
	Amount        Money
	Currency      string
	LadleRefundID string // from the refund's metadata, "" when made outside Ladle
	Reason        string
	Now           time.Time
}

// CanRefund reports whether the role may refund card payments by hand
// (partial refunds, retries). Any role that can cancel an order refunds it
// in full by cancelling.
func (r Role) CanRefund() bool { return r == RoleOwner || r == RoleManager }
