package outbox_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/outbox"
	"github.com/ladle-dev/ladle/internal/priority"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

var quiet = slog.New(slog.DiscardHandler)

func openStore(t *testing.T, postgres bool) *sqlstore.Store {
	s, _ := openStoreURL(t, postgres)
	return s
}

func openStoreURL(t *testing.T, postgres bool) (*sqlstore.Store, string) {
	t.Helper()
	url := "sqlite:" + filepath.Join(t.TempDir(), "o.db")
	if postgres {
		url = testenv.PostgresSchema(t)
	}
	s, err := sqlstore.Open(context.Background(), url, sqlstore.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, url
}

func placeOrder(t *testing.T, s *sqlstore.Store, f *storetest.Fixture) *ladle.Order {
	t.Helper()
	req := f.Request()
	req.ConfirmDuplicate = true
	o, err := s.CreateOrder(context.Background(), ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(),
		RestaurantID: f.Restaurant.ID, Request: req, Now: ladle.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRelayWakesOnCommit: with the poll timer an hour away, a commit still
// gets its event published at once, through the store's commit hook (and on
// PostgreSQL, through LISTEN/NOTIFY from another store instance, as from
// another process).
func TestRelayWakesOnCommit(t *testing.T) {
	t.Parallel()
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if pg {
				testenv.PostgresURL(t)
			}
			s, url := openStoreURL(t, pg)
			f := storetest.Seed(t, s)
			b := brokertest.Open(t, brokertest.Embedded)
			r := outbox.New(outbox.Config{Store: s, Publisher: b, PollInterval: time.Hour, Logger: quiet})
			s.OnEventsCommitted(r.Wake)
			if err := r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer r.Stop()
			eventually(t, 30*time.Second, "the seed's events", func() bool { return brokertest.SubjectCount(t, b, ladle.EventMenuChanged) > 0 })
			start := time.Now()
			placeOrder(t, s, f)
			eventually(t, 30*time.Second, "order.placed published", func() bool { return brokertest.SubjectCount(t, b, ladle.EventOrderPlaced) == 1 })
			t.Logf("commit → published: %v", time.Since(start))

			if !pg {
				return
			}
			// Another "process": its own store on the same schema, no hook
			// into this relay. NOTIFY wakes it.
			other, err := sqlstore.Open(context.Background(), url, sqlstore.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			placeOrder(t, other, f)
			eventually(t, 30*time.Second, "the other process's order published", func() bool { return brokertest.SubjectCount(t, b, ladle.EventOrderPlaced) == 2 })
		})
	}
}

// TestRelayRepublishesAfterCrash: the relay "dies" after the broker
// acknowledged a batch but before marking it: the next round publishes the
// batch again, and the stream still holds each event once.
func TestRelayRepublishesAfterCrash(t *testing.T) {
	t.Parallel()
	brokertest.Each(t, func(t *testing.T, kind brokertest.Kind) {
		t.Parallel()
		s := openStore(t, false)
		f := storetest.Seed(t, s)
		b := brokertest.Open(t, kind)
		var crashes atomic.Int32
		r := outbox.New(outbox.Config{Store: s, Publisher: b, Logger: quiet, Fault: func(point string) error {
			if point == outbox.FaultAfterPublish && crashes.Add(1) <= 3 {
				return errors.New("crash")
			}
			return nil
		}})
		for range 5 {
			placeOrder(t, s, f)
		}
		ctx := context.Background()
		for range 3 {
			if n, err := r.RunOnce(ctx); err == nil || n != 0 {
				t.Fatalf("a crashed round marked %d (err %v)", n, err)
			}
		}
		if n, _, _ := s.OutboxBacklog(ctx); n == 0 {
			t.Fatal("nothing left to publish after the crashes")
		}
		for {
			n, err := r.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		if n, _, _ := s.OutboxBacklog(ctx); n != 0 {
			t.Fatalf("backlog %d", n)
		}
		if got := brokertest.SubjectCount(t, b, ladle.EventOrderPlaced); got != 5 {
			t.Fatalf("stream holds %d order.placed after three re-publishes, want 5", got)
		}
		if st := r.Stats(); st.Faults != 3 || st.Published == 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestWakeHoldsUrgentGate: a commit's Wake marks the priority gate busy,
// so bulk work yields from the commit on, not only once the round that
// publishes its events has started; that round takes over the hold, and
// without a round the hold ends by itself.
func TestWakeHoldsUrgentGate(t *testing.T) {
	t.Parallel()
	s := openStore(t, false)
	gate := priority.New()
	r := outbox.New(outbox.Config{Store: s, Publisher: brokertest.Open(t, brokertest.Embedded),
		PollInterval: time.Hour, Logger: quiet, Urgent: gate})
	busy := func() bool { return gate.Yield(context.Background(), 5*time.Millisecond) > 0 }
	if busy() {
		t.Fatal("the gate is busy before anything happened")
	}
	r.Wake()
	r.Wake() // the same round: one hold
	if !busy() {
		t.Fatal("a wake did not mark the gate busy")
	}
	if _, err := r.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if busy() {
		t.Fatal("the gate is still busy after the round the wakes expected")
	}
	r.Wake()
	if !busy() {
		t.Fatal("a wake after the round did not mark the gate busy")
	}
	eventually(t, 5*time.Second, "the hold of a wake no round took over to end", func() bool { return !busy() })
}
