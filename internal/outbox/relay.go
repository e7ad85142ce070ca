// Package outbox relays committed events from the database's outbox table to
// the broker. The store writes each event in the same transaction as the
// change it describes; the relay publishes it with Nats-Msg-Id = event id and
// marks it published only after the broker acknowledged it. So every
// committed event is published at least once, and the broker's duplicate
// window (and, beyond it, each consumer's inbox) turns that into once.
//
// The relay wakes on commit: in-process through the store's commit hook
// (Wake), across processes through PostgreSQL LISTEN/NOTIFY when the store
// offers it, and on a poll timer as the fallback for anything missed.
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/priority"
)

// Store is the outbox side of the database (sqlstore.Store implements it).
type Store interface {
	// RelayOutbox hands up to limit unpublished events, oldest first, to
	// publish and marks published the ids it returns. Safe to call from
	// several relays at once (see sqlstore.Store.RelayOutbox).
	RelayOutbox(ctx context.Context, limit int, now time.Time,
		publish func(ctx context.Context, evs []ladle.Event) (acked []string, err error)) (int, error)
}

// Listener is implemented by stores that can wake relays in other
// processes (PostgreSQL). ListenEvents blocks until ctx is done.
type Listener interface {
	ListenEvents(ctx context.Context, fn func()) error
}

// Pruner is implemented by stores that can delete old published events.
type Pruner interface {
	PruneOutbox(ctx context.Context, before time.Time, limit int) (int64, error)
}

// Publisher publishes events and returns the ids the broker acknowledged
// (broker.Broker implements it).
type Publisher interface {
	PublishEvents(ctx context.Context, evs []ladle.Event) (acked []string, err error)
}

// Fault points, for crash tests (Config.Fault).
const (
	// FaultAfterPublish is reached when a batch was published and
	// acknowledged but not yet marked published: the classic window in
	// which a crash makes the next relay publish the batch again.
	FaultAfterPublish = "relay.after_publish"
)

// Config configures a Relay.
type Config struct {
	Store     Store
	Publisher Publisher
	// Batch is the most events published per round (default 256).
	Batch int
	// PollInterval is how often the relay looks for events when nothing
	// woke it (default 1s). Commits wake it at once; the poll only catches
	// what a wake-up missed (another process's commit on SQLite, a dropped
	// LISTEN connection).
	PollInterval time.Duration
	// Retention is how long published events stay in the table (default
	// 24h); negative keeps them forever.
	Retention time.Duration
	Logger    *slog.Logger
	Clock     ladle.Clock
	// Fault, if set, is called at each fault point; a non-nil error makes
	// the relay abandon the round right there, as if the process died.
	Fault func(point string) error
	// Urgent, if set, is held while a round runs: the events it publishes
	// are what receipts wait for, so bulk work in this process (campaign
	// sends) yields meanwhile.
	Urgent *priority.Gate
}

// Relay is the outbox relay: a Start(ctx)/Stop() service.
type Relay struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}

	published atomic.Int64
	round     atomic.Int64 // the round a Wake now expects (roundKey)
	keyPrefix string
	rounds    atomic.Int64
	failures  atomic.Int64
	faults    atomic.Int64
}

// New returns a relay; Start runs it.
func New(cfg Config) *Relay {
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Retention == 0 {
		cfg.Retention = 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = ladle.Now
	}
	return &Relay{cfg: cfg, log: cfg.Logger.With("component", "relay"), wake: make(chan struct{}, 1),
		keyPrefix: "outbox-relay:" + strconv.FormatInt(relays.Add(1), 10) + ":"}
}

// Wake makes the relay look for events now. It never blocks: pass it to
// the store's OnEventsCommitted.
//
// With Urgent set, the events just committed are urgent work on its way
// from this moment: Wake marks the gate busy (an expectation of the next
// round, for at most wakeHold) and the round, once it starts, takes over.
// Before, bulk work ran unchecked between a commit and its round, and the
// relay's goroutine waited for a CPU behind it (p99 4–6 ms while a
// campaign sent, against 0.5 at rest).
func (r *Relay) Wake() {
	if r.cfg.Urgent != nil {
		r.cfg.Urgent.Expect(r.roundKey(r.round.Load()), wakeHold)
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// wakeHold bounds how long a Wake holds the gate when no round takes over
// (the relay is stopped, or stuck on a dead broker): bulk work is slowed,
// never stopped.
const wakeHold = time.Second

// roundKey is the gate key of the relay's round n, unique to this relay
// (two relays of one process, in tests, must not take over each other's).
func (r *Relay) roundKey(n int64) string {
	return r.keyPrefix + strconv.FormatInt(n, 10)
}

// relays numbers the relays of the process, for roundKey.
var relays atomic.Int64

// Start runs the relay in the background until Stop or ctx ends.
func (r *Relay) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		return errors.New("outbox: relay already started")
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	var wg sync.WaitGroup
	if l, ok := r.cfg.Store.(Listener); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.ListenEvents(ctx, r.Wake); err != nil {
				r.log.Debug("no cross-process wake-ups; polling", "err", err)
			}
		}()
	}
	if p, ok := r.cfg.Store.(Pruner); ok && r.cfg.Retention > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.pruneLoop(ctx, p)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.loop(ctx)
	}()
	go func() {
		wg.Wait()
		close(r.done)
	}()
	return nil
}

// Stop stops the relay and waits for it. A round in progress finishes or is
// abandoned (its events stay unpublished and go out on the next start).
func (r *Relay) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel = nil
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (r *Relay) loop(ctx context.Context) {
	poll := time.NewTicker(r.cfg.PollInterval)
	defer poll.Stop()
	backoff := time.Duration(0)
	var lastLog time.Time
	for {
		n, err := r.RunOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.failures.Add(1)
			backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
			// While the broker is down every round fails: say so every
			// few seconds, not hundreds of times.
			if time.Since(lastLog) > 10*time.Second {
				r.log.Warn("publishing events failed; retrying", "err", err, "backoff", backoff)
				lastLog = time.Now()
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		if backoff > 0 {
			r.log.Info("publishing events again")
			backoff = 0
		}
		if n >= r.cfg.Batch {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-poll.C:
		}
	}
}

// RunOnce publishes one batch and returns how many events it marked
// published. The loop calls it; tests and tools may too.
func (r *Relay) RunOnce(ctx context.Context) (int, error) {
	r.rounds.Add(1)
	defer r.cfg.Urgent.Enter()()
	if r.cfg.Urgent != nil {
		// This round takes over the wakes that expected it; a wake from
		// now on expects the next one.
		r.cfg.Urgent.Arrived(r.roundKey(r.round.Add(1) - 1))
	}
	n, err := r.cfg.Store.RelayOutbox(ctx, r.cfg.Batch, r.cfg.Clock(), r.publish)
	r.published.Add(int64(n))
	return n, err
}

func (r *Relay) publish(ctx context.Context, evs []ladle.Event) ([]string, error) {
	acked, err := r.cfg.Publisher.PublishEvents(ctx, evs)
	if len(acked) > 0 && r.cfg.Fault != nil {
		if ferr := r.cfg.Fault(FaultAfterPublish); ferr != nil {
			r.faults.Add(1)
			return nil, ferr
		}
	}
	return acked, err
}

func (r *Relay) pruneLoop(ctx context.Context, p Pruner) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		for {
			n, err := p.PruneOutbox(ctx, r.cfg.Clock().Add(-r.cfg.Retention), 5000)
			if err != nil {
				if ctx.Err() == nil {
					r.log.Warn("pruning the outbox failed", "err", err)
				}
				break
			}
			if n < 5000 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stats are the relay's counters since New.
type Stats struct {
	Published int64 // events marked published
	Rounds    int64 // RelayOutbox calls
	Failures  int64 // rounds that failed (broker or database unavailable)
	Faults    int64 // rounds abandoned by an injected fault
}

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	return Stats{Published: r.published.Load(), Rounds: r.rounds.Load(), Failures: r.failures.Load(), Faults: r.faults.Load()}
}
