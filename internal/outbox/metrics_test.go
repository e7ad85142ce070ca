package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/outbox"
	"github.com/ladle-dev/ladle/internal/storetest"
)

// TestCollectorReportsBacklogAndAge: events committed while no relay runs
// show as the backlog with the age of the oldest; once the relay publishes
// them both drop to zero and the published counter counts them.
func TestCollectorReportsBacklogAndAge(t *testing.T) {
	t.Parallel()
	s := openStore(t, false)
	f := storetest.Seed(t, s)
	b := brokertest.Open(t, brokertest.Embedded)
	for range 3 {
		placeOrder(t, s, f)
	}
	r := outbox.New(outbox.Config{Store: s, Publisher: b, Logger: quiet, PollInterval: 50 * time.Millisecond})
	later := time.Now().Add(time.Minute)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&outbox.Collector{Relay: r, Backlog: s, Now: func() time.Time { return later }})

	get := func() map[string]float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				out[mf.GetName()] = m.GetCounter().GetValue()
			} else {
				out[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
		return out
	}
	before := get()
	if before["ladle_outbox_backlog"] < 3 || before["ladle_outbox_oldest_unpublished_age_seconds"] < 59 {
		t.Fatalf("with 3+ unpublished events a minute old: %v", before)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The relay counts a batch after the store committed it as
		// published, so a scrape can see the backlog empty a moment before
		// the counter catches up: wait for both, then check the age.
		m := get()
		if m["ladle_outbox_backlog"] == 0 && m["ladle_outbox_published_total"] >= before["ladle_outbox_backlog"] {
			if m["ladle_outbox_oldest_unpublished_age_seconds"] != 0 || m["ladle_outbox_published_total"] != before["ladle_outbox_backlog"] {
				t.Fatalf("after publishing: %v (before %v)", m, before)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog never drained and counted: %v (before %v)", m, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
