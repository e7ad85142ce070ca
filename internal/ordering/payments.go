package ordering

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/ladle-dev/ladle"
)

// PaymentAction is what the guest's browser must do to finish a card
// payment that needs it (3-D Secure): with Stripe, Stripe.js's
// handleNextAction(ClientSecret), then a POST to ConfirmURL. The order is
// placed when the charge succeeds, by that POST or by the provider's
// webhook, whichever comes first.
type PaymentAction struct {
	Status       ladle.ChargeStatus `json:"status"` // requires_action or processing
	Provider     string             `json:"provider"`
	ClientSecret string             `json:"client_secret,omitempty"`
	NextAction   string             `json:"next_action,omitempty"`
	RedirectURL  string             `json:"redirect_url,omitempty"`
	// ConfirmURL is where the browser POSTs once the action is done (it
	// carries the order's access token).
	ConfirmURL string `json:"confirm_url"`
}

// actionOrder is the JSON of a 202: the pending order and its action.
type actionOrder struct {
	*ladle.Order
	StatusURL string         `json:"status_url"`
	Action    *PaymentAction `json:"payment_action"`
}

// ConfirmURL is the API path the guest's browser POSTs to after finishing a
// payment action.
func ConfirmURL(orderID, token string) string {
	return "/api/v1/orders/" + url.PathEscape(orderID) + "/payment/confirm?token=" + url.QueryEscape(token)
}

// actionResponse is the 202 for an order whose charge waits for the guest.
func (s *Service) actionResponse(order *ladle.Order, res ladle.ChargeResult) *Result {
	order.AccessToken = s.AccessToken(order.ID)
	a := &PaymentAction{Status: res.Status, Provider: s.payments.Name(), ClientSecret: res.ClientSecret,
		NextAction: res.NextAction, RedirectURL: res.RedirectURL, ConfirmURL: ConfirmURL(order.ID, order.AccessToken)}
	body, _ := json.Marshal(actionOrder{Order: order, StatusURL: StatusURL(order.ID, order.AccessToken), Action: a})
	return &Result{Status: http.StatusAccepted, Body: body, Order: order, Action: a}
}

// resolve asks the provider about one pending payment and settles it as
// the provider has it (see chargeMode resolve).
// chargeID, if known, is the provider's id of the charge.
func (s *Service) resolve(ctx context.Context, pay *ladle.Payment, chargeID string) (*ladle.Order, *actionRequired, error) {
	o, err := s.store.Order(ctx, pay.OrderID)
	if err != nil {
		return nil, nil, err
	}
	o, err = s.settlePayment(ctx, pay, o.RestaurantID, resolve, chargeID, nil, nil)
	var action *actionRequired
	if errors.As(err, &action) {
		return nil, action, err
	}
	return o, nil, err
}

// ResolvePayment settles the order's pending card payment as the provider
// has it now: the guest's browser calls it on return from 3-D Secure (the
// confirm endpoint, with the order's access token checked by the caller),
// and the provider's webhook does when the charge succeeds or fails.
// Whichever comes first settles; the others find nothing pending and
// return the order as it is, so the order is placed (and its receipt sent)
// once.
//
// chargeID is the provider's id of the charge when the caller has it (a
// webhook's intent), "" otherwise; the provider checks it is this order's.
//
// Outcomes: a *Result like Place's (201 placed, 402 declined, 202 with
// the action still to do); payment_pending when the provider cannot be
// asked now; not_found for an unknown order.
func (s *Service) ResolvePayment(ctx context.Context, orderID, chargeID string) (*Result, error) {
	pay, err := s.pendingPayment(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if pay == nil {
		o, err := s.store.Order(ctx, orderID)
		if err != nil {
			return nil, err
		}
		if o.Status == ladle.StatusPendingPayment {
			// Pending with no pending payment: given up on; staff decide.
			return nil, paymentPending(orderID)
		}
		return s.response(o), nil
	}
	o, action, err := s.resolve(ctx, pay, chargeID)
	if action != nil {
		order, err := s.store.Order(ctx, orderID)
		if err != nil {
			return nil, err
		}
		return s.actionResponse(order, action.res), nil
	}
	if err != nil {
		return nil, err
	}
	return s.response(o), nil
}
