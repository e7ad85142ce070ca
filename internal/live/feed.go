package live

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker"
)

// Feed fills a Hub from the broker's order events: a Start(ctx)/Stop()
// service, one per process that serves screens.
//
// Each process has its own pull consumer (explicit ack, new events only),
// named for the process, not one durable consumer shared with the others:
// a shared one would split the events between the processes, and every
// process's screens need every event. Its effect lives in memory, so there
// is nothing to record in an inbox; a screen that (re)connects loads the
// current state from the database after its stream is open. The broker
// deletes the consumer a minute after the process is gone.
type Feed struct {
	b    *broker.Broker
	hub  *Hub
	log  *slog.Logger
	name string

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewFeed returns a feed from b into hub.
func NewFeed(b *broker.Broker, hub *Hub, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.Default()
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	return &Feed{b: b, hub: hub, log: log.With("component", "live"), name: "live_" + hex.EncodeToString(id[:])}
}

// Start starts consuming in the background (retrying while the broker is
// unavailable).
func (f *Feed) Start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cancel != nil {
		return errors.New("live: feed already started")
	}
	ctx, f.cancel = context.WithCancel(ctx)
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		f.loop(ctx)
	}()
	return nil
}

// Stop stops consuming, waits, and deletes this process's consumer.
func (f *Feed) Stop() {
	f.mu.Lock()
	cancel, done := f.cancel, f.done
	f.cancel = nil
	f.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	ctx, c := context.WithTimeout(context.Background(), 2*time.Second)
	defer c()
	_ = f.b.DeleteConsumer(ctx, f.name)
}

func (f *Feed) loop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	var lastLog time.Time
	for ctx.Err() == nil {
		err := f.consume(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(lastLog) > 10*time.Second {
			f.log.Warn("live feed interrupted; retrying", "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (f *Feed) consume(ctx context.Context) error {
	cons, err := f.b.Consumer(ctx, jetstream.ConsumerConfig{
		Durable:           f.name,
		Description:       "ladle live screens of one process",
		FilterSubject:     f.b.Subject("order.>"),
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           10 * time.Second,
		MaxDeliver:        3,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if u, ok := decodeUpdate(m.Data()); ok {
			f.hub.Publish(u)
		}
		_ = m.Ack()
	}
}

// decodeUpdate turns an order event into an Update.
func decodeUpdate(data []byte) (Update, bool) {
	ev, err := broker.DecodeEvent(data)
	if err != nil {
		return Update{}, false
	}
	u := Update{Type: ev.Type, EventID: ev.ID, RestaurantID: ev.RestaurantID}
	var o *ladle.Order
	switch ev.Type {
	case ladle.EventOrderPlaced:
		o = new(ladle.Order)
		if json.Unmarshal(ev.Payload, o) != nil {
			return Update{}, false
		}
	case ladle.EventOrderStatusChanged:
		var sc ladle.StatusChange
		if json.Unmarshal(ev.Payload, &sc) != nil || sc.Order == nil {
			return Update{}, false
		}
		o, u.From = sc.Order, sc.From
	default:
		return Update{}, false
	}
	u.OrderID, u.Number, u.Status, u.Order, u.At = o.ID, o.Number, o.Status, o, o.UpdatedAt
	if u.At.IsZero() {
		u.At = ev.CreatedAt
	}
	return u, true
}
