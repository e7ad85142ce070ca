package ordering

import (
	"context"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/priority"
)

// Placing an order is urgent work: while it runs, bulk work in the same
// process (campaign sends) yields at its next step, and once the order is
// placed the gate is free again.
func TestPlaceHoldsTheUrgentGate(t *testing.T) {
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		g := priority.New()
		s := b.service(WithUrgent(g))
		var waited time.Duration
		s.beforeCharge = func(string) { waited = g.Yield(ctx, 30*time.Millisecond) }
		if _, err := s.Place(ctx, b.fix.Restaurant, "key-urgent", b.cardRequest()); err != nil {
			t.Fatal(err)
		}
		if waited < 25*time.Millisecond {
			t.Errorf("bulk work yielded %v during the placement, want the whole 30ms", waited)
		}
		if d := g.Yield(ctx, time.Second); d != 0 {
			t.Errorf("after the placement bulk work still waits %v", d)
		}
	})
}
