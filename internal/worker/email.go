package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"sync"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/autoscale"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/priority"
)

// Email consumers: the receipt on order.placed, the refund email on
// refund.created (refund_email.go), "ready for pickup" on
// order.status_changed to ready, and the double opt-in confirmation on
// order.placed (confirm_email.go).
//
// # Exactly once, and where SMTP makes that impossible
//
// For each event the handler:
//
//  1. checks the inbox: processed already → done (ack);
//  2. renders the email and reserves it: one row per (consumer, event id),
//     holding the rendered message; a redelivery gets the stored row back,
//     so every attempt sends the same bytes (same Message-ID, same Date);
//  3. claims a lease on the row (one sender at a time, even when the broker
//     redelivers to a second handler while the first is still sending);
//     2 and 3 are one write (ClaimEmail): a first delivery inserts the row
//     claimed;
//  4. hands the message to the transport;
//  5. marks the row sent and writes the inbox row, in one transaction;
//  6. acks.
//
// Crash windows, and what closes each:
//
//   - Before 2 commits: nothing was written; the redelivery starts over.
//   - Between 2 and 4 (reserved or claimed, not sent): the redelivery finds
//     the queued row, waits for the lease to expire (RetryAfter, not counted
//     as a failure) and sends. Nothing went out before, so nothing doubles.
//   - Between 5 and 6 (marked sent, not acked): the redelivery finds the
//     inbox row and acks. No second email. This is the "after the email,
//     before the ack" case of the crash tests.
//   - Between 4 and 5: the SMTP server answered 250 to DATA, then the
//     process died (or the database failed) before the commit. SMTP has no
//     idempotency key, and nothing can tell whether the server got the
//     message, so there are only two choices: send again (at least once) or
//     never (at most once). We send again, because a receipt that silently
//     never arrives is the failure guests complain about most, and make the
//     copy recognisable: it is byte-identical, with the same Message-ID,
//     which mail stores and clients use to fold duplicates, and the row's
//     attempt count records that it was handed over more than once. The
//     window is a few milliseconds (one local commit) per email.
//   - With the dev mailbox the window does not exist: steps 2 to 5 are one
//     transaction (DeliverEmail: the row, stored as sent, is the mailbox
//     entry, and the inbox row goes with it), so every email is delivered
//     exactly once.

// EmailStore is what the email consumers need from the database
// (sqlstore.Store implements it).
type EmailStore interface {
	RestaurantByID(ctx context.Context, id int64) (*ladle.Restaurant, error)
	RestaurantOrder(ctx context.Context, restaurantID int64, id string) (*ladle.Order, error)
	Refund(ctx context.Context, restaurantID int64, refundID string) (*ladle.Refund, error)
	Processed(ctx context.Context, consumer, eventID string) (bool, error)
	ReserveEmail(ctx context.Context, e *ladle.Email) (created bool, err error)
	DeliverEmail(ctx context.Context, e *ladle.Email) (created bool, err error)
	DeliverEmails(ctx context.Context, es []*ladle.Email) error
	ClaimEmail(ctx context.Context, e *ladle.Email, now time.Time, lease time.Duration) (claimed bool, busyUntil time.Time, err error)
	EmailSent(ctx context.Context, id int64, transport string, now time.Time) error
	EmailFailed(ctx context.Context, id int64, reason string, final bool, now time.Time) error
	GiveUpEmail(ctx context.Context, consumer, eventID, reason string, now time.Time) error
	// For campaign test sends (campaign_email.go).
	Campaign(ctx context.Context, restaurantID int64, id string) (*ladle.Campaign, error)
	Membership(ctx context.Context, userID, restaurantID int64) (*ladle.Membership, error)
	UserByID(ctx context.Context, id int64) (*ladle.User, error)
}

// Consumer names of the email consumers.
const (
	ConsumerReceipt = "receipt"
	ConsumerReady   = "ready"
	ConsumerRefund  = "refund"
	// ConsumerCampaignTest sends a campaign's test sends (campaign_email.go).
	ConsumerCampaignTest = "campaign_test"
)

// FaultAfterSend is reached when the transport accepted an email but it was
// not yet marked sent: the one window in which a crash duplicates an email
// over SMTP (see above).
const FaultAfterSend = "email.after_send"

// EmailConfig configures the email consumers.
type EmailConfig struct {
	Store     EmailStore
	Transport mail.Transport
	Templates *mail.Templates
	// From is the sender address (--mail-from), e.g. "orders@example.com";
	// each email shows the restaurant's name with it.
	From string
	// StatusURL returns the absolute link to an order's guest status page
	// (see StatusLinker).
	StatusURL func(orderID string) string
	// PublicURL is the https base of the test unsubscribe link in
	// campaign test sends (--public-url).
	PublicURL string
	// SendTimeout bounds one hand-over to the transport (default 30s). The
	// lease on an email is this plus as much again, up to 10s more.
	SendTimeout time.Duration
	// Concurrency per consumer (default 32), when Scale is nil.
	Concurrency int
	// Scale, if set, autoscales each consumer's pool instead (see
	// Consumer.Scale).
	Scale *autoscale.Config
	// AckWait and MaxAttempts are passed to the consumers (see Consumer).
	AckWait     time.Duration
	MaxAttempts int
	Backoff     []time.Duration
	Clock       ladle.Clock
	// Fault is the crash-test hook (see Config.Fault).
	Fault func(point string, ev ladle.Event) error
	// Urgent, if set, is held while an email is handled, so bulk work in
	// this process (campaign sends) yields to it (internal/priority).
	Urgent *priority.Gate
	// Confirm and ConfirmURL, when both set, add the double opt-in
	// confirmation consumer (confirm_email.go).
	Confirm    ConfirmStore
	ConfirmURL ConfirmLinker
}

// StatusLinker builds EmailConfig.StatusURL from the public base URL
// (--public-url) and the function that makes an order's guest path (for
// example: func(id string) string { return ordering.StatusURL(id, svc.AccessToken(id)) }).
func StatusLinker(publicURL string, path func(orderID string) string) func(orderID string) string {
	base := strings.TrimSuffix(publicURL, "/")
	return func(orderID string) string { return base + path(orderID) }
}

type emailer struct {
	EmailConfig
	fromAddr string
	domain   string
	batch    *deliveries

	mu          sync.Mutex
	restaurants map[int64]cachedRestaurant
}

type cachedRestaurant struct {
	r  *ladle.Restaurant
	at time.Time
}

// restaurant reads the restaurant, keeping it for a few seconds: a burst of
// receipts needs its name and address once, and an edit shows up in the
// emails a few seconds later at most.
func (e *emailer) restaurant(ctx context.Context, id int64) (*ladle.Restaurant, error) {
	e.mu.Lock()
	c, ok := e.restaurants[id]
	e.mu.Unlock()
	if ok && time.Since(c.at) < 5*time.Second {
		return c.r, nil
	}
	r, err := e.Store.RestaurantByID(ctx, id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if len(e.restaurants) > 10000 {
		clear(e.restaurants)
	}
	e.restaurants[id] = cachedRestaurant{r: r, at: time.Now()}
	e.mu.Unlock()
	return r, nil
}

// deliveries groups concurrent dev-mailbox deliveries into one transaction
// (group commit): whoever finds no commit under way commits everything
// queued, again and again until the queue is empty, while the others wait.
// Under load a handful of receipts share one fsync instead of paying one
// each; alone, a delivery commits at once, with no added wait.
type deliveries struct {
	store   EmailStore
	mu      sync.Mutex
	queue   []*pendingDelivery
	leading bool
}

type pendingDelivery struct {
	e    *ladle.Email
	err  error
	done chan struct{}
}

func (d *deliveries) deliver(ctx context.Context, e *ladle.Email) error {
	p := &pendingDelivery{e: e, done: make(chan struct{})}
	d.mu.Lock()
	d.queue = append(d.queue, p)
	if d.leading {
		d.mu.Unlock()
		<-p.done
		return p.err
	}
	d.leading = true
	// The batch belongs to several handlers: don't let this one's
	// cancellation abort the others' commit.
	ctx = context.WithoutCancel(ctx)
	for len(d.queue) > 0 {
		batch := d.queue
		d.queue = nil
		d.mu.Unlock()
		if len(batch) == 1 {
			_, batch[0].err = d.store.DeliverEmail(ctx, batch[0].e)
		} else {
			es := make([]*ladle.Email, len(batch))
			for i, q := range batch {
				es[i] = q.e
			}
			if err := d.store.DeliverEmails(ctx, es); err != nil {
				// One bad email must not fail the others: one by one.
				for _, q := range batch {
					_, q.err = d.store.DeliverEmail(ctx, q.e)
				}
			}
		}
		for _, q := range batch {
			close(q.done)
		}
		d.mu.Lock()
	}
	d.leading = false
	d.mu.Unlock()
	return p.err
}

func newEmailer(cfg EmailConfig) (*emailer, error) {
	if cfg.Store == nil || cfg.Transport == nil || cfg.Templates == nil || cfg.StatusURL == nil {
		return nil, errors.New("worker: email consumers need a store, a transport, templates and a status link")
	}
	a, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("worker: --mail-from %q: %w", cfg.From, err)
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		// Enough handlers that dev-mailbox deliveries share commits
		// (deliveries), and SMTP sends fill the transport's connections.
		cfg.Concurrency = 32
	}
	if cfg.Clock == nil {
		cfg.Clock = ladle.Now
	}
	e := &emailer{EmailConfig: cfg, fromAddr: a.Address, batch: &deliveries{store: cfg.Store},
		restaurants: map[int64]cachedRestaurant{}}
	if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
		e.domain = a.Address[i+1:]
	}
	return e, nil
}

// EmailConsumers returns the receipt, ready-for-pickup, refund and
// campaign test send consumers, and the double opt-in confirmation
// consumer when configured.
func EmailConsumers(cfg EmailConfig) ([]Consumer, error) {
	e, err := newEmailer(cfg)
	if err != nil {
		return nil, err
	}
	mk := func(name, eventType string, h Handler) Consumer {
		return Consumer{Name: name, EventTypes: []string{eventType}, Concurrency: e.Concurrency, Scale: e.Scale,
			MaxAttempts: e.MaxAttempts, Backoff: e.Backoff, AckWait: e.AckWait, Handle: h,
			GaveUp: func(ctx context.Context, ev ladle.Event, err error) { e.gaveUp(ctx, name, ev, err) }}
	}
	cons := []Consumer{
		mk(ConsumerReceipt, ladle.EventOrderPlaced, e.handleReceipt),
		mk(ConsumerReady, ladle.EventOrderStatusChanged, e.handleReady),
		mk(ConsumerRefund, ladle.EventRefundCreated, e.handleRefund),            // refund_email.go
		mk(ConsumerCampaignTest, ladle.EventCampaignTest, e.handleCampaignTest), // campaign_email.go
	}
	if e.Confirm != nil && e.ConfirmURL != nil {
		cons = append(cons, mk(ConsumerConfirm, ladle.EventOrderPlaced, e.handleConfirm)) // confirm_email.go
	}
	return cons, nil
}

// Both handlers act on what the database says, never on what the message
// claims: anyone who can publish to the stream could put another recipient,
// amount or text in an event's body. A message only names the order (the
// event's aggregate id) and its restaurant; the handler reads that order from
// the database, scoped to that restaurant, and renders the email from it.
//
// An event whose order does not exist in that restaurant (forged, or the
// restaurant id does not match the order's) sends nothing: it is a permanent
// failure, so it becomes a dead letter that staff can see, not a silent ack.
// The published payload still carries the order for other readers (the live
// feed); the email consumers ignore it beyond the hint below.

// eventOrder reads the order an event names from the database.
func (e *emailer) eventOrder(ctx context.Context, ev ladle.Event) (*ladle.Order, error) {
	if ev.AggregateID == "" || ev.RestaurantID <= 0 {
		return nil, Permanent(fmt.Errorf("%s event %s names no order and restaurant", ev.Type, ev.ID))
	}
	o, err := e.Store.RestaurantOrder(ctx, ev.RestaurantID, ev.AggregateID)
	if err != nil {
		if ladle.ErrorKind(err) == ladle.KindNotFound {
			return nil, Permanent(fmt.Errorf("%s event %s: no order %s in restaurant %d", ev.Type, ev.ID,
				ev.AggregateID, ev.RestaurantID))
		}
		return nil, err
	}
	return o, nil
}

func (e *emailer) handleReceipt(ctx context.Context, ev ladle.Event) error {
	defer e.urgent(ev)()
	if done, err := e.processed(ctx, ConsumerReceipt, ev); err != nil || done {
		return err
	}
	o, err := e.eventOrder(ctx, ev)
	if err != nil {
		return err
	}
	if !o.Status.OnBoard() {
		// order.placed is written when an order is placed (a card order:
		// once it is paid); one still waiting for or refused its payment
		// gets no receipt, whatever an event says.
		return Permanent(fmt.Errorf("order.placed event %s: order %s is %s, not placed", ev.ID, o.ID, o.Status))
	}
	return e.send(ctx, ConsumerReceipt, mail.KindReceipt, ev, mail.Data{Order: o})
}

func (e *emailer) handleReady(ctx context.Context, ev ladle.Event) error {
	defer e.urgent(ev)()
	// The payload's "to" only saves reading the order for the status
	// changes that are not ours; the database decides.
	var hint struct {
		To ladle.OrderStatus `json:"to"`
	}
	if err := json.Unmarshal(ev.Payload, &hint); err != nil {
		return Permanent(fmt.Errorf("order.status_changed payload is not a status change: %v", err))
	}
	if hint.To != ladle.StatusReady {
		return nil // not ours; nothing to record
	}
	if done, err := e.processed(ctx, ConsumerReady, ev); err != nil || done {
		return err
	}
	o, err := e.eventOrder(ctx, ev)
	if err != nil {
		return err
	}
	if o.Status != ladle.StatusReady && o.Status != ladle.StatusCompleted {
		// Not ready in the database (a forged event, or cancelled since):
		// no email. Nothing to record either: a later real change to
		// ready is a new event.
		return nil
	}
	return e.send(ctx, ConsumerReady, mail.KindReady, ev, mail.Data{Order: o})
}

// urgent holds the priority gate while the event is handled, taking over
// from its expectation (WatchUrgent).
func (e *emailer) urgent(ev ladle.Event) (exit func()) {
	exit = e.Urgent.Enter()
	e.Urgent.Arrived(ev.ID)
	return exit
}

// processed reports whether the consumer's inbox has the event already. A
// redelivery usually finds its inbox row: done, without reading or rendering
// anything. A first delivery skips the lookup: it is rarely done already
// (only when the relay re-published past the broker's duplicate window), and
// then the email's reservation finds the stored email anyway.
func (e *emailer) processed(ctx context.Context, consumer string, ev ladle.Event) (bool, error) {
	if Delivery(ctx) == 1 {
		return false, nil
	}
	return e.Store.Processed(ctx, consumer, ev.ID)
}

// send renders the kind's email from d (its Order set; Restaurant and
// StatusURL are filled here) and delivers it exactly once per event.
func (e *emailer) send(ctx context.Context, consumer string, kind mail.Kind, ev ladle.Event, d mail.Data) error {
	o := d.Order
	r, err := e.restaurant(ctx, o.RestaurantID)
	if err != nil {
		if ladle.ErrorKind(err) == ladle.KindNotFound {
			return Permanent(err)
		}
		return err
	}
	now := e.Clock()
	d.Restaurant, d.StatusURL = r, e.StatusURL(o.ID)
	rendered, err := e.Templates.Render(kind, d)
	if err != nil {
		return err // a broken custom template: retried, so a fix gets it out
	}
	em := &ladle.Email{
		RestaurantID: r.ID, Consumer: consumer, EventID: ev.ID, Kind: string(kind), OrderID: o.ID,
		From: mail.Address(r.Name, e.fromAddr), To: mail.Address(o.Customer.Name, o.Customer.Email),
		Subject: rendered.Subject, Text: rendered.Text, HTML: rendered.HTML,
		MessageID: ev.ID + "." + consumer + "@" + e.domain, Transport: e.Transport.Name(), CreatedAt: now,
	}
	return e.deliver(ctx, ev, em)
}

// deliver hands the rendered email em of event ev to the transport exactly
// once per event (see the top of this file).
func (e *emailer) deliver(ctx context.Context, ev ladle.Event, em *ladle.Email) error {
	now := e.Clock()
	if e.Transport.Name() == mail.MailboxName {
		// The dev mailbox: delivery is the record itself, written with
		// the inbox row in one transaction (no crash window at all).
		msg := &mail.Message{From: em.From, To: em.To, Subject: em.Subject, Text: em.Text, HTML: em.HTML,
			MessageID: em.MessageID, Date: em.CreatedAt, ListUnsubscribe: em.ListUnsubscribe}
		if err := e.Transport.Send(ctx, msg); err != nil {
			// Keep a record of the email that could not be delivered, so
			// the mailbox shows it failed and why.
			if _, rerr := e.Store.ReserveEmail(ctx, em); rerr == nil && em.Status != ladle.EmailSent {
				_ = e.Store.EmailFailed(ctx, em.ID, err.Error(), false, e.Clock())
			}
			return err
		}
		return e.batch.deliver(ctx, em)
	}
	// Reserve and claim in one write. The lease outlives the send (bounded
	// by SendTimeout) and the commit after it; a sender that died holding
	// it delays the retry that long.
	lease := e.SendTimeout + min(e.SendTimeout, 10*time.Second)
	claimed, busyUntil, err := e.Store.ClaimEmail(ctx, em, now, lease)
	if err != nil {
		return err
	}
	if em.Status == ladle.EmailSent {
		return nil // sent before a crash; its inbox row was written with it
	}
	if !claimed {
		return RetryAfter(busyUntil.Sub(now))
	}
	msg := &mail.Message{From: em.From, To: em.To, Subject: em.Subject, Text: em.Text, HTML: em.HTML,
		MessageID: em.MessageID, Date: em.CreatedAt, ListUnsubscribe: em.ListUnsubscribe}
	sctx, cancel := context.WithTimeout(ctx, e.SendTimeout)
	err = e.Transport.Send(sctx, msg)
	cancel()
	if err != nil {
		if ferr := e.Store.EmailFailed(context.WithoutCancel(ctx), em.ID, err.Error(), false, e.Clock()); ferr != nil {
			return errors.Join(err, ferr)
		}
		return err
	}
	if e.Fault != nil {
		if ferr := e.Fault(FaultAfterSend, ev); ferr != nil {
			return errDropped
		}
	}
	// Not cancellable: the email went out; recording that matters more
	// than a prompt shutdown.
	return e.Store.EmailSent(context.WithoutCancel(ctx), em.ID, e.Transport.Name(), e.Clock())
}

// gaveUp marks the event's email failed with the final reason, if one was
// reserved, so the email log shows why it never went out.
func (e *emailer) gaveUp(ctx context.Context, consumer string, ev ladle.Event, cause error) {
	_ = e.Store.GiveUpEmail(ctx, consumer, ev.ID, cause.Error(), e.Clock())
}
