package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/ladle-dev/ladle"
)

// Stripe webhooks: POST /webhooks/stripe. Every delivery is verified
// (Stripe-Signature, HMAC-SHA256 under --stripe-webhook-secret, at most
// WebhookTolerance old) before anything is read from it; a delivery that
// fails is a 400 and changes nothing. A verified event is handled once:
// its id goes into the inbox (consumer StripeWebhookConsumer) after its
// effect, and each effect is itself conditional (a payment settles only
// while pending, a dispute flags an order once), so a redelivery, or two
// deliveries at once, act once. Stripe does not promise order: the
// payment_intent events are not trusted for the intent's state, which is
// asked of Stripe when one arrives (ordering.ResolvePayment), so an old
// event arriving late cannot undo a newer one.

// WebhookTolerance is how old a signed delivery may be.
const WebhookTolerance = 5 * time.Minute

// MaxWebhookBytes bounds a webhook body (Stripe's events are a few kB).
const MaxWebhookBytes = 256 << 10

// StripeWebhookConsumer names Stripe's events in the inbox.
const StripeWebhookConsumer = "webhook:stripe"

// stripeEventHandler acts on one verified event. An error leaves the event
// unprocessed: Stripe delivers it again (a 503 for a dependency that is
// down).
type stripeEventHandler func(ctx context.Context, d Deps, ev *stripe.Event) error

// stripeEventHandlers are the events Ladle acts on; any other type is
// acknowledged and recorded.
var stripeEventHandlers = map[stripe.EventType]stripeEventHandler{
	stripe.EventTypePaymentIntentSucceeded:     onPaymentIntent,
	stripe.EventTypePaymentIntentPaymentFailed: onPaymentIntent,
	stripe.EventTypePaymentIntentCanceled:      onPaymentIntent,
	stripe.EventTypeChargeDisputeCreated:       onDisputeCreated,
	stripe.EventTypeChargeRefunded:             onChargeRefunded,
	stripe.EventTypeChargeRefundUpdated:        onRefund,
	stripe.EventTypeRefundCreated:              onRefund,
	stripe.EventTypeRefundUpdated:              onRefund,
}

func handleStripeWebhook(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.StripeWebhookSecret == "" {
			writeError(w, r, d, ladle.Errorf(ladle.KindNotFound, ladle.CodeNotFound,
				"Stripe webhooks are not configured here (--stripe-webhook-secret)"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeError(w, r, d, ladle.Errorf(ladle.KindTooLarge, "body_too_large", "the body is larger than %d bytes", MaxWebhookBytes))
				return
			}
			writeError(w, r, d, ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "the body could not be read"))
			return
		}
		ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), d.StripeWebhookSecret,
			webhook.ConstructEventOptions{Tolerance: WebhookTolerance, IgnoreAPIVersionMismatch: true})
		if err != nil {
			writeError(w, r, d, ladle.Errorf(ladle.KindInvalid, "invalid_signature",
				"the Stripe-Signature header is missing, wrong or too old"))
			return
		}
		if ev.ID == "" {
			writeError(w, r, d, ladle.Errorf(ladle.KindInvalid, ladle.CodeValidation, "the event has no id"))
			return
		}
		ctx, cancel := d.deadline(r.Context())
		defer cancel()
		done, err := d.Store.Processed(ctx, StripeWebhookConsumer, ev.ID)
		if err != nil {
			writeError(w, r, d, err)
			return
		}
		if done {
			writeJSON(w, http.StatusOK, map[string]any{"received": true, "duplicate": true})
			return
		}
		if h := stripeEventHandlers[ev.Type]; h != nil {
			if err := h(ctx, d, &ev); err != nil {
				d.Logger.Warn("stripe webhook not handled; Stripe will deliver it again", "event", ev.ID, "type", ev.Type, "err", err)
				writeError(w, r, d, err)
				return
			}
		}
		if _, err := d.Store.MarkProcessed(ctx, StripeWebhookConsumer, ev.ID, time.Now()); err != nil {
			writeError(w, r, d, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"received": true})
	})
}

// onPaymentIntent settles the order the intent is for as Stripe has the
// intent now.
func onPaymentIntent(ctx context.Context, d Deps, ev *stripe.Event) error {
	var pi stripe.PaymentIntent
	if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
		return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "the event's payment intent is malformed")
	}
	orderID := pi.Metadata["order_id"]
	if orderID == "" {
		return nil // not a Ladle order's
	}
	_, err := d.Ordering.ResolvePayment(ctx, orderID, pi.ID)
	if ladle.ErrorCode(err) == ladle.CodeNotFound {
		return nil // another deployment's order, or deleted
	}
	return err
}

// onDisputeCreated flags the disputed order for staff.
func onDisputeCreated(ctx context.Context, d Deps, ev *stripe.Event) error {
	var dp stripe.Dispute
	if err := json.Unmarshal(ev.Data.Raw, &dp); err != nil {
		return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "the event's dispute is malformed")
	}
	if dp.PaymentIntent == nil || dp.PaymentIntent.ID == "" {
		return nil
	}
	_, _, err := d.Store.DisputePayment(ctx, dp.PaymentIntent.ID, string(dp.Reason), time.Now())
	if ladle.ErrorCode(err) == ladle.CodeNotFound {
		return nil
	}
	return err
}

// onChargeRefunded records the charge's refunds that Ladle does not know
// (made in Stripe's dashboard) and settles Ladle's own pending ones. The
// charge carries its refunds where the account's API version includes them;
// refund.created / charge.refund.updated carry each refund on its own, so
// either event type alone is enough, and both together record each refund
// once (RecordProviderRefund is keyed by Stripe's refund id).
func onChargeRefunded(ctx context.Context, d Deps, ev *stripe.Event) error {
	var ch stripe.Charge
	if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
		return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "the event's charge is malformed")
	}
	if ch.Refunds == nil {
		return nil
	}
	for _, rf := range ch.Refunds.Data {
		if rf.PaymentIntent == nil && ch.PaymentIntent != nil {
			rf.PaymentIntent = ch.PaymentIntent
		}
		if err := recordStripeRefund(ctx, d, rf); err != nil {
			return err
		}
	}
	return nil
}

// onRefund records one refund Stripe reports.
func onRefund(ctx context.Context, d Deps, ev *stripe.Event) error {
	var rf stripe.Refund
	if err := json.Unmarshal(ev.Data.Raw, &rf); err != nil {
		return ladle.Errorf(ladle.KindInvalid, ladle.CodeInvalidJSON, "the event's refund is malformed")
	}
	return recordStripeRefund(ctx, d, &rf)
}

// recordStripeRefund records a succeeded refund against the order whose
// payment is its PaymentIntent (Ladle's charge id for Stripe payments).
// Pending and failed refunds change nothing: Ladle's own refunds learn
// their outcome from the refund call or the recovery loop.
func recordStripeRefund(ctx context.Context, d Deps, rf *stripe.Refund) error {
	if rf == nil || rf.Status != stripe.RefundStatusSucceeded || rf.PaymentIntent == nil || rf.PaymentIntent.ID == "" {
		return nil
	}
	_, _, err := d.Store.RecordProviderRefund(ctx, ladle.ProviderRefund{
		ChargeID: rf.PaymentIntent.ID, RefundID: rf.ID, Amount: ladle.Money(rf.Amount),
		Currency: strings.ToUpper(string(rf.Currency)), LadleRefundID: rf.Metadata["ladle_refund_id"],
		Reason: string(rf.Reason), Now: time.Now(),
	})
	if ladle.ErrorCode(err) == ladle.CodeNotFound {
		return nil // not a payment of this deployment's
	}
	return err
}
