package campaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker"
	lmail "github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/priority"
)

// SenderConfig configures a Sender. Store, Broker, Transport, Limiter, From
// and Signer are required.
type SenderConfig struct {
	Store  Store
	Broker *broker.Broker
	// Transport sends campaign mail. Give it a pool of its own (a second
	// mail.Open of the same URL), so campaign sends never hold the
	// connections receipts need.
	Transport lmail.Transport
	Limiter   Limiter
	// Route names the sending route in the limiter (default "default").
	Route string
	From  string // "Name <addr@domain>"; its domain also names Message-IDs
	// PublicURL is the https base of unsubscribe links.
	PublicURL string
	Signer    *Signer
	Logger    *slog.Logger

	// Concurrency is how many batches this process works on at once
	// (default 4); each sends up to Chunk messages at a time.
	Concurrency int
	// BatchSize is recipients per batch message (default 100); PageSize
	// the records one fan-out step enumerates (default 2000), in
	// transactions of at most EnumStep (default 250); Chunk the
	// most sends claimed, booked, sent and recorded at once (default 100:
	// a whole batch is one claim, one pipelined hand-over and one record;
	// smaller at low rates so a second never runs ahead of the rate by
	// much). Concurrency × Chunk is what a crash can duplicate.
	BatchSize, PageSize, EnumStep, Chunk int
	// Lease is how long a claim holds before another worker may take the
	// records over (default 2 min; it must outlast a chunk's sending).
	Lease time.Duration
	// AckWait is the broker's redelivery time for a dead worker's batch
	// (default 30 s).
	AckWait time.Duration
	// StateTTL bounds how old the campaign status a worker acts on may be
	// (default 1 s).
	StateTTL time.Duration
	// SendTimeout bounds one SMTP send (default 30 s).
	SendTimeout time.Duration
	// MaxAttempts is how many transient failures a send gets before it is
	// failed (default 8); Backoff the waits between them.
	MaxAttempts int
	Backoff     []time.Duration
	// SlowFor is how long a transient reply slows the route (default 10 s).
	SlowFor time.Duration
	// Yield, if set, is the process's priority gate: before each claim,
	// hand-over and record a batch waits (at most YieldMax, default
	// 100 ms) while urgent work (receipts) is in progress in this process.
	Yield    *priority.Gate
	YieldMax time.Duration
	// Fault, if set, is called after each chunk's sends were accepted and
	// before their outcomes are recorded; an error makes this sender die
	// right there (crash tests): from then on it records, acks and sends
	// nothing, like a killed process.
	Fault func() error
}

// DefaultBackoff is SenderConfig.Backoff's default.
var DefaultBackoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute}

// Sender is the worker side: it consumes campaign work. Start/Stop.
type Sender struct {
	cfg    SenderConfig
	log    *slog.Logger
	domain string

	mu    sync.Mutex
	cache map[string]*campaignState

	stop   context.CancelFunc
	wg     sync.WaitGroup
	sent   atomic.Int64
	failed atomic.Int64
	dead   atomic.Bool // Fault fired
}

// campaignState is what a worker knows of a campaign: its status (at most
// StateTTL old), templates and restaurant name.
type campaignState struct {
	mu         sync.Mutex
	status     ladle.CampaignStatus
	generation int64
	checked    time.Time
	tpl        *Templates
	restaurant string
}

// NewSender checks cfg and fills in defaults.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.Store == nil || cfg.Broker == nil || cfg.Transport == nil || cfg.Limiter == nil || cfg.Signer == nil {
		return nil, errors.New("campaign: sender needs a store, broker, transport, limiter and signer")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("campaign: from address %q: %w", cfg.From, err)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Concurrency, 4)
	def(&cfg.BatchSize, 100)
	def(&cfg.PageSize, 2000)
	def(&cfg.EnumStep, 250)
	def(&cfg.Chunk, 100)
	def(&cfg.MaxAttempts, 8)
	defd(&cfg.Lease, 2*time.Minute)
	defd(&cfg.AckWait, 30*time.Second)
	defd(&cfg.StateTTL, time.Second)
	defd(&cfg.SendTimeout, 30*time.Second)
	defd(&cfg.SlowFor, 10*time.Second)
	defd(&cfg.YieldMax, 100*time.Millisecond)
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Route == "" {
		cfg.Route = "default"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &Sender{cfg: cfg, log: cfg.Logger.With("component", "campaign-sender"),
		domain: from.Address[strings.LastIndexByte(from.Address, '@')+1:], cache: map[string]*campaignState{}}, nil
}

// Stats returns the sends this process recorded as sent and failed.
func (s *Sender) Stats() (sent, failed int64) { return s.sent.Load(), s.failed.Load() }

// Start consumes campaign work until Stop. An unreachable broker is
// retried in the background.
func (s *Sender) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.run(ctx) }()
	go func() { defer s.wg.Done(); s.schedule(ctx) }()
	return nil
}

// Stop stops fetching and waits for the batches in hand: each ends at its
// next chunk boundary, recording what it sent.
func (s *Sender) Stop() {
	if s.stop != nil {
		s.stop()
		s.wg.Wait()
	}
}

func (s *Sender) run(ctx context.Context) {
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = s.cfg.Broker.Consumer(ctx, jetstream.ConsumerConfig{
			Durable:       ConsumerName,
			FilterSubject: s.cfg.Broker.Subject(Subject),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       s.cfg.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: maxAckPending,
		})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("campaign consumer unavailable; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(s.cfg.Concurrency))
	if err != nil {
		s.log.Error("campaign consumer", "err", err)
		return
	}
	go func() { <-ctx.Done(); it.Stop() }()
	acks := make(chan jetstream.Msg, maxAckPending)
	ackerDone := make(chan struct{})
	go func() { defer close(ackerDone); s.acker(ctx, acks) }()
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				s.handle(ctx, m, acks)
			}
		}()
	}
	for {
		m, err := it.Next()
		if err != nil {
			break
		}
		msgs <- m
	}
	close(msgs)
	wg.Wait()
	close(acks)
	<-ackerDone
}

// maxAckPending bounds the messages delivered to this consumer and not yet
// acknowledged (in every process together).
const maxAckPending = 256

// acker acknowledges finished batch messages once what they recorded is
// durable (Store.Durable): the store commits a campaign's records lazily
// (ladle.WithLazyCommit), and a power loss after an ack could otherwise undo
// records whose message the broker no longer redelivers. A message whose
// records cannot be made durable is redelivered instead. It takes every
// batch finished while its last sync ran and syncs once for them all (as
// group commit does): no waiting where nothing needs syncing (PostgreSQL,
// or a FULL commit covered them), and on SQLite at most one fsync per sync
// time however fast batches finish.
func (s *Sender) acker(ctx context.Context, in <-chan jetstream.Msg) {
	var msgs []jetstream.Msg
	for m := range in {
		msgs = append(msgs[:0], m)
	gather:
		for {
			select {
			case m, ok := <-in:
				if !ok {
					break gather
				}
				msgs = append(msgs, m)
			default:
				break gather
			}
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := s.cfg.Store.Durable(dctx)
		cancel()
		if err != nil {
			s.log.Warn("campaign records not durable; their batches go again", "err", err)
		}
		for _, m := range msgs {
			switch {
			case s.dead.Load(): // as if killed: no ack
			case err != nil:
				_ = m.NakWithDelay(time.Second)
			default:
				_ = m.Ack()
			}
		}
	}
}

// schedule starts scheduled campaigns when due (every process looks; the
// move to sending is atomic, so one wins).
func (s *Sender) schedule(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	svc := NewService(s.cfg.Store, s.log)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due, err := s.cfg.Store.DueCampaigns(ctx, ladle.Now(), 10)
		if err != nil {
			continue
		}
		for _, c := range due {
			if _, err := svc.Start(ctx, c.RestaurantID, c.ID); err != nil && ladle.ErrorCode(err) != ladle.CodeInvalidTransition {
				s.log.Warn("start scheduled campaign", "campaign", c.ID, "err", err)
			}
		}
	}
}

// handle works on one message: a fan-out step is acknowledged when done, a
// batch through acks (the acker), once its records are durable.
func (s *Sender) handle(ctx context.Context, m jetstream.Msg, acks chan<- jetstream.Msg) {
	if s.dead.Load() {
		return
	}
	// Everything a campaign step writes is bulk work: the SQLite writer
	// serves orders and receipts first (internal/priority). It is also
	// committed lazily, made durable before it is published or
	// acknowledged (Store.Durable): a campaign's fsyncs no longer queue in
	// the disk before a receipt's.
	ctx = priority.WithBulk(ladle.WithLazyCommit(ctx))
	w, err := decodeWork(m)
	if err != nil || w.Campaign == "" || w.Restaurant <= 0 {
		s.log.Error("undecodable campaign message; dropping it", "err", err)
		_ = m.Term()
		return
	}
	var delay time.Duration
	switch w.Kind {
	case "fanout":
		err = s.fanout(ctx, w)
	case "batch":
		delay, err = s.batch(ctx, m, w)
	default:
		_ = m.Term()
		return
	}
	switch {
	case errors.Is(err, errCrashed):
		return // as if the process died: no ack, no nak
	case err != nil:
		if ctx.Err() == nil {
			s.log.Warn("campaign work failed; retrying", "kind", w.Kind, "campaign", w.Campaign, "err", err)
		}
		_ = m.NakWithDelay(time.Second)
	case delay > 0:
		_ = m.NakWithDelay(delay)
	case w.Kind == "batch":
		acks <- m
	default:
		_ = m.Ack()
	}
}

var errCrashed = errors.New("campaign: injected crash")

// decodeWork decodes a work message: the sender's own (the work JSON), or
// a generation's start, relayed from the outbox as a ladle.Event whose
// payload is the work JSON (ladle.CampaignStart).
func decodeWork(m jetstream.Msg) (work, error) {
	var w work
	data := m.Data()
	if h := m.Headers(); h != nil && h.Get(broker.HeaderEventType) == ladle.EventCampaignWork {
		ev, err := broker.DecodeEvent(data)
		if err != nil {
			return w, err
		}
		data = ev.Payload
	}
	err := json.Unmarshal(data, &w)
	return w, err
}

// fanout enumerates one page (if the cursor is there) and publishes the
// page's pending records as batches, then the next fan-out step.
func (s *Sender) fanout(ctx context.Context, w work) error {
	store := s.cfg.Store
	c, err := store.Campaign(ctx, w.Restaurant, w.Campaign)
	if err != nil {
		if ladle.ErrorKind(err) == ladle.KindNotFound {
			return nil
		}
		return err
	}
	if c.Status != ladle.CampaignSending || w.Generation < c.Generation {
		return nil // paused, cancelled, done, or a newer generation took over
	}
	// Enumerate the page a step at a time, each step its own transaction:
	// on SQLite one transaction holds the one writer, and an order's or a
	// receipt's write queued behind a page of 2,000 inserts waited for all
	// of them (about 12 ms, the largest part of a receipt's tail while a
	// campaign started); behind a step of 250 it waits for an eighth.
	if w.After == c.Cursor {
		for left := s.cfg.PageSize; left > 0 && !c.Enumerated; {
			before := c.Total
			if c, err = store.EnumerateRecipients(ctx, w.Restaurant, w.Campaign, c.Cursor, min(left, s.cfg.EnumStep), ladle.Now()); err != nil {
				return err
			}
			if c.Total == before {
				break // no progress and not at the end: the next fan-out step goes on, not this loop
			}
			left -= int(c.Total - before)
		}
	}
	ids, err := store.SendIDs(ctx, w.Restaurant, w.Campaign, w.After, c.Cursor,
		[]ladle.SendStatus{ladle.SendPending, ladle.SendSending}, s.cfg.PageSize)
	if err != nil {
		return err
	}
	var out []work
	for i := 0; i < len(ids); i += s.cfg.BatchSize {
		part := ids[i:min(i+s.cfg.BatchSize, len(ids))]
		out = append(out, work{Kind: "batch", Restaurant: w.Restaurant, Campaign: w.Campaign, Generation: w.Generation,
			From: part[0], To: part[len(part)-1], Count: len(part)})
	}
	next := c.Cursor
	if len(ids) == s.cfg.PageSize {
		next = ids[len(ids)-1]
	}
	if next < c.Cursor || !c.Enumerated {
		out = append(out, work{Kind: "fanout", Restaurant: w.Restaurant, Campaign: w.Campaign, Generation: w.Generation, After: next})
	}
	// The batches name records enumerated lazily: a power loss must not
	// undo them once the batches are in the stream.
	if err := store.Durable(ctx); err != nil {
		return err
	}
	return publish(ctx, s.cfg.Broker, out, func(ctx context.Context) { s.cfg.Yield.Yield(ctx, s.cfg.YieldMax) })
}

// state returns the campaign's state, read again when older than StateTTL.
func (s *Sender) state(ctx context.Context, rid int64, id string) (*campaignState, ladle.CampaignStatus, error) {
	key := strconv.FormatInt(rid, 10) + "/" + id
	s.mu.Lock()
	st := s.cache[key]
	if st == nil {
		if len(s.cache) > 1000 {
			s.cache = map[string]*campaignState{}
		}
		st = &campaignState{}
		s.cache[key] = st
	}
	s.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.tpl != nil && time.Since(st.checked) < s.cfg.StateTTL {
		return st, st.status, nil
	}
	c, err := s.cfg.Store.Campaign(ctx, rid, id)
	if err != nil {
		return nil, "", err
	}
	if st.tpl == nil {
		tpl, errs := ParseTemplates(c)
		if len(errs) > 0 {
			return nil, "", fmt.Errorf("campaign %s: templates: %v", id, errs)
		}
		r, err := s.cfg.Store.RestaurantByID(ctx, rid)
		if err != nil {
			return nil, "", err
		}
		st.tpl, st.restaurant = tpl, r.Name
	}
	st.status, st.generation, st.checked = c.Status, c.Generation, time.Now()
	return st, st.status, nil
}

// batch works through one batch message, a chunk at a time. It returns a
// delay when records of the range are waiting (a transient retry's
// backoff, or a lease of a worker presumed alive).
func (s *Sender) batch(ctx context.Context, m jetstream.Msg, w work) (time.Duration, error) {
	left := w.Count
	lastProgress := time.Now()
	var buf strings.Builder
	for left > 0 {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if s.dead.Load() {
			return 0, errCrashed
		}
		st, status, err := s.state(ctx, w.Restaurant, w.Campaign)
		if err != nil {
			if ladle.ErrorKind(err) == ladle.KindNotFound {
				return 0, nil
			}
			return 0, err
		}
		if status != ladle.CampaignSending {
			return 0, nil // the records stay pending; a resume republishes them
		}
		if time.Since(lastProgress) > s.cfg.AckWait/3 {
			_ = m.InProgress()
			lastProgress = time.Now()
		}
		n := min(left, s.chunk(ctx))
		s.cfg.Yield.Yield(ctx, s.cfg.YieldMax)
		sends, err := s.cfg.Store.ClaimSends(ctx, ladle.SendClaim{RestaurantID: w.Restaurant, CampaignID: w.Campaign,
			From: w.From, To: w.To, Limit: n, Now: ladle.Now(), Lease: s.cfg.Lease})
		if err != nil {
			return 0, err
		}
		if len(sends) == 0 {
			break
		}
		// Book the claimed sends and send them right at their slot: pacing
		// the moment of sending (not of claiming) keeps the server's
		// per-second count at the rate even when a claim was slow.
		wait, err := s.cfg.Limiter.Reserve(ctx, s.cfg.Route, len(sends))
		if err == nil && wait > s.cfg.Lease/2 {
			err = fmt.Errorf("rate limiter: the next slot is %v away, longer than half the lease", wait)
		}
		if err != nil {
			s.release(ctx, w, sends)
			return 0, err
		}
		if wait > 0 {
			if wait > s.cfg.AckWait/3 {
				_ = m.InProgress()
				lastProgress = time.Now()
			}
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				s.release(ctx, w, sends)
				return 0, ctx.Err()
			}
			// The wait may have been long: look at the status again.
			if _, status, err = s.state(ctx, w.Restaurant, w.Campaign); err != nil || status != ladle.CampaignSending {
				s.release(ctx, w, sends)
				return 0, err
			}
		}
		left -= len(sends)
		s.cfg.Yield.Yield(ctx, s.cfg.YieldMax)
		results := s.sendAll(ctx, st, w, sends, &buf)
		if s.cfg.Fault != nil {
			if err := s.cfg.Fault(); err != nil {
				s.dead.Store(true)
				return 0, errCrashed
			}
		}
		// Record the outcomes even if we are stopping: they happened.
		s.cfg.Yield.Yield(ctx, s.cfg.YieldMax)
		if err := s.finish(context.WithoutCancel(ctx), w, results); err != nil {
			return 0, err
		}
		if len(sends) < n {
			break
		}
	}
	due, found, err := s.cfg.Store.NextDue(ctx, w.Restaurant, w.Campaign, w.From, w.To)
	if err != nil || !found {
		return 0, err
	}
	if d := time.Until(due); d > 0 {
		return d + 10*time.Millisecond, nil
	}
	return 10 * time.Millisecond, nil // claimable now (e.g. a lease just ran out): go again
}

// release hands claimed records back unsent (pending, due now).
func (s *Sender) release(ctx context.Context, w work, sends []ladle.Send) {
	results := make([]ladle.SendResult, len(sends))
	now := ladle.Now()
	for i, sd := range sends {
		results[i] = ladle.SendResult{CustomerID: sd.CustomerID, Status: ladle.SendPending, RetryAt: now}
	}
	_ = s.finish(context.WithoutCancel(ctx), w, results)
}

// chunk is how many sends to book at once: Chunk, but at most a twentieth
// of the rate (so at 20/s one at a time), at least one.
func (s *Sender) chunk(ctx context.Context) int {
	rate, err := s.cfg.Limiter.Rate(ctx, s.cfg.Route)
	if err != nil || rate <= 0 {
		return 1
	}
	return max(1, min(s.cfg.Chunk, int(rate/20)))
}

func (s *Sender) finish(ctx context.Context, w work, results []ladle.SendResult) error {
	var err error
	for attempt := range 5 {
		if err = s.cfg.Store.FinishSends(ctx, w.Restaurant, w.Campaign, results, ladle.Now()); err == nil {
			for _, r := range results {
				switch r.Status {
				case ladle.SendSent:
					s.sent.Add(1)
				case ladle.SendFailed:
					s.failed.Add(1)
				}
			}
			return nil
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	// The records stay "sending" until their lease ends and are then sent
	// again: the exactly-once window (see the package comment).
	return err
}

func (s *Sender) sendAll(ctx context.Context, st *campaignState, w work, sends []ladle.Send, buf *strings.Builder) []ladle.SendResult {
	results := make([]ladle.SendResult, len(sends))
	msgs := make([]*lmail.Message, len(sends))
	for i, sd := range sends {
		results[i].CustomerID = sd.CustomerID
		// Rendering a chunk is the longest stretch of CPU between the
		// other yields: pause between messages too (an atomic load when
		// nothing urgent runs).
		s.cfg.Yield.Yield(ctx, s.cfg.YieldMax)
		unsub := s.cfg.PublicURL + "/unsubscribe/" + s.cfg.Signer.Token(w.Restaurant, sd.Email)
		subject, html, text, err := st.tpl.Render(buf, Fields{Name: sd.Name, Email: sd.Email, Restaurant: st.restaurant, UnsubscribeURL: unsub})
		if err != nil {
			results[i].Status, results[i].Reason = ladle.SendFailed, "render: "+err.Error()
			continue
		}
		msgs[i] = &lmail.Message{From: s.cfg.From, To: lmail.Address(sd.Name, sd.Email), Subject: subject,
			HTML: html, Text: text, Date: ladle.Now(), ListUnsubscribe: unsub,
			MessageID: "c." + w.Campaign + "." + strconv.FormatInt(sd.CustomerID, 10) + "@" + s.domain}
	}
	if bt, ok := s.cfg.Transport.(lmail.BatchTransport); ok {
		// One call for the chunk: the transport pipelines it over its
		// connections (SMTP: one round trip per message, not four).
		var batch []*lmail.Message
		var idx []int
		for i, m := range msgs {
			if m != nil {
				batch, idx = append(batch, m), append(idx, i)
			}
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.SendTimeout)
		if s.cfg.Yield != nil {
			sctx = lmail.WithPacer(sctx, func(ctx context.Context) { s.cfg.Yield.Yield(ctx, s.cfg.YieldMax) })
		}
		errs := bt.SendBatch(sctx, batch)
		cancel()
		for j, i := range idx {
			s.classify(ctx, &results[i], sends[i], errs[j])
		}
		return results
	}
	var wg sync.WaitGroup
	for i := range sends {
		if msgs[i] == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.SendTimeout)
			err := s.cfg.Transport.Send(sctx, msgs[i])
			cancel()
			s.classify(ctx, &results[i], sends[i], err)
		}()
	}
	wg.Wait()
	return results
}

// classify turns a send's error into its outcome.
func (s *Sender) classify(ctx context.Context, r *ladle.SendResult, sd ladle.Send, err error) {
	if err == nil {
		r.Status = ladle.SendSent
		return
	}
	reason := err.Error()
	if lmail.IsPermanent(err) {
		r.Status, r.Reason = ladle.SendFailed, reason
		if hardBounce(err) {
			r.Suppress = ladle.SuppressHardBounce
		}
		return
	}
	// Transient (4xx, a dropped connection, a timeout): slow the route and
	// try again later, up to MaxAttempts.
	_ = s.cfg.Limiter.Slow(ctx, s.cfg.Route, s.cfg.SlowFor)
	if sd.Attempts >= s.cfg.MaxAttempts {
		r.Status, r.Reason = ladle.SendFailed, fmt.Sprintf("gave up after %d attempts: %s", sd.Attempts, reason)
		return
	}
	r.Status, r.Reason = ladle.SendPending, reason
	r.RetryAt = ladle.Now().Add(s.cfg.Backoff[min(sd.Attempts-1, len(s.cfg.Backoff)-1)])
}

// hardBounce reports a permanent reply about the mailbox itself (it does
// not exist, or the address is bad): such an address is suppressed. Other
// 5xx replies (policy, content, size) fail the send but keep the address.
func hardBounce(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.EnhancedCode[0] == 5 && se.EnhancedCode[1] == 1 || se.Code == 550 && se.EnhancedCode[0] == 0 ||
			se.Code == 551 || se.Code == 553
	}
	return errors.Is(err, lmail.ErrBadAddress)
}
