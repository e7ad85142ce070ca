package ladle

import (
	"context"
	"errors"
	"time"
)

// PaymentProvider takes money. Implementations live in internal/payment:
// the built-in test provider (the demo and the tests; its charges are kept
// in the database) and Stripe (PaymentIntents, optionally on a restaurant's
// connected account). Every provider honours an idempotency key.
//
// Refunds go through ladle.Refunder (refund.go), which both providers implement.
type PaymentProvider interface {
	// Name is the provider's name as --payment-provider spells it ("test",
	// "stripe").
	Name() string

	// Charge charges req.Amount to req.Token. Calling Charge again with the
	// same req.Key (and the same amount) never charges twice: it reports
	// the first call's charge as it stands now (a charge that needed the
	// guest's action may have succeeded since).
	//
	// Outcomes: a ChargeResult with Status ChargeSucceeded, or
	// ChargeRequiresAction when the guest must finish it in the browser
	// (3-D Secure; ClientSecret set); an *Error of KindPaymentRequired with
	// code payment_declined when the card is declined (final);
	// ErrPaymentUnknown when the call timed out or the connection broke, so
	// the charge may or may not have happened (retry with the same key to
	// find out); any other error is treated like ErrPaymentUnknown.
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)

	// Lookup asks the provider what became of the charge req would make
	// (found by req.Key or req.OrderID), without ever making one: the same
	// outcomes as Charge, or ErrChargeNotFound when the provider has no
	// such charge (the call never reached it; charging with the same key
	// is then safe). Recovery asks Lookup first.
	Lookup(ctx context.Context, req ChargeRequest) (ChargeResult, error)
}

// ChargeRequest is one charge.
type ChargeRequest struct {
	Key          string // idempotency key: PaymentKey(order id)
	OrderID      string // sent as metadata, found again by Lookup
	RestaurantID int64  // sent as metadata
	// Account is the restaurant's connected account at the provider
	// (Stripe Connect, "acct_…"), "" for the platform's own.
	Account string
	Amount  Money
	// ApplicationFee is the platform's cut, taken from a charge on a
	// connected account (0: none).
	ApplicationFee Money
	Currency       string // ISO 4217, upper case as the restaurant has it
	Token          string // the card: a provider token or payment method id
	Description    string
	// ChargeID, for Lookup, is the provider's id of the charge when the
	// caller knows it (a webhook names it): looked up directly.
	ChargeID string
}

// ChargeStatus is where a charge that was not declined stands.
type ChargeStatus string

const (
	// ChargeSucceeded: the money is taken.
	ChargeSucceeded ChargeStatus = "succeeded"
	// ChargeRequiresAction: the guest must authenticate (3-D Secure) in the
	// browser with ClientSecret; the order stays pending_payment until the
	// charge succeeds (the client's return or the provider's webhook).
	ChargeRequiresAction ChargeStatus = "requires_action"
	// ChargeProcessing: the provider has not decided yet.
	ChargeProcessing ChargeStatus = "processing"
)

// ChargeResult is a charge that was not declined.
type ChargeResult struct {
	// ChargeID is the provider's id for the charge: what refunds and
	// disputes name (Stripe: the PaymentIntent id, "pi_…").
	ChargeID string
	Status   ChargeStatus
	// ClientSecret is what the browser needs to finish a charge that
	// requires action (Stripe: the PaymentIntent's client_secret). It is
	// given to the guest who placed the order only, never logged or stored.
	ClientSecret string
	// NextAction is the provider's kind of action (Stripe:
	// "use_stripe_sdk" or "redirect_to_url"); RedirectURL is set for the
	// latter.
	NextAction  string
	RedirectURL string
}

// ErrPaymentUnknown means the outcome of a charge is not known yet.
var ErrPaymentUnknown = errors.New("payment outcome unknown")

// ErrChargeNotFound is Lookup's answer when the provider has no charge for
// the request.
var ErrChargeNotFound = errors.New("payment: no such charge at the provider")

// PaymentResult is what the ordering service tells the store about a
// pending payment: captured (with the charge id) or declined (with a reason).
type PaymentResult struct {
	Captured      bool
	ChargeID      string
	FailureReason string
}

// PaymentAccount is a restaurant's settings at the payment provider.
type PaymentAccount struct {
	// StripeAccount is the restaurant's Stripe Connect account
	// ("acct_…"): its charges are made on it (Stripe-Account header), so
	// the money goes to the restaurant. "" charges the platform's account.
	StripeAccount string    `json:"stripe_account"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// ValidStripeAccount reports whether s looks like a Stripe account id.
func ValidStripeAccount(s string) bool {
	if len(s) < 6 || len(s) > 64 || s[:5] != "acct_" {
		return false
	}
	for _, c := range s[5:] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// PaymentStore keeps what payments need beside orders.
type PaymentStore interface {
	// PaymentAccount returns the restaurant's provider settings (the zero
	// PaymentAccount if none were set).
	PaymentAccount(ctx context.Context, restaurantID int64) (PaymentAccount, error)
	// SetPaymentAccount sets them; a.StripeAccount must be "" or
	// ValidStripeAccount (validation_failed otherwise).
	SetPaymentAccount(ctx context.Context, restaurantID int64, a PaymentAccount, now time.Time) error
	// DisputePayment records that the captured payment whose ChargeID is
	// chargeID was disputed: its order gets Attention AttentionDisputed and
	// a payment.disputed event, once (a second call changes nothing and
	// returns first false). not_found if no payment has that charge id.
	DisputePayment(ctx context.Context, chargeID, reason string, now time.Time) (o *Order, first bool, err error)
	// Processed and MarkProcessed are the inbox (see the outbox/inbox in
	// DESIGN.md): which events a consumer (also a webhook) has handled.
	Processed(ctx context.Context, consumer, eventID string) (bool, error)
	MarkProcessed(ctx context.Context, consumer, eventID string, now time.Time) (first bool, err error)
}

// AttentionDisputed is Order.Attention for an order whose payment the
// guest disputed with their bank.
const AttentionDisputed = "payment_disputed"
