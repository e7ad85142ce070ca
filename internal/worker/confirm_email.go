package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/mail"
)

// ConsumerConfirm is the consumer that emails a double opt-in
// confirmation link (ladle.Restaurant.DoubleOptIn).
const ConsumerConfirm = "confirm"

// ConfirmStore is what the confirmation email needs beyond EmailStore
// (sqlstore.Store implements it).
type ConfirmStore interface {
	ClaimConfirmEmail(ctx context.Context, restaurantID, customerID int64, eventID string, now time.Time) (*ladle.Customer, error)
}

// ConfirmLinker returns the absolute confirmation link for an address at
// a restaurant, made at now (it expires ladle.ConfirmTokenTTL later).
type ConfirmLinker func(restaurantID int64, email string, now time.Time) string

// handleConfirm emails the guest of a placed order who ticked the
// marketing box the link that confirms it, when the database says their
// consent is pending and ClaimConfirmEmail allows one (at most one per
// customer per ladle.ConfirmEmailInterval, whatever the orders). The
// claim is recorded before the email, under the event id, so a redelivery
// of the same event claims again and finishes the same email (the inbox
// and the email row, as the receipt), while any other event is refused.
// An email whose event becomes a dead letter still holds the claim: that
// customer gets the next confirmation email a day later at most.
func (e *emailer) handleConfirm(ctx context.Context, ev ladle.Event) error {
	if done, err := e.processed(ctx, ConsumerConfirm, ev); err != nil || done {
		return err
	}
	o, err := e.eventOrder(ctx, ev)
	if err != nil {
		return err
	}
	if !o.MarketingOptIn || !o.Status.OnBoard() {
		return nil // the box was not ticked (or the order is not placed): nothing to ask
	}
	c, err := e.Confirm.ClaimConfirmEmail(ctx, o.RestaurantID, o.CustomerID, ev.ID, e.Clock())
	if err != nil {
		return err
	}
	if c == nil {
		return nil // nothing pending, asked within the interval, or suppressed
	}
	if c.Email != o.Customer.Email {
		return Permanent(fmt.Errorf("order.placed event %s: order %s is for %s, its customer is %s", ev.ID, o.ID, o.Customer.Email, c.Email))
	}
	return e.send(ctx, ConsumerConfirm, mail.KindConfirm, ev, mail.Data{Order: o,
		ConfirmURL: e.ConfirmURL(o.RestaurantID, c.Email, e.Clock())})
}
