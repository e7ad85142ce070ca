package payment_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v82"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/payment/stripefake"
	"github.com/ladle-dev/ladle/internal/testenv"
)

func newStripe(t *testing.T, url string, retries int64) *payment.Stripe {
	t.Helper()
	p, err := payment.NewStripe(payment.StripeConfig{SecretKey: "sk_test_123", APIURL: url, NetworkRetries: retries})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func chargeReq(orderID, token string) ladle.ChargeRequest {
	return ladle.ChargeRequest{Key: ladle.PaymentKey(orderID), OrderID: orderID, RestaurantID: 3, Amount: 2150,
		Currency: "USD", Token: token, Description: "Order " + orderID}
}

// TestStripeRequestsAgainstStripeMock sends every request the provider
// makes to stripe-mock, which refuses any request that does not fit
// Stripe's OpenAPI description (unknown parameter, wrong type, missing
// required one): a create+confirm on the platform and on a connected
// account with an application fee, a retrieve, and a metadata search.
func TestStripeRequestsAgainstStripeMock(t *testing.T) {
	t.Parallel()
	mock := testenv.StripeMock(t)
	p := newStripe(t, mock, -1)
	ctx := context.Background()
	// The checker checks: a parameter Stripe does not know is refused.
	raw := stripe.NewClient("sk_test_123", stripe.WithBackends(stripe.NewBackendsWithConfig(&stripe.BackendConfig{
		URL: stripe.String(mock), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}})))
	bad := &stripe.PaymentIntentCreateParams{Amount: stripe.Int64(100), Currency: stripe.String("usd")}
	bad.AddExtra("order_number", "12")
	var se *stripe.Error
	if _, err := raw.V1PaymentIntents.Create(ctx, bad); !errors.As(err, &se) || se.HTTPStatusCode != 400 {
		t.Fatalf("stripe-mock accepted an unknown parameter: %v", err)
	}
	for _, req := range []ladle.ChargeRequest{
		chargeReq("0193-a", "pm_card_visa"),
		func() ladle.ChargeRequest {
			r := chargeReq("0193-b", "pm_card_visa")
			r.Account, r.ApplicationFee = "acct_1Restaurant", 65
			return r
		}(),
	} {
		res, err := p.Charge(ctx, req)
		t.Logf("stripe-mock: charge %s: %+v, %v", req.OrderID, res, err)
		// stripe-mock answers with its fixture intent; what matters is that
		// the request was accepted, so the outcome is one the contract
		// knows, not an invalid request.
		if err != nil && ladle.ErrorCode(err) != ladle.CodePaymentDeclined {
			t.Fatalf("charge %+v refused by stripe-mock: %v", req, err)
		}
		if err == nil && !strings.HasPrefix(res.ChargeID, "pi_") {
			t.Fatalf("charge id %q", res.ChargeID)
		}
		lookup := req
		lookup.ChargeID = "pi_123"
		lookup.OrderID = "" // the fixture's metadata names no order of ours
		if _, err := p.Lookup(ctx, lookup); err != nil && ladle.ErrorCode(err) != ladle.CodePaymentDeclined {
			t.Fatalf("retrieve refused by stripe-mock: %v", err)
		}
		if _, err := p.Lookup(ctx, req); err != nil && !errors.Is(err, ladle.ErrChargeNotFound) &&
			ladle.ErrorCode(err) != ladle.CodePaymentDeclined {
			t.Fatalf("search refused by stripe-mock: %v", err)
		}
	}
}

// TestStripeLostResponseOnePaymentIntent: Stripe creates the intent and the
// connection drops before the answer. stripe-go retries with the same
// Idempotency-Key and gets the first answer replayed: one PaymentIntent.
// With the SDK's retries off, the caller sees ErrPaymentUnknown, and its own
// retry (same key) finds the same intent.
func TestStripeLostResponseOnePaymentIntent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("sdk retry", func(t *testing.T) {
		fake := stripefake.New(t)
		p := newStripe(t, fake.URL, 1)
		fake.LoseResponses(1)
		res, err := p.Charge(ctx, chargeReq("o-1", stripefake.CardVisa))
		if err != nil || res.Status != ladle.ChargeSucceeded {
			t.Fatalf("charge: %+v, %v", res, err)
		}
		if n := len(fake.Intents()); n != 1 || fake.Creates() != 2 || fake.Intents()[0].ID != res.ChargeID {
			t.Fatalf("%d intents from %d creates (%s); want 1 from 2", n, fake.Creates(), fake)
		}
	})
	t.Run("caller retry", func(t *testing.T) {
		fake := stripefake.New(t)
		p := newStripe(t, fake.URL, -1)
		fake.LoseResponses(1)
		if _, err := p.Charge(ctx, chargeReq("o-2", stripefake.CardVisa)); !errors.Is(err, ladle.ErrPaymentUnknown) {
			t.Fatalf("lost response: %v, want ErrPaymentUnknown", err)
		}
		res, err := p.Lookup(ctx, chargeReq("o-2", stripefake.CardVisa))
		if err != nil || res.Status != ladle.ChargeSucceeded {
			t.Fatalf("lookup after the lost response: %+v, %v", res, err)
		}
		again, err := p.Charge(ctx, chargeReq("o-2", stripefake.CardVisa))
		if err != nil || again.ChargeID != res.ChargeID || len(fake.Intents()) != 1 {
			t.Fatalf("retry: %+v, %v; intents %s", again, err, fake)
		}
	})
}

func TestStripeOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := stripefake.New(t)
	p := newStripe(t, fake.URL, -1)

	_, err := p.Charge(ctx, chargeReq("dec", stripefake.CardDeclined))
	var e *ladle.Error
	if !errors.As(err, &e) || e.Code != ladle.CodePaymentDeclined || e.Extra["decline_code"] != "generic_decline" {
		t.Fatalf("declined card: %v", err)
	}
	if _, err := p.Charge(ctx, chargeReq("dec", stripefake.CardDeclined)); ladle.ErrorCode(err) != ladle.CodePaymentDeclined {
		t.Fatalf("declined card, replayed: %v", err)
	}

	// 3-D Secure: requires_action with the client secret; once the guest
	// authenticated, a repeated Charge (replayed by Stripe as
	// requires_action) reports the intent as it is now.
	res, err := p.Charge(ctx, chargeReq("3ds", stripefake.CardThreeDS))
	if err != nil || res.Status != ladle.ChargeRequiresAction || !strings.HasPrefix(res.ClientSecret, res.ChargeID+"_secret_") ||
		res.NextAction != "use_stripe_sdk" {
		t.Fatalf("3DS charge: %+v, %v", res, err)
	}
	fake.Authenticate(res.ChargeID, true)
	done, err := p.Charge(ctx, chargeReq("3ds", stripefake.CardThreeDS))
	if err != nil || done.Status != ladle.ChargeSucceeded || done.ChargeID != res.ChargeID || done.ClientSecret != "" {
		t.Fatalf("after authentication: %+v, %v", done, err)
	}
	failed, err := p.Charge(ctx, chargeReq("3ds-fail", stripefake.CardThreeDS))
	if err != nil {
		t.Fatal(err)
	}
	fake.Authenticate(failed.ChargeID, false)
	if _, err := p.Lookup(ctx, chargeReq("3ds-fail", stripefake.CardThreeDS)); ladle.ErrorCode(err) != ladle.CodePaymentDeclined {
		t.Fatalf("failed authentication: %v", err)
	}

	// Connect: the intent is made on the restaurant's account, with the fee.
	req := chargeReq("connect", stripefake.CardVisa)
	req.Account, req.ApplicationFee = "acct_1Rest", 107
	res, err = p.Charge(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var pi stripefake.Intent
	for _, i := range fake.Intents() {
		if i.ID == res.ChargeID {
			pi = i
		}
	}
	if pi.Account != "acct_1Rest" || pi.ApplicationFee != 107 || pi.Currency != "usd" || pi.Amount != 2150 ||
		pi.Metadata["order_id"] != "connect" || pi.Metadata["restaurant_id"] != "3" {
		t.Fatalf("intent on the connected account = %+v", pi)
	}
	// Looked up on the platform account, it is not there.
	if _, err := p.Lookup(ctx, chargeReq("connect", stripefake.CardVisa)); !errors.Is(err, ladle.ErrChargeNotFound) {
		t.Fatalf("lookup on the wrong account: %v", err)
	}
	// An intent of another order is not this order's charge.
	other := chargeReq("someone-else", stripefake.CardVisa)
	other.ChargeID = res.ChargeID
	other.Account = "acct_1Rest"
	if _, err := p.Lookup(ctx, other); !errors.Is(err, ladle.ErrChargeNotFound) {
		t.Fatalf("lookup of another order's intent: %v", err)
	}

	fake.SetDown(true)
	if _, err := p.Charge(ctx, chargeReq("down", stripefake.CardVisa)); !errors.Is(err, ladle.ErrPaymentUnknown) {
		t.Fatalf("Stripe down: %v, want ErrPaymentUnknown", err)
	}
}

func TestStripeNeedsSecretKey(t *testing.T) {
	t.Parallel()
	if _, err := payment.NewStripe(payment.StripeConfig{}); err == nil || !strings.Contains(err.Error(), "--stripe-secret-key") {
		t.Fatalf("no key: %v", err)
	}
}

// TestStripeRefundAgainstStripeMock sends the provider's refund request to
// stripe-mock (which refuses a request that does not fit Stripe's OpenAPI
// description), on the platform and on a connected account, and checks the
// mapping of keys to Ladle's refund ids.
func TestStripeRefundAgainstStripeMock(t *testing.T) {
	t.Parallel()
	p := newStripe(t, testenv.StripeMock(t), -1)
	var _ ladle.Refunder = p // the ordering service picks it up from the provider
	for _, account := range []string{"", "acct_1Restaurant"} {
		res, err := p.Refund(context.Background(), ladle.RefundRequest{Key: ladle.RefundProviderKey("0193-r", 1),
			ChargeID: "pi_123", Amount: 500, Currency: "USD", Account: account, Reason: "cancelled by the restaurant"})
		if err != nil {
			t.Fatalf("refund (account %q) refused by stripe-mock: %v", account, err)
		}
		if !strings.HasPrefix(res.RefundID, "re_") {
			t.Fatalf("refund id %q", res.RefundID)
		}
	}
	if _, err := p.Refund(context.Background(), ladle.RefundRequest{ChargeID: "pi_123", Amount: 1}); err == nil {
		t.Fatal("a refund without an idempotency key was sent")
	}
	if got := payment.LadleRefundID(ladle.RefundProviderKey("0193-r", 2)); got != "0193-r" {
		t.Fatalf("LadleRefundID = %q", got)
	}
	if got := payment.LadleRefundID("order:x"); got != "" {
		t.Fatalf("LadleRefundID of a charge key = %q", got)
	}
}
