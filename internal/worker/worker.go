// Package worker runs Ladle's event consumers: durable JetStream pull
// consumers with explicit acks, one per kind of work (receipt emails,
// "ready for pickup" emails, …), each with its own pool of handlers, so one
// type's backlog never holds up another's.
//
// Delivery is at least once. Handlers make their effect exactly once by
// recording the event id in the consumer's inbox in the same transaction as
// the effect (see email.go for how that stretches over SMTP). A failed
// delivery is retried with backoff; after MaxAttempts (or at once, for a
// failure no retry can fix) the event becomes a dead letter that staff see
// and can replay.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/autoscale"
	"github.com/ladle-dev/ladle/internal/broker"
)

// Handler does a consumer's work for one event. It returns nil when the
// effect is done (and recorded in the inbox), Permanent(err) when no retry
// can succeed, RetryAfter(d) to be called again after d without counting a
// failure, or any other error to be retried with backoff.
type Handler func(ctx context.Context, ev ladle.Event) error

// Consumer is one kind of work.
type Consumer struct {
	// Name is the durable consumer's name, and the key of its inbox rows,
	// emails and dead letters. Workers in every process that use the same
	// name share the work.
	Name string
	// EventTypes are the event types it receives. It also receives the
	// replays of its own dead letters (ladle.EventReplayPrefix + Name).
	EventTypes []string
	// Concurrency is how many events this process handles at once
	// (default 1), when Scale is nil.
	Concurrency int
	// Scale, if set, sizes the pool from the consumer's lag instead: the
	// handlers that drain it within Scale.Target at the measured rate,
	// between Scale.Min and Scale.Max (see internal/autoscale). Each
	// process sizes its own pool from the consumer's whole lag.
	Scale *autoscale.Config
	// MaxAttempts is how many deliveries a failing event gets before it
	// becomes a dead letter (default 8). Deliveries handed back because the
	// worker was stopping do not count; those to a worker that died do.
	MaxAttempts int
	// Backoff is the wait after the nth failed attempt (the last entry
	// repeats). Default 1s, 5s, 30s, 2m, 10m, 30m, 1h.
	Backoff []time.Duration
	// AckWait is how long the broker waits for an ack before it redelivers
	// to another handler (default 30s). While a handler works the worker
	// tells the broker it is still in progress, so only a dead worker's
	// events are redelivered, AckWait after it died.
	AckWait time.Duration
	// MaxAckPending bounds unacknowledged events across every process
	// sharing the consumer (default 1000).
	MaxAckPending int
	Handle        Handler
	// GaveUp, if set, is called when an event becomes a dead letter (the
	// email handlers mark their email failed with the reason).
	GaveUp func(ctx context.Context, ev ladle.Event, err error)
}

// DefaultBackoff is Consumer.Backoff's default.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour}

// DeadLetterStore records dead letters (sqlstore.Store implements it).
type DeadLetterStore interface {
	AddDeadLetter(ctx context.Context, d *ladle.DeadLetter) (created bool, err error)
}

// InterruptionStore records deliveries a worker handed back undone because
// it was shutting down (sqlstore.Store implements it). The broker counts
// every delivery, those too; the worker subtracts these, so a run of deploys
// that each interrupt the same event never makes it a dead letter.
type InterruptionStore interface {
	InterruptDelivery(ctx context.Context, consumer, messageID string, now time.Time) error
	DeliveryInterruptions(ctx context.Context, consumer, messageID string) (int, error)
}

// Fault points, for crash tests (Config.Fault).
const (
	// FaultAfterEffect is reached when a handler's effect (and its inbox
	// row) committed but the event was not acknowledged yet: a crash here
	// gets the event redelivered, and the inbox turns that into a no-op.
	FaultAfterEffect = "worker.after_effect"
)

// Config configures a Worker.
type Config struct {
	Broker      *broker.Broker
	DeadLetters DeadLetterStore
	// Interruptions, if set, keeps shutdowns from counting as attempts.
	// Default: DeadLetters, if it implements InterruptionStore too.
	Interruptions InterruptionStore
	Logger        *slog.Logger
	Clock         ladle.Clock
	// Fault, if set, is called at each fault point with the event; a
	// non-nil error makes the worker drop the event right there without
	// acking it, as if the process died (the broker redelivers it after
	// AckWait).
	Fault func(point string, ev ladle.Event) error
	// ShutdownGrace is how long Stop lets handlers in progress finish
	// before cancelling them (default 10s).
	ShutdownGrace time.Duration
}

// Worker runs consumers: a Start(ctx)/Stop() service.
type Worker struct {
	cfg       Config
	log       *slog.Logger
	consumers []*consumerRun

	mu      sync.Mutex
	started bool
	stopRun context.CancelFunc // stops fetching
	stopAll context.CancelFunc // cancels handlers
	wg      sync.WaitGroup
}

// New returns a worker for the consumers; Start runs it.
func New(cfg Config, consumers ...Consumer) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = ladle.Now
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.Interruptions == nil {
		cfg.Interruptions, _ = cfg.DeadLetters.(InterruptionStore)
	}
	w := &Worker{cfg: cfg, log: cfg.Logger.With("component", "worker")}
	for _, c := range consumers {
		if c.Concurrency <= 0 {
			c.Concurrency = 1
		}
		if c.MaxAttempts <= 0 {
			c.MaxAttempts = 8
		}
		if len(c.Backoff) == 0 {
			c.Backoff = DefaultBackoff
		}
		if c.AckWait <= 0 {
			c.AckWait = 30 * time.Second
		}
		if c.MaxAckPending <= 0 {
			c.MaxAckPending = 1000
		}
		cr := &consumerRun{Consumer: c, w: w, log: w.log.With("consumer", c.Name),
			latency: prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "ladle_consumer_processing_duration_seconds", Help: "How long a handler took per delivery, by consumer.",
				ConstLabels: prometheus.Labels{"consumer": c.Name},
				Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30},
			})}
		cfgs := cr.configs()
		for i, cfg := range cfgs {
			scale := autoscale.Config{Min: c.Concurrency, Max: c.Concurrency}
			if c.Scale != nil {
				scale = *c.Scale
			}
			if i == len(cfgs)-1 {
				scale = autoscale.Config{Min: 1, Max: 1} // replays are rare
			}
			cr.pools = append(cr.pools, newPool(cr, cfg, scale))
		}
		w.consumers = append(w.consumers, cr)
	}
	return w
}

// Start sets up each consumer on the broker and starts its handlers. It
// returns at once: a consumer whose setup fails (the broker is down) keeps
// retrying in the background.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return errors.New("worker: already started")
	}
	w.started = true
	handlerCtx, stopAll := context.WithCancel(context.WithoutCancel(ctx))
	runCtx, stopRun := context.WithCancel(ctx)
	w.stopRun, w.stopAll = stopRun, stopAll
	for _, c := range w.consumers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			c.run(runCtx, handlerCtx)
		}()
	}
	return nil
}

// Stop stops fetching, lets handlers in progress finish (up to
// ShutdownGrace, then cancels them) and returns when all have returned.
// A handler cut short this way hands its event back at once (Nak), and the
// worker records the interruption (Config.Interruptions) so the redelivery
// does not count it as a failed attempt.
func (w *Worker) Stop() {
	w.mu.Lock()
	stopRun, stopAll := w.stopRun, w.stopAll
	w.stopRun = nil
	w.mu.Unlock()
	if stopRun == nil {
		return
	}
	stopRun()
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownGrace):
		stopAll()
		<-done
	}
	stopAll()
}

// Stats are a consumer's counters in this process since New.
type Stats struct {
	Handled      int64 // events acknowledged after their handler succeeded
	Failed       int64 // handler failures (each retried or dead-lettered)
	Redeliveries int64 // deliveries of an event this consumer had been given before
	DeadLetters  int64 // events given up on
	Busy         int64 // deliveries postponed because another handler held the event
	Faults       int64 // events dropped by an injected fault
}

// Stats returns each consumer's counters, by consumer name.
func (w *Worker) Stats() map[string]Stats {
	out := map[string]Stats{}
	for _, c := range w.consumers {
		out[c.Name] = Stats{Handled: c.handled.Load(), Failed: c.failed.Load(), Redeliveries: c.redelivered.Load(),
			DeadLetters: c.dead.Load(), Busy: c.busy.Load(), Faults: c.faults.Load()}
	}
	return out
}

type consumerRun struct {
	Consumer
	w     *Worker
	log   *slog.Logger
	pools []*pool // one per broker consumer (configs), the replays' last

	handled, failed, redelivered, dead, busy, faults atomic.Int64
	latency                                          prometheus.Histogram
}

// configs returns the broker consumers behind this Consumer: one per
// subject (its event types and its replays), because servers before 2.10
// (Debian's 2.9, for one) take a single filter subject per consumer. The
// first event type's consumer is named Name; the others add a suffix.
func (c *consumerRun) configs() []jetstream.ConsumerConfig {
	type sub struct{ name, subject string }
	var subs []sub
	for i, t := range c.EventTypes {
		name := c.Name
		if i > 0 {
			name += "-" + strings.ReplaceAll(t, ".", "_")
		}
		subs = append(subs, sub{name, c.w.cfg.Broker.Subject(t)})
	}
	subs = append(subs, sub{c.Name + "-replay", c.w.cfg.Broker.Subject(ladle.EventReplayPrefix + c.Name)})
	var out []jetstream.ConsumerConfig
	for _, s := range subs {
		out = append(out, jetstream.ConsumerConfig{
			Durable:       s.name,
			Description:   "ladle worker " + c.Name + ": " + s.subject,
			FilterSubject: s.subject,
			// A consumer created after events were published still gets
			// them all: an API process may take orders before any
			// worker started.
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       c.AckWait,
			// Unlimited: the worker counts deliveries itself and
			// dead-letters at MaxAttempts, so an event is never dropped
			// without a trace (the broker would drop it silently at its
			// own MaxDeliver).
			MaxDeliver:    -1,
			MaxAckPending: c.MaxAckPending,
		})
	}
	return out
}

// run pulls from each of the consumer's subjects until runCtx ends: the
// event types with their pools (autoscaled, or Concurrency handlers), the
// replays with one handler.
func (c *consumerRun) run(runCtx, handlerCtx context.Context) {
	var wg sync.WaitGroup
	for _, p := range c.pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(runCtx, handlerCtx)
		}()
	}
	wg.Wait()
}

// pool is the handlers of one broker consumer. Its size (how many events it
// handles at once) is set by its autoscale.Controller: fixed at Concurrency,
// or following the consumer's lag. A handler is a goroutine per event, so
// resizing is a number: growing lets the puller fetch more at once, and
// shrinking lets handlers in progress finish while fetching waits.
type pool struct {
	c     *consumerRun
	cfg   jetstream.ConsumerConfig
	ctl   *autoscale.Controller
	meter autoscale.Meter

	mu   sync.Mutex
	size int
	busy int
	wake chan struct{} // a handler finished or the size grew

	// Last read from the broker (NumPending, NumAckPending: the lag as
	// KEDA's NATS JetStream scaler counts it, across all processes).
	pending, ackPending atomic.Int64
	lagKnown            atomic.Bool
}

func newPool(c *consumerRun, cfg jetstream.ConsumerConfig, scale autoscale.Config) *pool {
	p := &pool{c: c, cfg: cfg, wake: make(chan struct{}, 1)}
	p.ctl = &autoscale.Controller{Scaler: autoscale.New(scale), Meter: &p.meter, Lag: p.lag, Resize: p.resize,
		Observe: func(s autoscale.Sample, d autoscale.Decision) {
			if d.Workers != p.workers() {
				c.log.Debug("resizing pool", "durable", cfg.Durable, "lag", s.Lag, "from", p.workers(), "to", d.Workers,
					"desired", d.Desired, "cap", d.Cap, "reason", d.Reason)
			}
		}}
	return p
}

func (p *pool) resize(n int) {
	p.mu.Lock()
	p.size = n
	p.mu.Unlock()
	p.signal()
}

func (p *pool) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pool) workers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

// idle returns how many more events the pool can take now.
func (p *pool) idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size - p.busy
}

// lag reads the consumer's pending and in-flight events from the broker.
func (p *pool) lag(ctx context.Context) (int64, error) {
	b := p.c.w.cfg.Broker
	cons, err := b.JetStream().Consumer(ctx, b.StreamName(), p.cfg.Durable)
	if err != nil {
		return 0, err
	}
	info := cons.CachedInfo()
	p.pending.Store(int64(info.NumPending))
	p.ackPending.Store(int64(info.NumAckPending))
	p.lagKnown.Store(true)
	return int64(info.NumPending) + int64(info.NumAckPending), nil
}

// run sizes the pool and feeds its handlers until runCtx ends, then waits
// for the handlers in progress.
//
// The puller asks the broker for exactly as many events as the pool has
// idle handlers, never more: an event waiting in a client-side buffer would
// have its AckWait run out unnoticed (no handler reports progress for it
// yet), and the broker would deliver it again, pushing its delivery count
// towards a dead letter.
func (p *pool) run(runCtx, handlerCtx context.Context) {
	var handlers sync.WaitGroup
	defer handlers.Wait()
	ctlCtx, stopCtl := context.WithCancel(runCtx)
	var ctl sync.WaitGroup
	ctl.Go(func() { p.ctl.Run(ctlCtx) })
	defer func() { stopCtl(); ctl.Wait() }()

	dispatch := func(m jetstream.Msg) {
		p.mu.Lock()
		p.busy++
		p.mu.Unlock()
		handlers.Go(func() {
			start := time.Now()
			p.c.handle(handlerCtx, m)
			d := time.Since(start)
			p.meter.Observe(d)
			p.c.latency.Observe(d.Seconds())
			p.mu.Lock()
			p.busy--
			p.mu.Unlock()
			p.signal()
		})
	}

	c := p.c
	var cons jetstream.Consumer
	backoff := 100 * time.Millisecond
	var lastLog time.Time
	for runCtx.Err() == nil {
		k := p.idle()
		if k <= 0 {
			select {
			case <-p.wake:
				continue
			case <-runCtx.Done():
				return
			}
		}
		err := c.pull(runCtx, &cons, p.cfg, k, dispatch)
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if runCtx.Err() != nil {
			return
		}
		if time.Since(lastLog) > 10*time.Second {
			c.log.Warn("consumer interrupted; retrying", "durable", p.cfg.Durable, "err", err, "in", backoff)
			lastLog = time.Now()
		}
		select {
		case <-runCtx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// pull fetches up to k events (waiting up to 10s for the first) and hands
// each to a handler as it arrives. It sets up the broker consumer on first
// use, and again after it is lost.
func (c *consumerRun) pull(ctx context.Context, cons *jetstream.Consumer, cfg jetstream.ConsumerConfig, k int, dispatch func(jetstream.Msg)) error {
	if *cons == nil {
		cc, err := c.w.cfg.Broker.Consumer(ctx, cfg)
		if err != nil {
			return err
		}
		*cons = cc
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	batch, err := (*cons).Fetch(k, jetstream.FetchContext(fctx))
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			*cons = nil
		}
		return err
	}
	for m := range batch.Messages() {
		dispatch(m) // the pool had an idle handler for each event asked for
	}
	err = batch.Error()
	switch {
	case err == nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil // fewer events than idle handlers: normal
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDeleted),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		*cons = nil
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// maxBusyWait is the longest a handler waits in place for another one to
// release an event; longer waits go back to the broker (NakWithDelay).
const maxBusyWait = 2 * time.Minute

type deliveryKey struct{}

// Delivery returns which delivery of its event a handler is running for:
// 1 for the first, more for redeliveries (0 outside a handler). A handler
// can skip its inbox lookup on a first delivery when its effect's own write
// is idempotent anyway.
func Delivery(ctx context.Context) int {
	n, _ := ctx.Value(deliveryKey{}).(int)
	return n
}

// errDropped marks an event dropped by an injected fault.
var errDropped = errors.New("worker: dropped by an injected fault")

func (c *consumerRun) handle(ctx context.Context, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		c.log.Error("message without metadata", "err", err)
		_ = m.Term()
		return
	}
	durable := meta.Consumer
	msgID := m.Headers().Get(jetstream.MsgIDHeader)
	// deliveries counts attempts: the broker's deliveries less those a
	// worker handed back at shutdown. Handlers see the broker's count
	// (Delivery), which is what their inbox shortcut needs.
	raw := int(meta.NumDelivered)
	deliveries := raw
	if raw > 1 {
		c.redelivered.Add(1)
		deliveries -= c.interruptions(ctx, durable, msgID)
	}
	ev, err := c.decode(m)
	if err != nil {
		c.giveUp(ctx, m, ev, deliveries, Permanent(err))
		return
	}
	if deliveries > c.MaxAttempts {
		// Delivered more often than the attempts it was allowed: its
		// handlers never got to report (the process died handling it,
		// every time). Stop feeding it to workers.
		c.giveUp(ctx, m, ev, deliveries, fmt.Errorf("delivered %d times without finishing (the worker stopped while handling it)", deliveries-1))
		return
	}

	// Tell the broker we are alive while the handler runs, so it does not
	// hand the event to another handler after AckWait.
	hctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(c.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	var retry *retryAfter
	for {
		err = c.safeHandle(context.WithValue(hctx, deliveryKey{}, raw), ev)
		// Another handler holds the event (an email leased by a sender that
		// died, or a slow one): wait here, still reporting progress, rather
		// than hand it back. A redelivery would count as an attempt, and
		// attempts decide the backoff and the dead letter.
		if !errors.As(err, &retry) || retry.d > maxBusyWait {
			break
		}
		c.busy.Add(1)
		select {
		case <-time.After(retry.d):
			continue
		case <-ctx.Done():
		}
		break
	}
	cancel()

	switch {
	case err != nil && ctx.Err() != nil && !errors.Is(err, errDropped):
		// Shutting down, and the handler was cut short: an interruption,
		// not a failure. Record it before handing the event back, so the
		// next delivery does not count this one as an attempt.
		c.interrupt(ctx, durable, msgID, ev)
		_ = m.Nak()
	case err == nil:
		if f := c.w.cfg.Fault; f != nil {
			if ferr := f(FaultAfterEffect, ev); ferr != nil {
				c.faults.Add(1)
				return // no ack: the "crash" the test wants
			}
		}
		c.handled.Add(1)
		_ = m.Ack()
	case errors.Is(err, errDropped):
		c.faults.Add(1)
	case errors.As(err, &retry):
		c.busy.Add(1)
		_ = m.NakWithDelay(retry.d)
	case IsPermanent(err) || deliveries >= c.MaxAttempts:
		c.failed.Add(1)
		c.giveUp(ctx, m, ev, deliveries, err)
	default:
		c.failed.Add(1)
		d := c.Backoff[min(deliveries, len(c.Backoff))-1]
		c.log.Warn("handler failed; will retry", "event", ev.ID, "type", ev.Type, "attempt", deliveries, "retry_in", d, "err", err)
		_ = m.NakWithDelay(d)
	}
}

// interruptions is how many earlier deliveries of the message were handed
// back at shutdown. Only redeliveries ask (a first delivery has none), so the
// common path costs nothing. If the store cannot answer, every delivery
// counts, as it would without the store: the event may reach its dead letter
// early, never loop forever.
func (c *consumerRun) interruptions(ctx context.Context, durable, msgID string) int {
	st := c.w.cfg.Interruptions
	if st == nil || msgID == "" {
		return 0
	}
	n, err := st.DeliveryInterruptions(ctx, durable, msgID)
	if err != nil {
		c.log.Warn("cannot read a message's interrupted deliveries; counting them all", "message", msgID, "err", err)
		return 0
	}
	return n
}

// interrupt records an interrupted delivery (see InterruptionStore). It runs
// while shutting down, so it gets a few seconds of its own; if the write
// fails the delivery counts as an attempt, as it would have before.
func (c *consumerRun) interrupt(ctx context.Context, durable, msgID string, ev ladle.Event) {
	st := c.w.cfg.Interruptions
	if st == nil || msgID == "" {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := st.InterruptDelivery(wctx, durable, msgID, c.w.cfg.Clock()); err != nil {
		c.log.Warn("cannot record an interrupted delivery; it counts as an attempt", "event", ev.ID, "err", err)
	}
}

// safeHandle runs the handler, turning a panic into an error so that one
// bad event cannot take the worker down.
func (c *consumerRun) safeHandle(ctx context.Context, ev ladle.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return c.Handle(ctx, ev)
}

// decode returns the event a message carries: for a replay, the original
// event inside it.
func (c *consumerRun) decode(m jetstream.Msg) (ladle.Event, error) {
	ev, err := broker.DecodeEvent(m.Data())
	if err != nil {
		// Keep what we can for the dead letter.
		return ladle.Event{ID: m.Headers().Get(jetstream.MsgIDHeader), Type: m.Headers().Get(broker.HeaderEventType),
			Payload: json.RawMessage(quoteJSON(m.Data()))}, err
	}
	if strings.HasPrefix(ev.Type, ladle.EventReplayPrefix) {
		var inner ladle.Event
		if err := json.Unmarshal(ev.Payload, &inner); err != nil || inner.ID == "" {
			return ev, fmt.Errorf("replay event %s does not carry an event: %v", ev.ID, err)
		}
		return inner, nil
	}
	return ev, nil
}

func quoteJSON(b []byte) []byte {
	if json.Valid(b) {
		return b
	}
	q, _ := json.Marshal(string(b))
	return q
}

// giveUp records a dead letter and terminates the message. If the letter
// cannot be recorded, the message is kept (retried later) rather than lost
// without a trace.
func (c *consumerRun) giveUp(ctx context.Context, m jetstream.Msg, ev ladle.Event, deliveries int, cause error) {
	if ev.ID == "" {
		c.log.Error("undecodable message without an id; dropping it", "subject", m.Subject(), "err", cause)
		_ = m.Term()
		return
	}
	if ev.Payload == nil {
		ev.Payload = json.RawMessage("null")
	}
	dl := &ladle.DeadLetter{Consumer: c.Name, Event: ev, Error: cause.Error(), Deliveries: deliveries, CreatedAt: c.w.cfg.Clock()}
	if _, err := c.w.cfg.DeadLetters.AddDeadLetter(context.WithoutCancel(ctx), dl); err != nil {
		c.log.Error("cannot record a dead letter; keeping the event", "event", ev.ID, "err", err, "cause", cause)
		_ = m.NakWithDelay(c.Backoff[len(c.Backoff)-1])
		return
	}
	if c.GaveUp != nil {
		c.GaveUp(context.WithoutCancel(ctx), ev, cause)
	}
	c.dead.Add(1)
	c.log.Error("gave up on an event; it is a dead letter now", "event", ev.ID, "type", ev.Type,
		"restaurant", ev.RestaurantID, "deliveries", deliveries, "err", cause)
	_ = m.Term()
}
