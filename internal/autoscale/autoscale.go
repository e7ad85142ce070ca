// Package autoscale sizes a worker pool from its backlog: the number of
// handlers that drains the consumer's lag within a target time at the
// measured processing rate, bounded by a minimum and a maximum, with the
// Kubernetes HPA's rules (a tolerance band, immediate scale-up, scale-down
// only to the highest recommendation of a stabilization window), and capped
// by what the downstream can take (a rate limit, and a concurrency limit
// that backs off multiplicatively when the downstream's latency rises and
// grows back additively: AIMD driven by a latency gradient).
//
// Scaler is pure: it turns samples into a pool size and never reads a
// clock. Controller runs it on a ticker against a pool (the worker
// package's), measuring completions with a Meter.
package autoscale

import (
	"math"
	"time"
)

// Config bounds and tunes a Scaler. Zero fields take the defaults shown.
type Config struct {
	// Min and Max bound the pool (defaults 1 and 32). Downstream limits
	// (RateLimit, the latency backoff) may go below Min, never below 1.
	Min, Max int
	// Target is how soon the pool should drain its lag (default 5s).
	Target time.Duration
	// Tolerance is the HPA's band: a recommendation within this fraction
	// of the current size changes nothing (default 0.1).
	Tolerance float64
	// ScaleDownWindow is the HPA's scale-down stabilization window: the
	// pool shrinks only to the highest recommendation made within it
	// (default 30s).
	ScaleDownWindow time.Duration
	// RateLimit is the most events per second the downstream accepts from
	// this pool (0: none). The pool never grows past what that rate keeps
	// busy: RateLimit × latency handlers.
	RateLimit float64
	// LatencyTolerance is how many times its usual latency the downstream
	// may take before the pool backs off (default 2).
	LatencyTolerance float64
}

func (c *Config) defaults() {
	if c.Min <= 0 {
		c.Min = 1
	}
	if c.Max <= 0 {
		c.Max = 32
	}
	if c.Max < c.Min {
		c.Max = c.Min
	}
	if c.Target <= 0 {
		c.Target = 5 * time.Second
	}
	if c.Tolerance <= 0 {
		c.Tolerance = 0.1
	}
	if c.ScaleDownWindow <= 0 {
		c.ScaleDownWindow = 30 * time.Second
	}
	if c.LatencyTolerance <= 1 {
		c.LatencyTolerance = 2
	}
}

// Sample is what the pool looked like at one moment.
type Sample struct {
	At time.Time
	// Lag is the consumer's pending plus in-flight events, as KEDA's NATS
	// JetStream scaler counts it (NumPending + NumAckPending).
	Lag int64
	// Completed is how many events the pool finished since the previous
	// sample, and Latency their mean handling time (0 when none).
	Completed int64
	Latency   time.Duration
}

// Decision is a Scaler's answer to one sample: the pool size and why.
type Decision struct {
	Workers int // the size to run with now
	// Desired is the raw recommendation: the size that drains the lag in
	// Target, within Min and Max, before the tolerance, the window and
	// the downstream caps.
	Desired int
	// Cap is the downstream's limit on the pool right now (the smaller of
	// the rate limit's and the latency backoff's).
	Cap int
	// Reason says which rule decided Workers: "up", "down", "hold",
	// "tolerance", "window" or "downstream".
	Reason string
}

// Scaler turns samples into pool sizes. It is not safe for concurrent use.
type Scaler struct {
	cfg     Config
	workers int

	started bool
	last    time.Time
	lastLag int64

	arrival  float64 // events/s arriving, smoothed
	latShort float64 // seconds, fast-moving mean latency
	latLong  float64 // seconds, slow-moving mean latency: the downstream's usual
	cost     float64 // seconds of a handler per event, overheads included
	limit    float64 // the latency backoff's concurrency limit
	sinceCut int     // samples since the limit was last cut

	recs []rec // recommendations within the scale-down window
}

type rec struct {
	at time.Time
	n  int
}

// How quickly the smoothed figures follow new samples, per sample (one a
// second by default): the short latency within a few samples, the long one
// over about a minute, so a downstream that slows shows as a gap between
// them for long enough to back off.
const (
	alphaArrival  = 0.5
	alphaLatShort = 0.5
	alphaLatLong  = 0.02
	cutEvery      = 3 // samples between two cuts of the latency backoff
)

// New returns a Scaler whose pool starts at cfg.Min.
func New(cfg Config) *Scaler {
	cfg.defaults()
	return &Scaler{cfg: cfg, workers: cfg.Min, limit: float64(cfg.Max), sinceCut: cutEvery}
}

// Config returns the scaler's configuration, defaults filled in.
func (s *Scaler) Config() Config { return s.cfg }

// Workers returns the current pool size.
func (s *Scaler) Workers() int { return s.workers }

// Step takes one sample and returns the pool size to run with.
func (s *Scaler) Step(smp Sample) Decision {
	dt := 0.0
	if s.started {
		dt = smp.At.Sub(s.last).Seconds()
	}
	first := !s.started
	s.started = true
	s.last = smp.At

	if smp.Completed > 0 && smp.Latency > 0 {
		l := smp.Latency.Seconds()
		if s.latShort == 0 {
			s.latShort, s.latLong = l, l
		} else {
			s.latShort += alphaLatShort * (l - s.latShort)
			s.latLong += alphaLatLong * (l - s.latLong)
		}
		// What an event costs a handler: its own time, or, for a pool
		// busy the whole interval, workers × interval / completed, which
		// also counts fetches and acks. Sizing uses the cost; the latency
		// backoff uses the handlers' own time only.
		c := l
		if dt > 0 && smp.Lag > int64(s.workers) {
			c = max(c, float64(s.workers)*dt/float64(smp.Completed))
		}
		if s.cost == 0 {
			s.cost = c
		} else {
			s.cost += alphaLatShort * (c - s.cost)
		}
	}
	if dt > 0 {
		// Events that arrived = the lag's growth + what was finished.
		a := math.Max(0, float64(smp.Lag-s.lastLag)+float64(smp.Completed)) / dt
		s.arrival += alphaArrival * (a - s.arrival)
	}
	s.lastLag = smp.Lag

	// The recommendation. With a known cost per event C, Little's law:
	// keeping up with arrivals takes arrival×C handlers, and draining the
	// lag within Target takes Lag/Target×C more. Before anything was measured, a
	// backlog doubles the pool each sample (slow start), and no backlog
	// asks for the minimum.
	var desired int
	switch {
	case s.cost > 0:
		desired = int(math.Ceil((s.arrival + float64(smp.Lag)/s.cfg.Target.Seconds()) * s.cost))
	case smp.Lag > 0:
		desired = 2 * s.workers
	default:
		desired = s.cfg.Min
	}
	desired = min(max(desired, s.cfg.Min), s.cfg.Max)

	capN := s.downstreamCap(smp, first)

	// The HPA's tolerance: close enough is no change. A bound is not
	// noise, though: a pool short of its maximum under a backlog that
	// asks for more goes all the way.
	if desired != s.cfg.Min && desired != s.cfg.Max && math.Abs(float64(desired)/float64(s.workers)-1) <= s.cfg.Tolerance {
		desired = s.workers
	}
	s.recs = append(s.recs, rec{smp.At, desired})
	cut := 0
	for cut < len(s.recs) && smp.At.Sub(s.recs[cut].at) > s.cfg.ScaleDownWindow {
		cut++
	}
	s.recs = s.recs[cut:]

	d := Decision{Desired: desired, Cap: capN}
	next := s.workers
	switch {
	case desired > s.workers:
		next, d.Reason = desired, "up"
	case desired == s.workers:
		d.Reason = "hold"
		if desired != d.Desired {
			d.Reason = "tolerance"
		}
	default:
		// Scale down only to the highest recommendation in the window.
		hi := 0
		for _, r := range s.recs {
			hi = max(hi, r.n)
		}
		if hi < s.workers {
			next, d.Reason = hi, "down"
		} else {
			d.Reason = "window"
		}
	}
	if next > capN {
		next, d.Reason = capN, "downstream"
	}
	s.workers = max(next, 1)
	d.Workers = s.workers
	return d
}

// downstreamCap returns the most handlers the downstream can use now: the
// rate limit's share (RateLimit × latency), and the latency backoff, which
// cuts the limit by the latency gradient (usual / current × tolerance,
// at most halving it) whenever the current latency is more than
// LatencyTolerance times the usual, and otherwise grows it by one.
func (s *Scaler) downstreamCap(smp Sample, first bool) int {
	capN := s.cfg.Max
	if s.latShort > 0 && !first {
		s.sinceCut++
		if s.latShort > s.cfg.LatencyTolerance*s.latLong {
			// Like TCP's one cut per round trip: give the smaller pool a
			// few samples to show its latency before cutting again.
			if s.sinceCut >= cutEvery {
				g := math.Max(0.5, s.cfg.LatencyTolerance*s.latLong/s.latShort)
				// Cut from what runs now: a limit above the pool's size
				// cuts nothing real.
				s.limit = math.Max(1, math.Min(s.limit, float64(s.workers))*g)
				s.sinceCut = 0
			}
		} else if smp.Completed > 0 {
			s.limit = math.Min(float64(s.cfg.Max), s.limit+1)
		}
		capN = min(capN, int(s.limit))
	}
	if s.cfg.RateLimit > 0 && s.cost > 0 {
		capN = min(capN, max(1, int(math.Ceil(s.cfg.RateLimit*s.cost))))
	}
	return max(capN, 1)
}
