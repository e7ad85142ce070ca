// Package sysstats gathers what the System page shows: every worker
// process's consumer pools, and the outbox, sampled once a second into a
// short history.
//
// Worker processes publish a Snapshot of their pools every second on a core
// NATS subject of the deployment (not the event stream: a lost snapshot is
// just a gap). API processes run a Board that listens, keeps the newest
// snapshot per process (forgetting a process that went quiet), and samples
// the sum into a ring of Points. In the all-in-one role both run in one
// process, over the same subject.
package sysstats

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ladle-dev/ladle/internal/worker"
)

// Snapshot is one worker process's pools at one moment.
type Snapshot struct {
	Process   string             `json:"process"`
	At        time.Time          `json:"at"`
	Pools     []worker.PoolStats `json:"pools"`
	Processed map[string]int64   `json:"processed"` // by consumer name, since the process started
	Failed    map[string]int64   `json:"failed"`

	rates map[string]float64 // set by the Board on receipt: processed/s since the previous snapshot
	sent  time.Time          // At as the sender stamped it
}

// Interval is how often snapshots are published and points sampled.
const Interval = time.Second

// Publish sends snap() on subject every Interval until ctx ends.
func Publish(ctx context.Context, nc *nats.Conn, subject string, snap func() Snapshot) {
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b, err := json.Marshal(snap())
		if err != nil {
			continue
		}
		_ = nc.Publish(subject, b) // buffered; a gap is harmless
	}
}

// WorkerSnapshot returns a Snapshot function for w.
func WorkerSnapshot(process string, w *worker.Worker) func() Snapshot {
	return func() Snapshot {
		s := Snapshot{Process: process, At: time.Now(), Pools: w.Pools(),
			Processed: map[string]int64{}, Failed: map[string]int64{}}
		for name, st := range w.Stats() {
			s.Processed[name] = st.Handled
			s.Failed[name] = st.Failed
		}
		return s
	}
}

// Consumer is one consumer at one Point, summed over the worker processes.
type Consumer struct {
	Name     string  `json:"name"`
	Pending  int64   `json:"pending"`   // broker-wide (the newest report)
	InFlight int64   `json:"in_flight"` // broker-wide (the newest report)
	Workers  int     `json:"workers"`   // sum of the processes' pool sizes
	Busy     int     `json:"busy"`
	Rate     float64 `json:"rate"` // events processed per second, all processes
}

// Point is the system at one moment.
type Point struct {
	At        time.Time  `json:"at"`
	Processes int        `json:"processes"` // worker processes reporting
	Consumers []Consumer `json:"consumers"`
	// OutboxBacklog and OutboxAge (seconds) describe the events not yet
	// published; OutboxKnown is false when the database did not answer.
	OutboxBacklog int     `json:"outbox_backlog"`
	OutboxAge     float64 `json:"outbox_age"`
	OutboxKnown   bool    `json:"outbox_known"`
}

// Outbox reports the outbox backlog (sqlstore.Store implements it).
type Outbox interface {
	OutboxBacklog(ctx context.Context) (n int, oldest time.Time, err error)
}

// Board keeps the last History points. Start it, read Points.
type Board struct {
	// History is how many points are kept (default 300: five minutes).
	History int
	Outbox  Outbox
	Logger  *slog.Logger

	mu     sync.Mutex
	latest map[string]Snapshot // by process
	points []Point
	sub    *nats.Subscription
	stop   context.CancelFunc
	done   chan struct{}
}

// staleAfter forgets a process that has not reported for this long (it
// stopped or died): its workers no longer count.
const staleAfter = 5 * Interval

// Start listens on subject and samples every Interval until Stop.
func (b *Board) Start(nc *nats.Conn, subject string) error {
	if b.History <= 0 {
		b.History = 300
	}
	if b.Logger == nil {
		b.Logger = slog.Default()
	}
	b.latest = map[string]Snapshot{}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var s Snapshot
		if err := json.Unmarshal(m.Data, &s); err != nil || s.Process == "" {
			return
		}
		sent := s.At
		s.At = time.Now() // the receiver's clock decides staleness
		b.mu.Lock()
		defer b.mu.Unlock()
		s.rates = map[string]float64{}
		if prev, ok := b.latest[s.Process]; ok {
			if dt := sent.Sub(prev.sent).Seconds(); dt > 0 {
				for name, n := range s.Processed {
					s.rates[name] = float64(max(0, n-prev.Processed[name])) / dt
				}
			}
		}
		s.sent = sent
		b.latest[s.Process] = s
	})
	if err != nil {
		return err
	}
	b.sub = sub
	ctx, cancel := context.WithCancel(context.Background())
	b.stop, b.done = cancel, make(chan struct{})
	go func() {
		defer close(b.done)
		t := time.NewTicker(Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				b.sample(ctx)
			}
		}
	}()
	return nil
}

// Stop stops listening and sampling.
func (b *Board) Stop() {
	if b.stop == nil {
		return
	}
	b.stop()
	<-b.done
	_ = b.sub.Unsubscribe()
}

func (b *Board) sample(ctx context.Context) {
	p := Point{At: time.Now()}
	if b.Outbox != nil {
		octx, cancel := context.WithTimeout(ctx, Interval/2)
		n, oldest, err := b.Outbox.OutboxBacklog(octx)
		cancel()
		if err == nil {
			p.OutboxKnown, p.OutboxBacklog = true, n
			if n > 0 && !oldest.IsZero() {
				p.OutboxAge = max(0, p.At.Sub(oldest).Seconds())
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	byName := map[string]*Consumer{}
	newest := map[string]time.Time{}
	for proc, s := range b.latest {
		if p.At.Sub(s.At) > staleAfter {
			delete(b.latest, proc)
			continue
		}
		p.Processes++
		for _, pl := range s.Pools {
			if strings.HasSuffix(pl.Durable, "-replay") {
				continue // replays are one handler each, and rare
			}
			c := byName[pl.Consumer]
			if c == nil {
				c = &Consumer{Name: pl.Consumer}
				byName[pl.Consumer] = c
			}
			c.Workers += pl.Workers
			c.Busy += pl.Busy
			// The lag is the broker's, the same in every process: the
			// newest report wins.
			if pl.LagKnown && !s.At.Before(newest[pl.Consumer]) {
				c.Pending, c.InFlight = pl.Pending, pl.InFlight
				newest[pl.Consumer] = s.At
			}
		}
		for name, r := range s.rates {
			if c := byName[name]; c != nil {
				c.Rate += r
			}
		}
	}
	for _, c := range byName {
		p.Consumers = append(p.Consumers, *c)
	}
	sort.Slice(p.Consumers, func(i, j int) bool { return p.Consumers[i].Name < p.Consumers[j].Name })
	b.points = append(b.points, p)
	if len(b.points) > b.History {
		b.points = append(b.points[:0], b.points[len(b.points)-b.History:]...)
	}
}

// Points returns a copy of the history, oldest first.
func (b *Board) Points() []Point {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Point(nil), b.points...)
}
