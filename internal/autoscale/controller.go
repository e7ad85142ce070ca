package autoscale

import (
	"context"
	"sync"
	"time"
)

// Meter counts a pool's finished events and their handling time. Handlers
// call Observe; the Controller takes the totals each tick.
type Meter struct {
	mu  sync.Mutex
	n   int64
	sum time.Duration
}

// Observe records one finished event that took d.
func (m *Meter) Observe(d time.Duration) {
	m.mu.Lock()
	m.n++
	m.sum += d
	m.mu.Unlock()
}

// take returns the events finished since the last take and their mean
// handling time.
func (m *Meter) take() (int64, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, sum := m.n, m.sum
	m.n, m.sum = 0, 0
	if n == 0 {
		return 0, 0
	}
	return n, sum / time.Duration(n)
}

// Controller runs a Scaler against a pool: every Interval it reads the lag,
// takes the Meter's completions, steps the Scaler and resizes the pool when
// the answer changed.
type Controller struct {
	Scaler *Scaler
	Meter  *Meter
	// Interval between samples (default 1s).
	Interval time.Duration
	// Lag reads the consumer's pending + in-flight events. A failure skips
	// that sample: the pool keeps its size.
	Lag func(ctx context.Context) (int64, error)
	// Resize sets the pool's size. Run calls it once at start with the
	// Scaler's current size, then on every change.
	Resize func(n int)
	// Observe, if set, sees every sample and decision (metrics, logs).
	Observe func(Sample, Decision)
}

// Run samples until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	iv := c.Interval
	if iv <= 0 {
		iv = time.Second
	}
	size := c.Scaler.Workers()
	c.Resize(size)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 2*iv)
		lag, err := c.Lag(lctx)
		cancel()
		if err != nil {
			continue
		}
		n, lat := c.Meter.take()
		smp := Sample{At: time.Now(), Lag: lag, Completed: n, Latency: lat}
		d := c.Scaler.Step(smp)
		if c.Observe != nil {
			c.Observe(smp, d)
		}
		if d.Workers != size {
			size = d.Workers
			c.Resize(size)
		}
	}
}
