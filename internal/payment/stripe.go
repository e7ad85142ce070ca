package payment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/ladle-dev/ladle"
)

// StripeConfig configures the Stripe provider.
type StripeConfig struct {
	// SecretKey is the platform's secret API key (sk_test_… or sk_live_…).
	SecretKey string
	// APIURL is the API base, "" for Stripe's (https://api.stripe.com);
	// tests and local runs point it at stripe-mock or a fake.
	APIURL string
	// HTTPClient makes the calls (nil: a client with a 30 s timeout; every
	// call is also bounded by its context).
	HTTPClient *http.Client
	// NetworkRetries is how often stripe-go retries a call whose
	// connection failed, with the same idempotency key (default 1; -1 for
	// none).
	NetworkRetries int64
}

// Stripe charges cards through Stripe PaymentIntents, created and
// confirmed server side in one call with the order's idempotency key, on
// the restaurant's connected account when it has one (Stripe Connect,
// Stripe-Account header), with an application fee for the platform.
//
// A charge that needs 3-D Secure comes back ChargeRequiresAction with the
// intent's client secret; the storefront finishes it with Stripe.js and
// the order is placed when the intent succeeds (Ladle's confirm endpoint
// or the payment_intent.succeeded webhook).
type Stripe struct {
	client *stripe.Client
}

// NewStripe returns the Stripe provider.
func NewStripe(cfg StripeConfig) (*Stripe, error) {
	if cfg.SecretKey == "" {
		return nil, errors.New("payment: the Stripe provider needs a secret key (--stripe-secret-key)")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	retries := cfg.NetworkRetries
	if retries == 0 {
		retries = 1
	} else if retries < 0 {
		retries = 0
	}
	bc := &stripe.BackendConfig{HTTPClient: hc, MaxNetworkRetries: stripe.Int64(retries),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}
	if cfg.APIURL != "" {
		bc.URL = stripe.String(strings.TrimRight(cfg.APIURL, "/"))
	}
	return &Stripe{client: stripe.NewClient(cfg.SecretKey, stripe.WithBackends(stripe.NewBackendsWithConfig(bc)))}, nil
}

// Name implements ladle.PaymentProvider.
func (s *Stripe) Name() string { return "stripe" }

// Charge implements ladle.PaymentProvider: POST /v1/payment_intents with
// confirm=true and Idempotency-Key req.Key. Stripe answers a repeated key
// with the first response (Idempotent-Replayed); if that one was not
// final, the intent is read again so the caller gets its state now.
func (s *Stripe) Charge(ctx context.Context, req ladle.ChargeRequest) (ladle.ChargeResult, error) {
	if req.Key == "" {
		return ladle.ChargeResult{}, errors.New("payment: charge without an idempotency key")
	}
	p := &stripe.PaymentIntentCreateParams{
		Amount:             stripe.Int64(int64(req.Amount)),
		Currency:           stripe.String(strings.ToLower(req.Currency)),
		PaymentMethod:      stripe.String(req.Token),
		PaymentMethodTypes: []*string{stripe.String("card")},
		Confirm:            stripe.Bool(true),
	}
	if req.Description != "" {
		p.Description = stripe.String(req.Description)
	}
	p.AddMetadata("order_id", req.OrderID)
	p.AddMetadata("restaurant_id", strconv.FormatInt(req.RestaurantID, 10))
	p.SetIdempotencyKey(req.Key)
	if req.Account != "" {
		p.SetStripeAccount(req.Account)
		if req.ApplicationFee > 0 {
			p.ApplicationFeeAmount = stripe.Int64(int64(req.ApplicationFee))
		}
	}
	pi, err := s.client.V1PaymentIntents.Create(ctx, p)
	if err != nil {
		return ladle.ChargeResult{}, stripeError(err)
	}
	if replayed(pi) && !final(pi.Status) {
		return s.retrieve(ctx, pi.ID, req)
	}
	return intentResult(pi)
}

// Lookup implements ladle.PaymentProvider: the intent req.ChargeID names
// if set (a webhook's), else the one whose metadata names req.OrderID
// (Stripe's search; an intent a few seconds old may not be found yet, and
// charging again with the key is then still safe). An intent whose
// metadata names another order is not this charge.
func (s *Stripe) Lookup(ctx context.Context, req ladle.ChargeRequest) (ladle.ChargeResult, error) {
	if req.ChargeID != "" {
		return s.retrieve(ctx, req.ChargeID, req)
	}
	if req.OrderID == "" {
		return ladle.ChargeResult{}, ladle.ErrChargeNotFound
	}
	p := &stripe.PaymentIntentSearchParams{}
	p.Query = fmt.Sprintf("metadata['order_id']:'%s'", strings.ReplaceAll(req.OrderID, "'", ""))
	p.Limit = stripe.Int64(10)
	if req.Account != "" {
		p.SetStripeAccount(req.Account)
	}
	for pi, err := range s.client.V1PaymentIntents.Search(ctx, p) {
		if err != nil {
			return ladle.ChargeResult{}, stripeError(err)
		}
		if pi.Metadata["order_id"] == req.OrderID {
			return intentResult(pi)
		}
	}
	return ladle.ChargeResult{}, ladle.ErrChargeNotFound
}

func (s *Stripe) retrieve(ctx context.Context, id string, req ladle.ChargeRequest) (ladle.ChargeResult, error) {
	p := &stripe.PaymentIntentRetrieveParams{}
	if req.Account != "" {
		p.SetStripeAccount(req.Account)
	}
	pi, err := s.client.V1PaymentIntents.Retrieve(ctx, id, p)
	var se *stripe.Error
	if errors.As(err, &se) && se.HTTPStatusCode == http.StatusNotFound {
		return ladle.ChargeResult{}, ladle.ErrChargeNotFound
	}
	if err != nil {
		return ladle.ChargeResult{}, stripeError(err)
	}
	if req.OrderID != "" && pi.Metadata["order_id"] != req.OrderID {
		return ladle.ChargeResult{}, ladle.ErrChargeNotFound
	}
	return intentResult(pi)
}

func replayed(pi *stripe.PaymentIntent) bool {
	return pi.LastResponse != nil && pi.LastResponse.Header.Get("Idempotent-Replayed") == "true"
}

// final reports whether an intent's status can no longer change by
// itself.
func final(st stripe.PaymentIntentStatus) bool {
	return st == stripe.PaymentIntentStatusSucceeded || st == stripe.PaymentIntentStatusCanceled
}

// intentResult maps a PaymentIntent to the provider contract.
func intentResult(pi *stripe.PaymentIntent) (ladle.ChargeResult, error) {
	res := ladle.ChargeResult{ChargeID: pi.ID}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		res.Status = ladle.ChargeSucceeded
	case stripe.PaymentIntentStatusRequiresAction:
		res.Status = ladle.ChargeRequiresAction
		res.ClientSecret = pi.ClientSecret
		if pi.NextAction != nil {
			res.NextAction = string(pi.NextAction.Type)
			if pi.NextAction.RedirectToURL != nil {
				res.RedirectURL = pi.NextAction.RedirectToURL.URL
			}
		}
	case stripe.PaymentIntentStatusRequiresPaymentMethod:
		// A confirmed intent back here: the card (or its authentication)
		// failed.
		msg, code := "Your card was declined.", "card_declined"
		if e := pi.LastPaymentError; e != nil {
			msg = nonEmpty(e.Msg, msg)
			code = nonEmpty(string(e.DeclineCode), nonEmpty(string(e.Code), code))
		}
		return ladle.ChargeResult{}, declined(msg, code)
	case stripe.PaymentIntentStatusCanceled:
		return ladle.ChargeResult{}, declined("The payment was cancelled.", "canceled")
	default: // processing, requires_confirmation, requires_capture
		res.Status = ladle.ChargeProcessing
	}
	return res, nil
}

// stripeError maps a failed call: a card error is a decline (final);
// everything else leaves the outcome unknown (the charge may or may not
// exist), to be asked again later with the same key.
func stripeError(err error) error {
	var se *stripe.Error
	if errors.As(err, &se) {
		switch {
		case se.Type == stripe.ErrorTypeCard:
			return declined(nonEmpty(se.Msg, "Your card was declined."), nonEmpty(string(se.DeclineCode), nonEmpty(string(se.Code), "card_declined")))
		case se.Type == stripe.ErrorTypeInvalidRequest && se.Param == "payment_method":
			return declined("Your card details were not accepted.", "invalid_payment_method")
		}
		return fmt.Errorf("payment: stripe %d %s %s (request %s): %w", se.HTTPStatusCode, se.Type, se.Code, se.RequestID, ladle.ErrPaymentUnknown)
	}
	// The deadline passed or the connection broke (after stripe-go's own
	// retries with the same key).
	return fmt.Errorf("payment: stripe: %v: %w", err, ladle.ErrPaymentUnknown)
}

func nonEmpty(s, otherwise string) string {
	if s != "" {
		return s
	}
	return otherwise
}
