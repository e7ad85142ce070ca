package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/worker"
)

// TestForgedEventsSendNothing publishes events straight to the stream, the
// way anyone who can reach the broker could, with another recipient, total
// and text in their bodies. The workers read the order the event names from
// the database, so the forged recipient never gets anything; an event naming
// an order that does not exist (or not in that restaurant) sends nothing at
// all and becomes a dead letter.
func TestForgedEventsSendNothing(t *testing.T) {
	t.Parallel()
	brokertest.Each(t, func(t *testing.T, kind brokertest.Kind) {
		t.Parallel()
		h := newHarness(t, hopts{kind: kind, smtp: true})
		ctx := context.Background()

		real := h.place(1)
		h.smtp.Wait(1, 10*time.Second)

		forge := func(typ, orderID string, restaurantID int64, payload any) string {
			t.Helper()
			b, err := json.Marshal(payload)
			if err != nil {
				t.Fatal(err)
			}
			ev := ladle.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, RestaurantID: restaurantID,
				AggregateID: orderID, Payload: b, CreatedAt: ladle.Now()}
			if _, err := h.b.PublishEvents(ctx, []ladle.Event{ev}); err != nil {
				t.Fatal(err)
			}
			return ev.ID
		}
		evil := *real
		evil.Customer.Email = "attacker@evil.example"
		evil.Customer.Name = "Attacker"
		evil.Total = 1
		evil.Lines = nil
		readyChange := ladle.StatusChange{OrderID: real.ID, From: ladle.StatusPreparing, To: ladle.StatusReady, Order: &evil}

		// 1. A real order's id with another recipient: the receipt (if any)
		// goes to the order's own guest, with the order's own total.
		forgedReceipt := forge(ladle.EventOrderPlaced, real.ID, h.f.Restaurant.ID, &evil)
		// 2. "Ready" for an order that is not ready in the database.
		forge(ladle.EventOrderStatusChanged, real.ID, h.f.Restaurant.ID, &readyChange)
		// 3. An order that does not exist, and a real order under another
		// restaurant's id.
		unknown := uuid.Must(uuid.NewV7()).String()
		ghost := evil
		ghost.ID = unknown
		forge(ladle.EventOrderPlaced, unknown, h.f.Restaurant.ID, &ghost)
		forge(ladle.EventOrderPlaced, real.ID, h.f.Restaurant.ID+1000, &evil)

		eventually(t, 30*time.Second, "the forged receipt handled", func() bool {
			done, _ := h.store.Processed(ctx, worker.ConsumerReceipt, forgedReceipt)
			return done
		})
		eventually(t, 30*time.Second, "a dead letter here", func() bool {
			n, _ := h.store.CountDeadLetters(ctx, h.f.Restaurant.ID)
			return n == 1 // the other restaurant id has no restaurant: counted there
		})
		eventually(t, 30*time.Second, "every forged event handled", func() bool {
			st := h.w.Stats()
			return st[worker.ConsumerReceipt].DeadLetters == 2 && st[worker.ConsumerReady].Handled >= 1
		})
		dls, _ := h.store.DeadLetters(ctx, h.f.Restaurant.ID, false, 0)
		if len(dls) != 1 || dls[0].Event.AggregateID != unknown || !strings.Contains(dls[0].Error, "no order") {
			t.Fatalf("dead letters %+v", dls)
		}

		// Now make the order really ready: the one "ready" email goes to
		// the guest, built from the database.
		for _, st := range []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady} {
			if _, err := h.store.SetOrderStatus(ctx, h.f.Restaurant.ID, real.ID, st, "", 0, ladle.Now()); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, 30*time.Second, "the ready email", func() bool { return h.sentCount("ready") == 1 })
		time.Sleep(200 * time.Millisecond)

		for _, m := range h.smtp.Messages() {
			if m.To != "guest1@example.com" {
				t.Errorf("an email went to %s", m.To)
			}
			if strings.Contains(string(m.Raw), "Attacker") || strings.Contains(string(m.Raw), "$0.01") {
				t.Errorf("an email carries the forged body:\n%s", m.Raw)
			}
		}
		for _, e := range h.emails() {
			if !strings.Contains(e.To, "guest1@example.com") || strings.Contains(e.Text, "Attacker") {
				t.Errorf("email %d to %q:\n%s", e.ID, e.To, e.Text)
			}
			if e.Kind == "receipt" && !strings.Contains(e.Text, "Total      $33.53") {
				t.Errorf("receipt total is not the order's:\n%s", e.Text)
			}
		}
		if n := h.sentCount("ready"); n != 1 {
			t.Errorf("%d ready emails, want 1", n)
		}
	})
}
