package worker_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/outbox"
	"github.com/ladle-dev/ladle/internal/worker"
)

// faults decides, with a seeded generator, where the relay and the
// consumers "crash", and counts each.
type faults struct {
	mu     sync.Mutex
	rng    *rand.Rand
	prob   map[string]float64
	counts map[string]int
	events map[string]int // event id -> after-send faults injected for it
	off    atomic.Bool
}

func newFaults(seed uint64, prob map[string]float64) *faults {
	return &faults{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), prob: prob, counts: map[string]int{}, events: map[string]int{}}
}

var errCrash = errors.New("injected crash")

func (f *faults) hit(point string) error { return f.hitEvent(point, "") }

func (f *faults) hitEvent(point, eventID string) error {
	if f.off.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() < f.prob[point] {
		f.counts[point]++
		if eventID != "" {
			f.events[eventID]++
		}
		return errCrash
	}
	return nil
}

// uncertain wraps a transport and counts, per Message-ID, the sends that
// failed without an SMTP reply (the connection broke or the worker was
// stopped mid-send): the server may or may not have taken those messages.
type uncertain struct {
	mail.Transport
	mu sync.Mutex
	n  map[string]int
}

func (u *uncertain) Send(ctx context.Context, m *mail.Message) error {
	err := u.Transport.Send(ctx, m)
	var reply *smtp.SMTPError
	if err != nil && !errors.As(err, &reply) {
		u.mu.Lock()
		u.n[m.MessageID]++
		u.mu.Unlock()
	}
	return err
}

func (f *faults) count(point string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[point]
}

// TestCrashSafety places many orders while the relay and the email consumer
// crash at the worst moments (injected faults: after a publish before it is
// marked, after an email went out before it is marked sent, after the effect
// committed before the ack) and while both are torn down and restarted
// mid-flight, over SMTP to a real server on loopback. Every order must get
// its receipt, exactly one per Message-ID, with no dead letters.
//
// LADLE_CRASH_ORDERS overrides the number of orders (default 1000; 200 under
// -short or -race).
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	n := 1000
	if testing.Short() || raceEnabled {
		n = 200 // the race detector slows SQLite and the server ~10x
	}
	if v, err := strconv.Atoi(os.Getenv("LADLE_CRASH_ORDERS")); err == nil && v > 0 {
		n = v
	}
	brokertest.Each(t, func(t *testing.T, kind brokertest.Kind) {
		crashRun(t, kind, n)
	})
}

func crashRun(t *testing.T, kind brokertest.Kind, n int) {
	f := newFaults(42, map[string]float64{
		outbox.FaultAfterPublish: 0.10, // of relay rounds
		worker.FaultAfterSend:    0.01, // of emails handed to SMTP
		worker.FaultAfterEffect:  0.03, // of events handled
	})
	workerFault := func(point string, ev ladle.Event) error {
		if ev.Type != ladle.EventOrderPlaced {
			return nil
		}
		return f.hitEvent(point, ev.ID)
	}
	unc := &uncertain{n: map[string]int{}}
	h := newHarness(t, hopts{wrap: func(tr mail.Transport) mail.Transport { unc.Transport = tr; return unc }, kind: kind, smtp: true, concurrency: 4, ackWait: time.Second, sendTimeout: time.Second,
		maxAttempts: 1000, workerFault: workerFault, relayFault: f.hit, fast: true})
	ctx := context.Background()

	// Crash and restart the relay and the worker every 300ms until every
	// receipt is out: in-flight sends are cancelled, fetched events
	// abandoned, leases left behind.
	var stats []map[string]worker.Stats
	var relayStats []outbox.Stats
	stopRestarts := make(chan struct{})
	restarts := 0
	var restarter sync.WaitGroup
	restarter.Add(1)
	go func() {
		defer restarter.Done()
		for {
			select {
			case <-stopRestarts:
				return
			case <-time.After(300 * time.Millisecond):
			}
			h.w.Stop()
			h.relay.Stop()
			stats = append(stats, h.w.Stats())
			relayStats = append(relayStats, h.relay.Stats())
			h.startRelay()
			h.startWorker()
			restarts++
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	orders := make([]*ladle.Order, n)
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += 4 {
				orders[i] = h.place(i)
			}
		}()
	}
	wg.Wait()
	placed := time.Since(start)
	// The restarts go on while the backlog drains.
	// A delivery bound, not a speed: on a loaded machine under the race
	// detector, with restarts every 300 ms, 90 s was not always enough.
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		got := h.sentCount("receipt")
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 4m %d of %d receipts marked sent", got, n)
		}
	}
	done := time.Since(start)
	close(stopRestarts)
	restarter.Wait()
	f.off.Store(true)
	time.Sleep(2 * time.Second) // time for any stray duplicate to show up
	stats = append(stats, h.w.Stats())
	relayStats = append(relayStats, h.relay.Stats())

	// Exactly one receipt row per order, all sent.
	rows := map[string]int{}
	for _, e := range h.emails() {
		if e.Kind == "receipt" {
			rows[e.OrderID]++
			if e.Status != ladle.EmailSent {
				t.Errorf("receipt for %s is %s: %s", e.OrderID, e.Status, e.Error)
			}
		}
	}
	for _, o := range orders {
		if rows[o.ID] != 1 {
			t.Errorf("order %d has %d receipt rows", o.Number, rows[o.ID])
		}
	}
	// At the SMTP server: every guest got their receipt, one Message-ID
	// each. An extra copy (same Message-ID) is only allowed where the
	// sender could not know the first one arrived: an injected crash after
	// the server's 250, or a send cut off mid-way by a restart.
	msgs := h.smtp.Messages()
	ids := map[string]map[string]bool{}
	copies := map[string]int{}
	for _, m := range msgs {
		if ids[m.To] == nil {
			ids[m.To] = map[string]bool{}
		}
		ids[m.To][m.MessageID] = true
		copies[m.MessageID]++
	}
	for i := range n {
		to := "guest" + strconv.Itoa(i) + "@example.com"
		if len(ids[to]) != 1 {
			t.Errorf("%s received %d distinct receipts", to, len(ids[to]))
		}
	}
	afterSend := f.count(worker.FaultAfterSend)
	for id, c := range copies {
		eventID := strings.TrimSuffix(id, ".receipt@ladle.test")
		if allowed := 1 + f.events[eventID] + unc.n[id]; c > allowed {
			t.Errorf("%s delivered %d times; only %d crashes or cut-off sends could explain copies", id, c, allowed-1)
		}
	}
	if dup := len(msgs) - n; dup < afterSend {
		t.Errorf("%d duplicate deliveries, fewer than the %d after-send crashes", dup, afterSend)
	}
	if c, _ := h.store.CountDeadLetters(ctx, h.f.Restaurant.ID); c != 0 {
		t.Errorf("%d dead letters", c)
	}
	// The stream holds each order.placed event once, however often the
	// relay re-published it.
	if got := brokertest.SubjectCount(t, h.b, ladle.EventOrderPlaced); got != uint64(n) {
		t.Errorf("stream holds %d order.placed messages, want %d", got, n)
	}

	var redeliveries, handled, busy, dropped int64
	for _, st := range stats {
		r := st[worker.ConsumerReceipt]
		redeliveries += r.Redeliveries
		handled += r.Handled
		busy += r.Busy
		dropped += r.Faults
	}
	var republishRounds int64
	for _, rs := range relayStats {
		republishRounds += rs.Faults
	}
	t.Logf("%s broker, %d orders placed in %v, all receipts sent after %v", h.opts.kind, n, placed.Round(time.Millisecond), done.Round(time.Millisecond))
	t.Logf("faults: relay after-publish %d rounds, email after-send %d, after-effect %d; %d restarts of relay and worker",
		f.count(outbox.FaultAfterPublish), afterSend, f.count(worker.FaultAfterEffect), restarts)
	t.Logf("receipt consumer: %d redeliveries, %d handled, %d postponed on a held lease, %d dropped by faults; SMTP messages %d (%d duplicates, same Message-ID)",
		redeliveries, handled, busy, dropped, len(msgs), len(msgs)-n)
	if f.count(outbox.FaultAfterPublish) == 0 || f.count(worker.FaultAfterEffect) == 0 || redeliveries == 0 {
		t.Errorf("the run injected too few faults to mean anything")
	}
}
