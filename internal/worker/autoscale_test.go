package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/ladle-dev/ladle/internal/autoscale"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/worker"
)

// slowMail takes d per send: a downstream that bounds each handler's rate,
// so only more handlers drain a backlog faster.
type slowMail struct {
	mail.Transport
	d time.Duration
}

func (s slowMail) Send(ctx context.Context, m *mail.Message) error {
	select {
	case <-time.After(s.d):
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Transport.Send(ctx, m)
}

// TestPoolFollowsBacklog: a backlog of receipts, published before any
// worker runs, grows the receipt pool from its minimum to its maximum; every
// receipt goes out once; when the backlog is gone the pool shrinks back to
// its minimum after the stabilization window. The metrics show the same.
func TestPoolFollowsBacklog(t *testing.T) {
	t.Parallel()
	const n = 300
	scale := &autoscale.Config{Min: 1, Max: 12, Target: time.Second, ScaleDownWindow: 3 * time.Second}
	h := newHarness(t, hopts{kind: brokertest.Embedded, fast: true, noStart: true, scale: scale,
		wrap: func(tr mail.Transport) mail.Transport { return slowMail{tr, 50 * time.Millisecond} }})
	h.startRelay()
	for i := range n {
		h.place(i)
	}
	eventually(t, 20*time.Second, "the relay publishing the backlog", func() bool {
		return h.relay.Stats().Published >= n
	})
	h.startWorker()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h.w)

	receiptPool := func() worker.PoolStats {
		for _, p := range h.w.Pools() {
			if p.Durable == worker.ConsumerReceipt {
				return p
			}
		}
		t.Fatal("no receipt pool")
		return worker.PoolStats{}
	}
	var mu sync.Mutex
	peak, peakMetric := 0, 0.0
	sample := func() {
		p := receiptPool()
		m := metric(t, reg, "ladle_consumer_workers", worker.ConsumerReceipt)
		mu.Lock()
		peak, peakMetric = max(peak, p.Workers), max(peakMetric, m)
		mu.Unlock()
	}
	eventually(t, 60*time.Second, "every receipt", func() bool { sample(); return h.sentCount("receipt") == n })
	if peak != scale.Max || peakMetric != float64(scale.Max) {
		t.Errorf("a backlog of %d receipts at 50 ms each grew the pool to %d (metric %v), want %d", n, peak, peakMetric, scale.Max)
	}
	eventually(t, 20*time.Second, "the pool back at its minimum", func() bool { return receiptPool().Workers == scale.Min })
	if st := h.w.Stats()[worker.ConsumerReceipt]; st.Handled != n || st.DeadLetters != 0 {
		t.Errorf("stats %+v, want %d handled", st, n)
	}
	p := receiptPool()
	if !p.LagKnown || p.Pending != 0 || p.InFlight != 0 {
		t.Errorf("after draining the pool reports %+v", p)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := promlint.NewWithMetricFamilies(mfs).Lint(); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", err, problems)
	}
	if got := metric(t, reg, "ladle_consumer_processed_total", worker.ConsumerReceipt); got != n {
		t.Errorf("ladle_consumer_processed_total{consumer=receipt} = %v, want %d", got, n)
	}
}

// metric returns the value of one metric by name and consumer label in reg.
func metric(t *testing.T, reg *prometheus.Registry, name, consumer string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "consumer" && l.GetValue() == consumer {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{consumer=%q}", name, consumer)
	return 0
}
