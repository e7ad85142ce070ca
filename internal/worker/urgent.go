package worker

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/priority"
)

// UrgentEventTypes are the events the email consumers handle ahead of bulk
// work (internal/priority): receipts, order-ready and refund emails.
var UrgentEventTypes = []string{ladle.EventOrderPlaced, ladle.EventOrderStatusChanged, ladle.EventRefundCreated}

// ExpectFor is how long a published urgent event holds a process's gate
// before a handler picks it up: in the process that handles it, the broker's
// delivery takes a few milliseconds; in the others (several worker
// processes), it bounds how long they wait for an event they never get.
const ExpectFor = 200 * time.Millisecond

// WatchUrgent makes g expect every urgent event published to b, from any
// process, until its handler calls Arrived (EmailConfig.Urgent does): a
// plain subscription beside the stream, so it sees an event the moment it
// is published, before the stream's consumer delivers it. Call the
// returned func to stop.
func WatchUrgent(b *broker.Broker, g *priority.Gate) (stop func(), err error) {
	return watchUrgent(b, g, ExpectFor)
}

// watchUrgent is WatchUrgent with expectations of expectFor (tests use a
// longer one, so that a slow poll cannot miss it).
func watchUrgent(b *broker.Broker, g *priority.Gate, expectFor time.Duration) (stop func(), err error) {
	var subs []*nats.Subscription
	stop = func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}
	for _, t := range UrgentEventTypes {
		s, err := b.Conn().Subscribe(b.Subject(t), func(m *nats.Msg) {
			if id := m.Header.Get(jetstream.MsgIDHeader); id != "" {
				g.Expect(id, expectFor)
			}
		})
		if err != nil {
			stop()
			return nil, err
		}
		subs = append(subs, s)
	}
	return stop, nil
}
