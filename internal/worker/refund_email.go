package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/mail"
)

// handleRefund emails the guest about a refund the processor made, once
// per refund.created event (the inbox and the email row, as the receipt).
// The event names the order (aggregate id) and the refund (payload id);
// both are read from the database, scoped to the event's restaurant, and
// the email is sent only for a refund of that order that succeeded: a
// forged event mails nobody and becomes a dead letter.
func (e *emailer) handleRefund(ctx context.Context, ev ladle.Event) error {
	defer e.urgent(ev)()
	if done, err := e.processed(ctx, ConsumerRefund, ev); err != nil || done {
		return err
	}
	var hint struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(ev.Payload, &hint); err != nil || hint.ID == "" {
		return Permanent(fmt.Errorf("refund.created event %s names no refund", ev.ID))
	}
	o, err := e.eventOrder(ctx, ev)
	if err != nil {
		return err
	}
	rf, err := e.Store.Refund(ctx, ev.RestaurantID, hint.ID)
	if err != nil {
		if ladle.ErrorKind(err) == ladle.KindNotFound {
			return Permanent(fmt.Errorf("refund.created event %s: no refund %s in restaurant %d", ev.ID, hint.ID, ev.RestaurantID))
		}
		return err
	}
	if rf.OrderID != o.ID || rf.Status != ladle.RefundSucceeded {
		return Permanent(fmt.Errorf("refund.created event %s: refund %s is %s, of order %s", ev.ID, rf.ID, rf.Status, rf.OrderID))
	}
	return e.send(ctx, ConsumerRefund, mail.KindRefund, ev, mail.Data{Order: o, Refund: rf})
}
