package worker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/worker"
)

// stall is a transport whose sends hang until their context ends while
// stalling is on: an email "in flight" when the worker is told to stop.
type stall struct {
	mail.Transport
	on       atomic.Bool
	inFlight chan struct{}
}

func (s *stall) Send(ctx context.Context, m *mail.Message) error {
	if s.on.Load() {
		select {
		case s.inFlight <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Transport.Send(ctx, m)
}

// TestShutdownDoesNotCountAsAnAttempt stops the worker while it is handling
// an event, more times than the event's MaxAttempts: each stop hands the event
// back (it is interrupted, not failed), so a run of deploys never turns a
// healthy event into a dead letter. Afterwards the event is processed once.
func TestShutdownDoesNotCountAsAnAttempt(t *testing.T) {
	t.Parallel()
	brokertest.Each(t, func(t *testing.T, kind brokertest.Kind) {
		t.Parallel()
		st := &stall{inFlight: make(chan struct{}, 1)}
		st.on.Store(true)
		const maxAttempts = 2
		// The external broker runs with PostgreSQL, the embedded one with SQLite:
		// both stores keep the interruptions.
		h := newHarness(t, hopts{kind: kind, postgres: kind == brokertest.External, maxAttempts: maxAttempts, noStart: true, fast: true,
			wrap: func(tr mail.Transport) mail.Transport { st.Transport = tr; return st }})
		h.startRelay()
		ctx := context.Background()
		o := h.place(1)

		const stops = 2*maxAttempts + 1
		for i := range stops {
			h.startWorker()
			select {
			case <-st.inFlight:
			case <-time.After(20 * time.Second):
				n, _ := h.store.CountDeadLetters(ctx, h.f.Restaurant.ID)
				t.Fatalf("start %d: the receipt was never in flight (%d dead letters)", i+1, n)
			}
			h.w.Stop() // a deploy: the handler is cancelled mid-send
			if s := h.w.Stats()[worker.ConsumerReceipt]; s.DeadLetters != 0 || s.Handled != 0 {
				t.Fatalf("after stop %d: stats %+v", i+1, s)
			}
		}
		st.on.Store(false)
		h.startWorker()
		eventually(t, 20*time.Second, "the receipt sent", func() bool { return h.sentCount("receipt") == 1 })
		if n, _ := h.store.CountDeadLetters(ctx, h.f.Restaurant.ID); n != 0 {
			t.Fatalf("%d dead letters after %d shutdowns", n, stops)
		}
		for _, e := range h.emails() {
			if e.OrderID != o.ID {
				t.Errorf("unexpected email %+v", e)
			}
		}
	})
}
