// Package campaign runs email campaigns: audiences and CSV import, the
// lifecycle (draft → scheduled → sending ⇄ paused → done, or cancelled),
// the fan-out of recipients through JetStream and the sending itself, with
// a rate per sending route shared by every process, one-click unsubscribe
// and live progress.
//
// How a campaign is sent. Start moves the campaign to sending; the same
// transaction writes the generation's first "fan-out" message to the
// outbox (ladle.EventCampaignWork), which the relay publishes on the
// campaign work subject. Its handler (any worker process)
// enumerates the next page of the audience into durable send records
// (one per recipient, pending) and publishes them as batch messages of
// BatchSize recipients, naming only ids (restaurant, campaign, a range of
// customer ids), then publishes the fan-out message for the next page. A
// batch handler claims the range's records a chunk at a time (pending →
// sending under a lease), books the chunk with the rate limiter, sends each
// through SMTP and records the outcomes (sent, failed + reason, skipped +
// why, or pending again for a transient reply) in one transaction per
// chunk. Workers act on what the database says: a message cannot make
// Ladle mail anyone who is not a pending record of a sending campaign.
//
// Exactly once, and its one window. A record is marked sent only after
// the SMTP server accepted the message. If the process dies after the
// server accepted and before the chunk's outcomes committed, those
// records are still "sending"; when their lease ends they are claimed
// again and sent again. So a kill -9 can duplicate at most the messages of
// the chunks that process had in flight (Concurrency × Chunk), and each
// duplicate carries the same Message-ID (campaign, customer), which
// receivers use to drop copies. Nobody is skipped: a record leaves
// pending/sending only with an outcome.
//
// Lazy commits, and the window of a power loss. The claims and outcomes
// are committed lazily (ladle.WithLazyCommit: on SQLite without an fsync,
// so that a campaign's few hundred commits a second do not queue in the
// disk before every order's and receipt's). They survive the process
// dying, as above; a power loss or kernel crash can undo the last of them,
// those since the last fsync of the WAL. Before anything outside the
// database depends on them, Store.Durable makes them durable: a fan-out
// publishes its batches only after that, and a batch message is acked only
// after that (the acker: one sync for all the batches finished while its
// last one ran). So a power loss undoes only records whose batch the
// broker still redelivers: they are claimed and sent again, at most the
// messages of the batches in progress (Concurrency × BatchSize per
// process) and of those waiting for the acker's sync, and again nobody is
// skipped. Each copy carries the same Message-ID.
//
// A durable start. The status move and the first work message commit
// together, so there is no moment at which a campaign is sending with
// nothing queued: a process that dies right after the commit leaves the
// message in the outbox, and the relay of any process (API-only ones
// included) publishes it — at least once, with the event id as the broker's
// message id. Every later step is durable the same way: a fan-out or batch
// message is acked only after the messages it leads to were published, so
// a handler that dies mid-way is redelivered (after AckWait) to another
// process. Duplicates anywhere (a relay re-publishing past the duplicate
// window, a redelivery, many workers) are harmless: enumeration moves only
// from the cursor a message names, and a record is sent only by whoever
// claims it (pending → sending, atomically). A sweeper that re-kicks
// "stuck" campaigns would have to guess from time whether work is queued;
// this design never has to.
//
// Pause, resume, cancel. Every batch handler reads its campaign's status
// from the database at most StateTTL (1 s) old before every chunk, so a
// pause or cancel stops every process within StateTTL plus one chunk's
// sending. Resume (and a bulk retry of failed sends) moves to a new
// generation, whose fan-out starts again from the first customer; it
// re-publishes the records still pending, and the claim makes any
// overlap with batches of the old generation harmless.
package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker"
)

// Store is what the package needs of storage.
type Store interface {
	ladle.CampaignStore
	RestaurantByID(ctx context.Context, id int64) (*ladle.Restaurant, error)
}

// Subject is the event type campaign work is published under (on the
// broker's stream, subject prefix + ".campaign.work"); it has a consumer
// of its own, so campaign work never waits in line with receipts.
const Subject = "campaign.work"

// ConsumerName is the durable consumer of campaign work.
const ConsumerName = "campaign-sender"

// work is a campaign message. It names ids only.
type work struct {
	Kind       string `json:"k"` // "fanout" or "batch"
	Restaurant int64  `json:"r"`
	Campaign   string `json:"c"`
	Generation int64  `json:"g"`
	After      int64  `json:"a,omitempty"` // fanout: customers after this id
	From       int64  `json:"lo,omitempty"`
	To         int64  `json:"hi,omitempty"`
	Count      int    `json:"n,omitempty"` // batch: records in the range when published
}

// Service is the staff-facing side: create, start, pause, resume, cancel,
// retry, progress. It only writes to the store (whose outbox carries the
// work to the workers); Sender (worker role) does the work.
type Service struct {
	store Store
	now   ladle.Clock
	log   *slog.Logger

	mu      sync.Mutex
	samples map[string][]sample // campaign id → recent progress samples
}

type sample struct {
	at   time.Time
	done int64
}

// NewService returns a service on store.
func NewService(store Store, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{store: store, now: ladle.Now, log: log, samples: map[string][]sample{}}
}

// Input is a new campaign.
type Input struct {
	Name     string         `json:"name"`
	Subject  string         `json:"subject"`
	HTML     string         `json:"html"`
	Text     string         `json:"text"`
	Audience ladle.Audience `json:"audience"`
}

// Validate checks the input (templates included).
func (in *Input) Validate() map[string]string {
	errs := in.Audience.Validate()
	for field, v := range map[string]struct {
		s   string
		max int
	}{"name": {in.Name, 200}, "subject": {in.Subject, 500}} {
		if strings.TrimSpace(v.s) == "" {
			errs[field] = "is required"
		} else if msg := checkText(v.s, v.max); msg != "" {
			errs[field] = msg
		}
	}
	if strings.TrimSpace(in.Text) == "" {
		errs["text"] = "is required (the plain-text part)"
	}
	for field, s := range map[string]string{"html": in.HTML, "text": in.Text} {
		if len(s) > 512<<10 {
			errs[field] = "must be at most 512 KiB"
		}
	}
	if len(errs) == 0 {
		_, terrs := ParseTemplates(&ladle.Campaign{Subject: in.Subject, HTML: in.HTML, Text: in.Text})
		for k, v := range terrs {
			errs[k] = v
		}
	}
	return errs
}

// Create stores a draft and returns it with the audience's current size.
func (s *Service) Create(ctx context.Context, restaurantID int64, in Input) (*ladle.Campaign, int64, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return nil, 0, &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation,
			Message: "the campaign is not valid", Fields: errs}
	}
	c := &ladle.Campaign{ID: uuid.Must(uuid.NewV7()).String(), RestaurantID: restaurantID, Name: in.Name,
		Subject: in.Subject, HTML: in.HTML, Text: in.Text, Audience: in.Audience}
	if err := s.store.CreateCampaign(ctx, c); err != nil {
		return nil, 0, err
	}
	n, err := s.store.AudienceSize(ctx, restaurantID, c.Audience, s.now())
	return c, n, err
}

// Start sends a draft (or a scheduled campaign) now.
func (s *Service) Start(ctx context.Context, restaurantID int64, id string) (*ladle.Campaign, error) {
	return s.store.MoveCampaign(ctx, restaurantID, id, ladle.CampaignSending, s.now())
}

// Resume continues a paused campaign.
func (s *Service) Resume(ctx context.Context, restaurantID int64, id string) (*ladle.Campaign, error) {
	c, err := s.store.Campaign(ctx, restaurantID, id)
	if err != nil {
		return nil, err
	}
	if c.Status != ladle.CampaignPaused {
		return nil, ladle.Errorf(ladle.KindConflict, ladle.CodeInvalidTransition, "only a paused campaign can be resumed (it is %s)", c.Status)
	}
	return s.store.MoveCampaign(ctx, restaurantID, id, ladle.CampaignSending, s.now())
}

// Pause pauses a sending (or scheduled) campaign.
func (s *Service) Pause(ctx context.Context, restaurantID int64, id string) (*ladle.Campaign, error) {
	return s.store.MoveCampaign(ctx, restaurantID, id, ladle.CampaignPaused, s.now())
}

// Cancel cancels a campaign that is not done.
func (s *Service) Cancel(ctx context.Context, restaurantID int64, id string) (*ladle.Campaign, error) {
	return s.store.MoveCampaign(ctx, restaurantID, id, ladle.CampaignCancelled, s.now())
}

// SendTest sends the campaign, rendered as a recipient gets it, to the
// staff member userID's own address (never an address from a request),
// with "[Test] " before the subject and an unsubscribe link that
// unsubscribes nobody. It only writes the request and its event: a worker
// sends it (worker.ConsumerCampaignTest), so it works from an API-only
// process. key makes a repeat (a double click, a retried request) send
// nothing more; see ladle.CampaignStore.RequestCampaignTest for the rate
// bound. It returns the event id.
func (s *Service) SendTest(ctx context.Context, restaurantID int64, id string, userID int64, key string) (string, error) {
	if key == "" {
		return "", ladle.Errorf(ladle.KindInvalid, ladle.CodeIdempotencyKeyMissing, "a request key is required for a test send (Idempotency-Key)")
	}
	if err := ladle.CheckIdempotencyKey(key); err != nil {
		return "", err
	}
	return s.store.RequestCampaignTest(ctx, restaurantID, id, userID, key, s.now())
}

// MaxScheduleAhead bounds how far ahead a campaign can be scheduled.
const MaxScheduleAhead = 366 * 24 * time.Hour

// Schedule schedules a draft to start at `at` (in the future, within
// MaxScheduleAhead). Every worker process looks for due campaigns every
// second; the move to sending is atomic, so exactly one of them starts it.
func (s *Service) Schedule(ctx context.Context, restaurantID int64, id string, at time.Time) (*ladle.Campaign, error) {
	now := s.now()
	switch {
	case at.IsZero():
		return nil, scheduleInvalid("is required (RFC 3339, e.g. 2026-12-24T09:00:00+01:00)")
	case !at.After(now):
		return nil, scheduleInvalid("must be in the future")
	case at.Sub(now) > MaxScheduleAhead:
		return nil, scheduleInvalid("must be within a year")
	}
	return s.store.ScheduleCampaign(ctx, restaurantID, id, at)
}

func scheduleInvalid(msg string) error {
	return &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation, Message: "send_at " + msg,
		Fields: map[string]string{"send_at": msg}}
}

// RetryFailed puts every failed send of the campaign back to pending and
// sends them again.
func (s *Service) RetryFailed(ctx context.Context, restaurantID int64, id string) (int64, *ladle.Campaign, error) {
	return s.store.RetryFailed(ctx, restaurantID, id, s.now())
}

func msgID(w work) string {
	switch w.Kind {
	case "fanout":
		return "cf:" + w.Campaign + ":" + strconv.FormatInt(w.Generation, 10) + ":" + strconv.FormatInt(w.After, 10)
	default:
		return "cb:" + w.Campaign + ":" + strconv.FormatInt(w.Generation, 10) + ":" + strconv.FormatInt(w.From, 10)
	}
}

// publish publishes ws to the campaign subject one at a time, each
// waiting for its ack, with pace (the sender's yield to urgent work) before
// each. The embedded server fsyncs every message it stores, one after the
// other, and the relay publishes on the same connection: a fan-out page's
// batches published at once were a burst of fsyncs that a receipt's event,
// arriving behind them, waited out whole (10–18 ms at p99 while sending).
// One at a time, the event waits for at most the one in progress; the
// fan-out runs far enough ahead of sending not to miss the pipelining.
func publish(ctx context.Context, b *broker.Broker, ws []work, pace func(context.Context)) error {
	if err := b.Ready(ctx); err != nil {
		return err
	}
	js := b.JetStream()
	subject := b.Subject(Subject)
	for _, w := range ws {
		data, err := json.Marshal(w)
		if err != nil {
			return err
		}
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(nats.MsgIdHdr, msgID(w))
		if pace != nil {
			pace(ctx)
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = js.PublishMsg(pctx, m)
		cancel()
		if err != nil {
			return fmt.Errorf("campaign: publish: %w", err)
		}
	}
	return nil
}

// Progress is a campaign with its sending rate and time left.
type Progress struct {
	*ladle.Campaign
	Pending       int64   `json:"pending"`
	RatePerSecond float64 `json:"rate_per_second"`
	// SecondsLeft is the pending count at the current rate (0 when not
	// sending or no rate yet).
	SecondsLeft float64 `json:"seconds_left"`
}

// Progress returns the campaign with its rate over the last ~10 s as this
// process observed it (each call is a sample; a campaign page's live
// stream reads every second), or, on a first look, since it started.
func (s *Service) Progress(ctx context.Context, restaurantID int64, id string) (*Progress, error) {
	c, err := s.store.Campaign(ctx, restaurantID, id)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	done := c.Sent + c.Failed + c.Skipped
	s.mu.Lock()
	ss := append(s.samples[id], sample{now, done})
	for len(ss) > 1 && now.Sub(ss[0].at) > 10*time.Second {
		ss = ss[1:]
	}
	if len(ss) > 30 {
		ss = ss[len(ss)-30:]
	}
	s.samples[id] = ss
	if len(s.samples) > 1000 { // bound: forget everything rather than grow
		s.samples = map[string][]sample{id: ss}
	}
	first := ss[0]
	s.mu.Unlock()
	p := &Progress{Campaign: c, Pending: c.Pending()}
	if c.Status != ladle.CampaignSending {
		return p, nil
	}
	span, moved := now.Sub(first.at).Seconds(), done-first.done
	if span < 0.5 && c.StartedAt != nil {
		// A first look (an API call, a page just opened): the average
		// since the start, until this process has samples of its own.
		span, moved = now.Sub(*c.StartedAt).Seconds(), done
	}
	if span >= 0.5 {
		p.RatePerSecond = math.Round(float64(moved)/span*10) / 10
		if p.RatePerSecond > 0 {
			p.SecondsLeft = math.Ceil(float64(p.Pending) / p.RatePerSecond)
		}
	}
	return p, nil
}
