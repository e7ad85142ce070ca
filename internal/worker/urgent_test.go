package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/priority"
	"github.com/ladle-dev/ladle/internal/worker"
)

// TestWatchUrgentHoldsTheGate: an urgent event published (by any process)
// holds the gate until its handler says it arrived; other events do not.
func TestWatchUrgentHoldsTheGate(t *testing.T) {
	h := newHarness(t, hopts{kind: brokertest.Embedded, noStart: true, fast: true})
	// Expectations of a minute, not ExpectFor's 200 ms: the test polls the
	// gate, and a poll delayed past a short window (a loaded machine) would
	// miss it. The window itself is checked below.
	g := priority.New()
	stop, err := worker.WatchUrgentFor(h.b, g, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	busyGate := func(g *priority.Gate) func() bool {
		return func() bool { return g.Yield(ctx, 20*time.Millisecond) > 0 }
	}
	busy := busyGate(g)
	publish := func(typ string) string {
		ev := ladle.Event{ID: uuid.NewString(), Type: typ, RestaurantID: 1, AggregateID: "x", CreatedAt: ladle.Now()}
		if _, err := h.b.PublishEvents(ctx, []ladle.Event{ev}); err != nil {
			t.Fatal(err)
		}
		return ev.ID
	}

	publish(ladle.EventCouponRedeemed)
	time.Sleep(50 * time.Millisecond)
	if busy() {
		t.Fatal("a non-urgent event held the gate")
	}
	id := publish(ladle.EventOrderPlaced)
	eventually(t, 10*time.Second, "the published receipt event to hold the gate", busy)
	g.Arrived(id)
	if busy() {
		t.Fatal("gate still busy after the event arrived")
	}

	// An event no handler here takes (another process did) holds the gate
	// for the window only.
	short := priority.New()
	stopShort, err := worker.WatchUrgentFor(h.b, short, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stopShort()
	publish(ladle.EventOrderStatusChanged)
	eventually(t, 10*time.Second, "the status change to hold the gate", busyGate(short))
	eventually(t, 10*time.Second, "the expectation to end", func() bool { return !busyGate(short)() })
}
