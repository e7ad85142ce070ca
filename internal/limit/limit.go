// Package limit is Ladle's one answer to "too busy": every entry point that
// can pile up (order placement, staff pages, live streams, image uploads, the
// menu API) goes through a Limiter, so what "too busy" means is decided here
// and exported as metrics in one shape.
//
// A Limiter admits a bounded number of requests at once. Past that, a
// request waits in a short FIFO queue of bounded length for at most MaxWait;
// a request that finds the queue full, or waits out MaxWait, is shed at once
// with ladle.Unavailable (503 with Retry-After: the server is busy, the same
// request is safe to retry). A PerClient limiter bounds what one client holds
// at once and sheds the excess with ladle.RateLimited (429: the client is the
// cause). Shedding early keeps the latency of admitted work bounded and the
// memory flat, instead of queueing without end (the shape of Netflix's
// concurrency-limits and Envoy's adaptive concurrency filter, with a fixed
// limit).
package limit

import (
	"container/list"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/problem"
)

// Config is one limiter's shape.
type Config struct {
	// Name labels the limiter's metrics (ladle_limit_*{limiter="orders"}).
	Name string
	// MaxInFlight is how many requests run at once (at least 1).
	MaxInFlight int
	// MaxQueue is how many more may wait for a slot (0: none wait).
	MaxQueue int
	// MaxWait bounds one request's time in the queue.
	MaxWait time.Duration
	// RetryAfter is the Retry-After, in seconds, of a shed request (default 1).
	RetryAfter int
}

// Limiter bounds the work in flight; see the package comment. Its zero value
// is not usable: make one with Set.New. A nil *Limiter admits everything
// (handy where a component runs without limits, e.g. in a unit test).
type Limiter struct {
	cfg Config

	mu       sync.Mutex
	inflight int
	queue    list.List // of *waiter, oldest first

	admitted  atomic.Int64
	shedFull  atomic.Int64
	shedWait  atomic.Int64
	cancelled atomic.Int64
}

type waiter struct {
	ready chan struct{} // closed when a slot is handed over
	done  bool          // handed over (under mu)
}

// Acquire takes a slot, waiting in the queue if need be, and returns the
// function that gives it back (call it exactly once). It fails with
// ladle.Unavailable when the queue is full or MaxWait passes, and with ctx's
// error (wrapped as Unavailable too) when ctx ends first.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	if l.inflight < l.cfg.MaxInFlight && l.queue.Len() == 0 {
		l.inflight++
		l.mu.Unlock()
		l.admitted.Add(1)
		return l.release, nil
	}
	if l.queue.Len() >= l.cfg.MaxQueue {
		l.mu.Unlock()
		l.shedFull.Add(1)
		return nil, l.busy(nil)
	}
	w := &waiter{ready: make(chan struct{})}
	el := l.queue.PushBack(w)
	l.mu.Unlock()

	timer := time.NewTimer(l.cfg.MaxWait)
	defer timer.Stop()
	var cause error
	select {
	case <-w.ready:
		l.admitted.Add(1)
		return l.release, nil
	case <-timer.C:
	case <-ctx.Done():
		cause = ctx.Err()
	}
	l.mu.Lock()
	if w.done {
		// The slot arrived as the wait ended: it is ours, take it.
		l.mu.Unlock()
		l.admitted.Add(1)
		return l.release, nil
	}
	l.queue.Remove(el)
	l.mu.Unlock()
	if cause != nil {
		l.cancelled.Add(1)
	} else {
		l.shedWait.Add(1)
	}
	return nil, l.busy(cause)
}

// release hands the slot to the oldest waiter, or frees it.
func (l *Limiter) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if front := l.queue.Front(); front != nil {
		w := l.queue.Remove(front).(*waiter)
		w.done = true
		close(w.ready)
		return // the slot passes on: inflight is unchanged
	}
	l.inflight--
}

// Shed, without waiting, a request that Acquire would refuse at once
// because every slot is taken and the queue is full: it returns the error to
// answer with, or nil. A handler calls it before reading a body it would
// otherwise read only to be refused; what it admits still goes through
// Acquire (which may queue it, or shed it if the queue filled meanwhile).
func (l *Limiter) ShedIfFull() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	full := l.inflight >= l.cfg.MaxInFlight && l.queue.Len() >= l.cfg.MaxQueue
	l.mu.Unlock()
	if !full {
		return nil
	}
	l.shedFull.Add(1)
	return l.busy(nil)
}

func (l *Limiter) busy(cause error) error {
	return ladle.Unavailable(cause, l.cfg.RetryAfter, "the server is busy; retry in %d s", max(l.cfg.RetryAfter, 1))
}

// InFlight and Queued report the current load (tests and metrics).
func (l *Limiter) InFlight() int { l.mu.Lock(); defer l.mu.Unlock(); return l.inflight }

// Queued reports how many requests wait for a slot.
func (l *Limiter) Queued() int { l.mu.Lock(); defer l.mu.Unlock(); return l.queue.Len() }

// Shed reports how many requests were shed (queue full or wait too long).
func (l *Limiter) Shed() int64 { return l.shedFull.Load() + l.shedWait.Load() }

// Wrap runs h under the limiter: a shed request is answered with a problem
// document (503, Retry-After) and never reaches h.
func (l *Limiter) Wrap(h http.Handler) http.Handler {
	if l == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, err := l.Acquire(r.Context())
		if err != nil {
			WriteShed(w, r, err)
			return
		}
		defer release()
		h.ServeHTTP(w, r)
	})
}

// quiet drops log lines: a shed request is counted in the metrics, not
// logged one by one (at 2× overload that would be hundreds of lines a
// second, itself a load).
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// WriteShed answers a request refused by a limiter (503 or 429 with
// Retry-After), without a log line.
func WriteShed(w http.ResponseWriter, r *http.Request, err error) {
	problem.Write(w, r, quiet, err)
}

// PerClient bounds how many requests (or open streams) one client holds at
// once, keyed by whatever identifies the client (its address, its session).
// There is no queue: the excess is refused at once with ladle.RateLimited.
// A nil *PerClient admits everything.
type PerClient struct {
	name       string
	max        int
	retryAfter int

	mu   sync.Mutex
	held map[string]int

	shed atomic.Int64
}

// Acquire takes one of key's slots and returns the function that gives it
// back (call it exactly once), or fails with ladle.RateLimited.
func (p *PerClient) Acquire(key string) (release func(), err error) {
	if p == nil {
		return func() {}, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held[key] >= p.max {
		p.shed.Add(1)
		return nil, ladle.RateLimited(p.retryAfter, "too many open connections from this client (at most %d)", p.max)
	}
	p.held[key]++
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.held[key]--; p.held[key] <= 0 {
			delete(p.held, key)
		}
	}, nil
}

// Held reports how many slots key holds.
func (p *PerClient) Held(key string) int { p.mu.Lock(); defer p.mu.Unlock(); return p.held[key] }

// Set is every limiter of one server; it is a prometheus.Collector of their
// numbers (register it on the server's registry).
type Set struct {
	mu        sync.Mutex
	limiters  []*Limiter
	perClient []*PerClient
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{} }

// New adds a limiter to the set. MaxInFlight below 1 is taken as 1, MaxWait
// of 0 as no waiting (MaxQueue is then 0 too).
func (s *Set) New(c Config) *Limiter {
	c.MaxInFlight = max(c.MaxInFlight, 1)
	c.MaxQueue = max(c.MaxQueue, 0)
	if c.MaxWait <= 0 {
		c.MaxQueue = 0
	}
	c.RetryAfter = max(c.RetryAfter, 1)
	l := &Limiter{cfg: c}
	s.mu.Lock()
	s.limiters = append(s.limiters, l)
	s.mu.Unlock()
	return l
}

// NewPerClient adds a per-client limiter to the set: at most maxPerClient
// at once per key (below 1 is taken as 1).
func (s *Set) NewPerClient(name string, maxPerClient, retryAfter int) *PerClient {
	p := &PerClient{name: name, max: max(maxPerClient, 1), retryAfter: max(retryAfter, 1), held: map[string]int{}}
	s.mu.Lock()
	s.perClient = append(s.perClient, p)
	s.mu.Unlock()
	return p
}

var (
	descInFlight = prometheus.NewDesc("ladle_limit_in_flight", "Requests running under the limiter.", []string{"limiter"}, nil)
	descQueued   = prometheus.NewDesc("ladle_limit_queued", "Requests waiting for a slot.", []string{"limiter"}, nil)
	descLimit    = prometheus.NewDesc("ladle_limit_max_in_flight", "The limiter's bound on requests in flight (per client for per-client limiters).", []string{"limiter"}, nil)
	descAdmitted = prometheus.NewDesc("ladle_limit_admitted_total", "Requests admitted.", []string{"limiter"}, nil)
	descShed     = prometheus.NewDesc("ladle_limit_shed_total", "Requests refused: queue_full, queue_timeout (503) or per_client (429); client_gone counts waits the client abandoned.", []string{"limiter", "reason"}, nil)
	descClients  = prometheus.NewDesc("ladle_limit_clients", "Clients holding at least one slot of a per-client limiter.", []string{"limiter"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Set) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInFlight, descQueued, descLimit, descAdmitted, descShed, descClients} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Set) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	ls, ps := s.limiters, s.perClient
	s.mu.Unlock()
	for _, l := range ls {
		n := l.cfg.Name
		l.mu.Lock()
		inflight, queued := l.inflight, l.queue.Len()
		l.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(inflight), n)
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(queued), n)
		ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(l.cfg.MaxInFlight), n)
		ch <- prometheus.MustNewConstMetric(descAdmitted, prometheus.CounterValue, float64(l.admitted.Load()), n)
		ch <- prometheus.MustNewConstMetric(descShed, prometheus.CounterValue, float64(l.shedFull.Load()), n, "queue_full")
		ch <- prometheus.MustNewConstMetric(descShed, prometheus.CounterValue, float64(l.shedWait.Load()), n, "queue_timeout")
		ch <- prometheus.MustNewConstMetric(descShed, prometheus.CounterValue, float64(l.cancelled.Load()), n, "client_gone")
	}
	for _, p := range ps {
		p.mu.Lock()
		clients, held := len(p.held), 0
		for _, v := range p.held {
			held += v
		}
		p.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(held), p.name)
		ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, float64(p.max), p.name)
		ch <- prometheus.MustNewConstMetric(descClients, prometheus.GaugeValue, float64(clients), p.name)
		ch <- prometheus.MustNewConstMetric(descShed, prometheus.CounterValue, float64(p.shed.Load()), p.name, "per_client")
	}
}
