package autoscale

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// sim is a consumer with a backlog and a pool of real goroutines that take
// events and "handle" each by sleeping its latency, all in synctest's fake
// time: what the Controller sees is what a real pool would show it.
type sim struct {
	t  *testing.T
	mu sync.Mutex

	backlog  int64 // not yet taken
	inFlight int64 // taken, not finished
	done     int64
	size     int // what the controller asked for
	running  int // handler goroutines alive
	latency  time.Duration
	jitter   float64 // ± fraction of latency
	rng      *rand.Rand

	meter   Meter
	wg      sync.WaitGroup
	ctx     context.Context
	changes []change
}

type change struct {
	at time.Time
	n  int
}

func newSim(t *testing.T, ctx context.Context, latency time.Duration) *sim {
	return &sim{t: t, ctx: ctx, latency: latency, rng: rand.New(rand.NewPCG(1, 2))}
}

func (s *sim) lag(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.backlog + s.inFlight, nil
}

func (s *sim) resize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size = n
	s.changes = append(s.changes, change{time.Now(), n})
	for s.running < s.size {
		s.running++
		s.wg.Add(1)
		go s.handler()
	}
}

func (s *sim) handler() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if s.running > s.size || s.ctx.Err() != nil {
			s.running--
			s.mu.Unlock()
			return
		}
		if s.backlog == 0 {
			s.mu.Unlock()
			time.Sleep(5 * time.Millisecond) // an empty fetch
			continue
		}
		s.backlog--
		s.inFlight++
		d := s.latency
		if s.jitter > 0 {
			d = time.Duration(float64(d) * (1 + s.jitter*(2*s.rng.Float64()-1)))
		}
		s.mu.Unlock()
		time.Sleep(d)
		s.mu.Lock()
		s.inFlight--
		s.done++
		s.mu.Unlock()
		s.meter.Observe(d)
	}
}

func (s *sim) add(n int64) {
	s.mu.Lock()
	s.backlog += n
	s.mu.Unlock()
}

func (s *sim) workers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

func (s *sim) setLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// arrive adds perSecond events a second, in 10 ms steps (with jitter > 0,
// a random amount averaging that), until ctx ends.
func (s *sim) arrive(ctx context.Context, perSecond float64, jitter bool) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		acc := 0.0
		for ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			step := perSecond / 100
			if jitter {
				s.mu.Lock()
				step *= 2 * s.rng.Float64()
				s.mu.Unlock()
			}
			acc += step
			if n := int64(acc); n > 0 {
				acc -= float64(n)
				s.add(n)
			}
		}
	}()
}

// start runs a Controller for cfg against the sim.
func (s *sim) start(ctx context.Context, cfg Config) *Controller {
	c := &Controller{Scaler: New(cfg), Meter: &s.meter, Lag: s.lag, Resize: s.resize}
	s.wg.Add(1)
	go func() { defer s.wg.Done(); c.Run(ctx) }()
	return c
}

// waitFor advances fake time a second at a time until cond holds or limit
// passes, and returns how long it took (or limit+1s).
func waitFor(limit time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	for time.Since(start) <= limit {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return limit + time.Second
}

func TestLagSpikeScalesToMaxThenBackToMin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s := newSim(t, ctx, 20*time.Millisecond)
		defer func() { cancel(); s.wg.Wait() }()
		cfg := Config{Min: 1, Max: 32}
		s.start(ctx, cfg)
		s.arrive(ctx, 10, false) // a trickle: 0.2 handlers' worth
		time.Sleep(20 * time.Second)
		if w := s.workers(); w != cfg.Min {
			t.Fatalf("a trickle of 10 events/s runs %d workers, want the minimum %d", w, cfg.Min)
		}

		s.add(20000) // the spike
		took := waitFor(10*time.Second, func() bool { return s.workers() == cfg.Max })
		if took > 5*time.Second {
			t.Fatalf("after a spike of 20000 events the pool had %d workers 5s later, want %d", s.workers(), cfg.Max)
		}
		t.Logf("spike of 20000 → %d workers after %v", cfg.Max, took)

		drained := waitFor(60*time.Second, func() bool { l, _ := s.lag(ctx); return l < 10 })
		if drained > 60*time.Second {
			t.Fatal("the backlog did not drain in 60s")
		}
		if w := s.workers(); w < cfg.Max/2 {
			t.Fatalf("the pool shrank to %d right after draining: scale-down ignored the %v window", w, 30*time.Second)
		}
		back := waitFor(45*time.Second, func() bool { return s.workers() == cfg.Min })
		if back > 45*time.Second {
			t.Fatalf("45s after the backlog drained the pool still has %d workers, want %d", s.workers(), cfg.Min)
		}
		if back < 25*time.Second {
			t.Fatalf("the pool was back to the minimum %v after draining: before the 30s stabilization window", back)
		}
		t.Logf("drained in %v; back to %d workers %v later", drained, cfg.Min, back)
	})
}

func TestSteadyLoadDoesNotFlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s := newSim(t, ctx, 20*time.Millisecond)
		defer func() { cancel(); s.wg.Wait() }()
		s.jitter = 0.3
		cfg := Config{Min: 1, Max: 64}
		s.start(ctx, cfg)
		// 400 events/s at 20 ms each is 8 busy handlers on average, with
		// bursty arrivals (0–2× per 10 ms) and ±30% latency.
		s.arrive(ctx, 400, true)
		time.Sleep(60 * time.Second) // settle
		s.mu.Lock()
		from := len(s.changes)
		s.mu.Unlock()
		const windows = 10
		time.Sleep(windows * 30 * time.Second)
		s.mu.Lock()
		changes := append([]change(nil), s.changes[from:]...)
		s.mu.Unlock()
		cancel()
		s.wg.Wait()

		perWindow := map[int]int{}
		for _, c := range changes {
			perWindow[int(c.at.Sub(changes[0].at)/(30*time.Second))]++
		}
		for w, n := range perWindow {
			if n > 1 {
				t.Errorf("window %d (30s) had %d changes, want at most 1: %v", w, n, changes)
			}
		}
		t.Logf("%d changes in %d windows of steady load: %v", len(changes), windows, changes)
		if s.workers() < 8 || s.workers() > 20 {
			t.Errorf("steady load of 8 handlers' worth runs %d workers", s.workers())
		}
	})
}

func TestSlowingDownstreamShrinksThePool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		s := newSim(t, ctx, 20*time.Millisecond)
		defer func() { cancel(); s.wg.Wait() }()
		cfg := Config{Min: 1, Max: 32}
		s.start(ctx, cfg)
		s.add(1_000_000) // more than the pool can drain: it stays at max
		if waitFor(5*time.Second, func() bool { return s.workers() == cfg.Max }) > 5*time.Second {
			t.Fatalf("the pool did not reach %d", cfg.Max)
		}
		time.Sleep(20 * time.Second)
		if w := s.workers(); w != cfg.Max {
			t.Fatalf("with a backlog the pool left its maximum: %d", w)
		}

		s.setLatency(200 * time.Millisecond) // the downstream slows 10×
		took := waitFor(15*time.Second, func() bool { return s.workers() <= cfg.Max/4 })
		if took > 15*time.Second {
			t.Fatalf("15s after the downstream slowed 10× the pool still has %d workers", s.workers())
		}
		t.Logf("downstream 10× slower → %d workers after %v", s.workers(), took)

		// It recovers: the pool grows back once latency is usual again.
		s.setLatency(20 * time.Millisecond)
		if waitFor(60*time.Second, func() bool { return s.workers() == cfg.Max }) > 60*time.Second {
			t.Fatalf("after the downstream recovered the pool stayed at %d", s.workers())
		}
	})
}

func TestRateLimitCapsThePool(t *testing.T) {
	s := New(Config{Min: 1, Max: 64, RateLimit: 100})
	t0 := time.Unix(0, 0)
	var d Decision
	for i := range 10 {
		d = s.Step(Sample{At: t0.Add(time.Duration(i) * time.Second), Lag: 50000, Completed: 100, Latency: 50 * time.Millisecond})
	}
	// 100 events/s at 50 ms each keeps 5 handlers busy; more would only
	// wait on the limit.
	if d.Workers != 5 || d.Reason != "downstream" {
		t.Fatalf("with a rate limit of 100/s and 50 ms per event: %+v, want 5 workers (downstream)", d)
	}
}

func TestToleranceAndImmediateScaleUp(t *testing.T) {
	s := New(Config{Min: 1, Max: 100, Target: 10 * time.Second})
	t0 := time.Unix(0, 0)
	i := 0
	// Each handler finishes 10 events a second at 100 ms each; arrivals
	// keep the lag where it is.
	step := func(lag int64) Decision {
		i++
		return s.Step(Sample{At: t0.Add(time.Duration(i) * time.Second), Lag: lag, Completed: int64(10 * s.Workers()), Latency: 100 * time.Millisecond})
	}
	step(0)
	// Lag 1000 to drain in 10s at 100 ms each: 10 more handlers, at once.
	if d := step(1000); d.Workers < 10 || d.Reason != "up" {
		t.Fatalf("a backlog should scale up at once: %+v", d)
	}
	// Steady: arrivals match completions (w×0.1 s of work a second = w
	// handlers) and a lag of 5w adds 5%: within the 10% band, no change.
	for range 20 {
		step(int64(5 * s.Workers()))
	}
	w := s.Workers()
	for range 10 {
		if d := step(int64(5 * w)); d.Workers != w {
			t.Fatalf("a recommendation 5%% above the size changed the pool: %d → %+v", w, d)
		}
	}
	// 30% above is outside the band: up at once.
	if d := step(int64(30 * w)); d.Workers <= w || d.Reason != "up" {
		t.Fatalf("a recommendation 30%% above the size of %d: %+v", w, d)
	}
}
