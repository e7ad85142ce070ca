package menucache

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/ladle-dev/ladle"
)

// Invalidation says "the menu of this restaurant changed".
type Invalidation struct {
	RestaurantID int64 `json:"restaurant_id"`
	// Origin identifies the sending Cache, which ignores its own message.
	Origin string `json:"origin,omitempty"`
}

// Bus carries invalidations between processes. Delivery is best effort:
// at most once, to the processes connected at the time. That is enough
// because a Cache trusts a version for at most VersionTTL anyway; the bus
// makes an edit visible in milliseconds instead of up to that.
type Bus interface {
	// Publish sends inv to every subscriber, this process's included.
	// Outcomes: nil when handed to the transport (not a delivery receipt);
	// an error when the transport refused it (disconnected, closed).
	Publish(ctx context.Context, inv Invalidation) error
	// Subscribe calls fn for every invalidation received until the returned
	// unsubscribe is called; fn is called from one goroutine at a time and
	// must not block for long. It returns once the subscription is live.
	Subscribe(fn func(Invalidation)) (unsubscribe func(), err error)
}

// DefaultSubject is the NATS subject, and DefaultChannel the Redis channel,
// invalidations travel on.
const (
	DefaultSubject = "ladle.menucache.invalidate"
	DefaultChannel = "ladle:menucache:invalidate"
)

// NATSBus is a Bus over NATS core pub/sub (not JetStream: an invalidation
// is worthless by the time a replay could deliver it).
type NATSBus struct {
	nc      *nats.Conn
	subject string
	// EventSubject, if set, is also listened to for menu.changed events as
	// the outbox relay publishes them ("ladle.events.menu.changed"): a
	// second path that catches edits made by any process, even one without
	// a cache. Core subscribers receive JetStream-captured subjects too.
	EventSubject string
}

// NewNATSBus returns a Bus on the connection nc (owned by the caller) and
// subject ("" for DefaultSubject), also listening to menu.changed events on
// "ladle.events.menu.changed".
func NewNATSBus(nc *nats.Conn, subject string) *NATSBus {
	if subject == "" {
		subject = DefaultSubject
	}
	return &NATSBus{nc: nc, subject: subject, EventSubject: "ladle.events." + ladle.EventMenuChanged}
}

// Publish implements Bus.
func (b *NATSBus) Publish(ctx context.Context, inv Invalidation) error {
	data, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	return b.nc.Publish(b.subject, data)
}

// Subscribe implements Bus. The subscriptions are flushed to the server
// before it returns, so a Publish after it is received.
func (b *NATSBus) Subscribe(fn func(Invalidation)) (func(), error) {
	var mu sync.Mutex // one callback at a time across both subscriptions
	sub, err := b.nc.Subscribe(b.subject, func(m *nats.Msg) {
		var inv Invalidation
		if json.Unmarshal(m.Data, &inv) == nil && inv.RestaurantID > 0 {
			mu.Lock()
			defer mu.Unlock()
			fn(inv)
		}
	})
	if err != nil {
		return nil, err
	}
	subs := []*nats.Subscription{sub}
	unsubscribe := func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}
	if b.EventSubject != "" {
		ev, err := b.nc.Subscribe(b.EventSubject, func(m *nats.Msg) {
			var e ladle.Event
			if json.Unmarshal(m.Data, &e) == nil && e.RestaurantID > 0 {
				mu.Lock()
				defer mu.Unlock()
				fn(Invalidation{RestaurantID: e.RestaurantID})
			}
		})
		if err != nil {
			unsubscribe()
			return nil, err
		}
		subs = append(subs, ev)
	}
	if err := b.nc.Flush(); err != nil {
		unsubscribe()
		return nil, fmt.Errorf("menucache: flushing subscription: %w", err)
	}
	return unsubscribe, nil
}

// RedisBus is a Bus over Redis pub/sub, for deployments with Redis and no
// NATS reachable from the API processes. go-redis re-subscribes by itself
// after a reconnect; messages published meanwhile are lost, which
// VersionTTL covers.
type RedisBus struct {
	client  redis.UniversalClient
	channel string
}

// NewRedisBus returns a Bus on client (owned by the caller) and channel (""
// for DefaultChannel).
func NewRedisBus(client redis.UniversalClient, channel string) *RedisBus {
	if channel == "" {
		channel = DefaultChannel
	}
	return &RedisBus{client: client, channel: channel}
}

// Publish implements Bus.
func (b *RedisBus) Publish(ctx context.Context, inv Invalidation) error {
	data, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	return b.client.Publish(ctx, b.channel, data).Err()
}

// Subscribe implements Bus.
func (b *RedisBus) Subscribe(fn func(Invalidation)) (func(), error) {
	ctx := context.Background()
	ps := b.client.Subscribe(ctx, b.channel)
	// Wait for the server's confirmation, so the subscription is live.
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ps.Channel() {
			var inv Invalidation
			if json.Unmarshal([]byte(m.Payload), &inv) == nil && inv.RestaurantID > 0 {
				fn(inv)
			}
		}
	}()
	return func() {
		_ = ps.Close()
		<-done
	}, nil
}
