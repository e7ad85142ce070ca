package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle"
)

// Headers set on every event message besides Nats-Msg-Id, so consumers and
// operators can route and filter without decoding the body.
const (
	HeaderEventType  = "Ladle-Event-Type"
	HeaderRestaurant = "Ladle-Restaurant"
)

// PublishEvents publishes the events asynchronously, each with Nats-Msg-Id =
// its id, and waits until the server has acknowledged them (stored, and with
// the embedded server's default SyncAlways, fsynced). It returns the ids
// that were acknowledged, in order; err describes the first failure. A
// duplicate (an id the stream already holds) counts as acknowledged: the
// event is in the stream, which is all the caller needs to know.
func (b *Broker) PublishEvents(ctx context.Context, evs []ladle.Event) (acked []string, err error) {
	if err := b.Ready(ctx); err != nil {
		return nil, err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	for i := range evs {
		msg := b.eventMsg(&evs[i])
		f, err := b.js.PublishMsgAsync(msg, jetstream.WithMsgID(evs[i].ID), jetstream.WithExpectStream(b.cfg.Stream))
		if err != nil {
			ids, _ := ackedIDs(ctx, evs, futures)
			return ids, b.publishErr(err)
		}
		futures = append(futures, f)
	}
	ids, err := ackedIDs(ctx, evs, futures)
	return ids, b.publishErr(err)
}

// ackedIDs waits for each future and returns the ids of every acknowledged
// one (a later ack does not depend on an earlier one) and the first error.
func ackedIDs(ctx context.Context, evs []ladle.Event, futures []jetstream.PubAckFuture) ([]string, error) {
	var first error
	ids := make([]string, 0, len(futures))
	for i, f := range futures {
		select {
		case <-f.Ok():
			ids = append(ids, evs[i].ID)
		case err := <-f.Err():
			if first == nil {
				first = fmt.Errorf("event %s: %w", evs[i].ID, err)
			}
		case <-ctx.Done():
			if first == nil {
				first = ctx.Err()
			}
			return ids, first
		}
	}
	return ids, first
}

func (b *Broker) publishErr(err error) error {
	if err == nil {
		return nil
	}
	// "No stream" means the server forgot it (or never had it): set it up
	// again before the next attempt.
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrStreamNotFound) {
		b.ready.Store(false)
	}
	if !b.nc.IsConnected() {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("broker: publish: %w", err)
}

// eventMsg encodes the event. It cannot fail: a payload that is not valid
// JSON (a bug upstream) is carried as a JSON string instead, so the event is
// still published, fails in its consumers and lands in the dead letters where
// staff see it, rather than wedging the relay on one row forever.
func (b *Broker) eventMsg(ev *ladle.Event) *nats.Msg {
	e := *ev
	if len(e.Payload) == 0 {
		e.Payload = json.RawMessage("null")
	} else if !json.Valid(e.Payload) {
		e.Payload, _ = json.Marshal(string(e.Payload))
	}
	body, _ := json.Marshal(&e) // only strings, numbers, a time and valid JSON
	msg := nats.NewMsg(b.Subject(ev.Type))
	msg.Data = body
	msg.Header.Set(HeaderEventType, ev.Type)
	msg.Header.Set(HeaderRestaurant, strconv.FormatInt(ev.RestaurantID, 10))
	return msg
}

// DecodeEvent decodes a message published by PublishEvents.
func DecodeEvent(data []byte) (ladle.Event, error) {
	var ev ladle.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, fmt.Errorf("broker: decode event: %w", err)
	}
	if ev.ID == "" || ev.Type == "" {
		return ev, errors.New("broker: decode event: missing id or type")
	}
	return ev, nil
}
