package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
)

// Tests of the event side of the store (relay.go, notify.go, inbox.go,
// email.go, deadletter.go), on both databases.

func eachDialect(t *testing.T, fn func(t *testing.T, s *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, openSQLite(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		pgURL(t)
		fn(t, openPostgres(t))
	})
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

func TestEventsCommittedHook(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		f := storetest.Seed(t, s)
		var calls atomic.Int32
		s.OnEventsCommitted(func() { calls.Add(1) })
		placeOrder(t, s, f)
		if n := calls.Load(); n != 1 {
			t.Fatalf("hook ran %d times for one order, want 1", n)
		}
		// A write that appends no event, and an order that fails and rolls
		// back, wake nobody.
		if err := s.CreateUser(context.Background(), &ladle.User{Email: "x-" + uuid.NewString() + "@example.com", Name: "X", PasswordHash: "h"}); err != nil {
			t.Fatal(err)
		}
		bad := f.Request()
		bad.Lines[0].ItemID = f.VeggieBurger.ID // sold out
		_, err := s.CreateOrder(context.Background(), ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(),
			RestaurantID: f.Restaurant.ID, Request: bad, Now: ladle.Now()})
		if err == nil {
			t.Fatal("order of a sold-out item succeeded")
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("hook ran %d times, want still 1", n)
		}
	})
}

func TestRelayOutbox(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		f := storetest.Seed(t, s) // its menu edits appended menu.changed events
		for range 3 {
			placeOrder(t, s, f)
		}
		backlog, oldest, err := s.OutboxBacklog(ctx)
		if err != nil || backlog < 3 || oldest.IsZero() {
			t.Fatalf("backlog %d, oldest %v, err %v", backlog, oldest, err)
		}
		// The broker acknowledges only every other event of the first batch.
		var seen []ladle.Event
		n, err := s.RelayOutbox(ctx, 4, ladle.Now(), func(_ context.Context, evs []ladle.Event) ([]string, error) {
			seen = append(seen, evs...)
			return []string{evs[0].ID, evs[2].ID}, errors.New("two acks missing")
		})
		if n != 2 || err == nil || len(seen) != 4 {
			t.Fatalf("first round: marked %d, err %v, saw %d", n, err, len(seen))
		}
		if !slices.IsSortedFunc(seen, func(a, b ladle.Event) int { return a.CreatedAt.Compare(b.CreatedAt) }) {
			t.Error("events not handed over oldest first")
		}
		// Everything else, including the two unacknowledged ones, comes next.
		var rest []string
		for {
			n, err := s.RelayOutbox(ctx, 10, ladle.Now(), func(_ context.Context, evs []ladle.Event) ([]string, error) {
				var ids []string
				for _, ev := range evs {
					ids = append(ids, ev.ID)
				}
				rest = append(rest, ids...)
				return ids, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		if !slices.Contains(rest, seen[1].ID) || !slices.Contains(rest, seen[3].ID) || slices.Contains(rest, seen[0].ID) {
			t.Fatalf("unacknowledged events not retried (or acknowledged ones repeated): %v", rest)
		}
		if len(rest) != backlog-2 {
			t.Fatalf("relayed %d more, want %d", len(rest), backlog-2)
		}
		if n, _, _ := s.OutboxBacklog(ctx); n != 0 {
			t.Fatalf("backlog %d after relaying everything", n)
		}
		pruned, err := s.PruneOutbox(ctx, ladle.Now().Add(time.Second), 1000)
		if err != nil || int(pruned) != backlog {
			t.Fatalf("pruned %d, want %d (err %v)", pruned, backlog, err)
		}
	})
}

func TestRelayOutboxConcurrentRelaysPostgres(t *testing.T) {
	t.Parallel()
	pgURL(t)
	s := openPostgres(t)
	ctx := context.Background()
	f := storetest.Seed(t, s)
	for range 20 {
		placeOrder(t, s, f)
	}
	total, _, _ := s.OutboxBacklog(ctx)
	// Four relays run at once; each holds its batch while "publishing".
	// SKIP LOCKED must hand every event to exactly one of them.
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, err := s.RelayOutbox(ctx, 5, ladle.Now(), func(_ context.Context, evs []ladle.Event) ([]string, error) {
					time.Sleep(20 * time.Millisecond)
					var ids []string
					mu.Lock()
					for _, ev := range evs {
						got[ev.ID]++
						ids = append(ids, ev.ID)
					}
					mu.Unlock()
					return ids, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(got) != total {
		t.Fatalf("%d distinct events relayed, want %d", len(got), total)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s published by %d relays", id, n)
		}
	}
}

func TestListenEventsPostgres(t *testing.T) {
	t.Parallel()
	pgURL(t)
	url := freshSchema(t)
	api := open(t, url)      // the process that takes orders
	relay := open(t, url)    // another process, whose relay must wake
	other := openPostgres(t) // another schema: its commits must not wake it
	f := storetest.Seed(t, api)
	fo := storetest.Seed(t, other)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woke := make(chan struct{}, 100)
	done := make(chan error, 1)
	go func() { done <- relay.ListenEvents(ctx, func() { woke <- struct{}{} }) }()
	// LISTEN reaches the server in the background, and a commit before it
	// wakes nobody: rather than wait a fixed moment (too short on a loaded
	// machine), send the stores' own notification by hand until one wakes
	// the listener, then start from a quiet channel.
	probe := time.Now().Add(time.Minute)
	for listening := false; !listening; {
		if _, err := api.DB().ExecContext(ctx, `SELECT pg_notify('ladle_outbox', current_schema())`); err != nil {
			t.Fatal(err)
		}
		select {
		case <-woke:
			listening = true
		case <-time.After(500 * time.Millisecond):
			if time.Now().After(probe) {
				t.Fatal("the listener never heard a notification for its schema")
			}
		}
	}
	// Probes sent after the one that woke it are on their way: drain until
	// the channel has been quiet for a second.
	for quiet := false; !quiet; {
		select {
		case <-woke:
		case <-time.After(time.Second):
			quiet = true
		}
	}
	placeOrder(t, other, fo)
	select {
	case <-woke:
		t.Fatal("woken by another schema's commit")
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	placeOrder(t, api, f)
	select {
	case <-woke:
		t.Logf("woken %v after the commit returned", time.Since(start))
	case <-time.After(30 * time.Second):
		t.Fatal("not woken by a commit in another process")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := openSQLite(t).ListenEvents(ctx, func() {}); !errors.Is(err, sqlstore.ErrNoListen) {
		t.Fatalf("sqlite listen: %v", err)
	}
}

func TestEmailLifecycle(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		f := storetest.Seed(t, s)
		o := placeOrder(t, s, f)
		now := ladle.Now()
		e := &ladle.Email{RestaurantID: f.Restaurant.ID, Consumer: "receipt", EventID: "evt-1", Kind: "receipt",
			OrderID: o.ID, From: "Bistro <orders@ladle.example>", To: "ada@example.com", Subject: "Your order",
			Text: "text", HTML: "<p>html</p>", MessageID: "evt-1.receipt@ladle.example", Transport: "smtp", CreatedAt: now}
		// The first claim reserves the email and leases it, in one write.
		claimed, busy, err := s.ClaimEmail(ctx, e, now, time.Minute)
		if err != nil || !claimed || e.ID == 0 || e.Status != ladle.EmailQueued || e.Attempts != 1 || !busy.IsZero() {
			t.Fatalf("claim: %v %v %+v %v", claimed, busy, e, err)
		}
		// A redelivery renders again (say with another Date) but gets the
		// stored email back, and one sender at a time holds it.
		again := &ladle.Email{RestaurantID: f.Restaurant.ID, Consumer: "receipt", EventID: "evt-1", Kind: "receipt",
			Subject: "different", From: "x@y.z", To: "x@y.z", CreatedAt: now.Add(time.Hour)}
		claimed, busy, err = s.ClaimEmail(ctx, again, now.Add(time.Second), time.Minute)
		if err != nil || claimed || !busy.Equal(now.Add(time.Minute)) || again.ID != e.ID || again.Subject != "Your order" ||
			!again.CreatedAt.Equal(now) || again.Status != ladle.EmailQueued {
			t.Fatalf("second claim: %v %v %+v %v", claimed, busy, again, err)
		}
		// ReserveEmail (a record of an email that could not be sent) loads
		// it too.
		if created, err := s.ReserveEmail(ctx, again); err != nil || created || again.ID != e.ID || again.Subject != "Your order" {
			t.Fatalf("reserve of a claimed email: created %v, %+v, %v", created, again, err)
		}
		if err := s.EmailFailed(ctx, e.ID, "451 try again later", false, now.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		// The failure released the lease.
		retry := &ladle.Email{RestaurantID: f.Restaurant.ID, Consumer: "receipt", EventID: "evt-1", Kind: "receipt", CreatedAt: now.Add(time.Hour)}
		if claimed, _, err := s.ClaimEmail(ctx, retry, now.Add(3*time.Second), time.Minute); err != nil || !claimed ||
			retry.ID != e.ID || retry.Attempts != 2 || retry.Subject != "Your order" {
			t.Fatalf("claim after a failure: %v %+v %v", claimed, retry, err)
		}
		if done, _ := s.Processed(ctx, "receipt", "evt-1"); done {
			t.Fatal("processed before it was sent")
		}
		if err := s.EmailSent(ctx, e.ID, "smtp", now.Add(4*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := s.EmailSent(ctx, e.ID, "smtp", now.Add(5*time.Second)); err != nil {
			t.Fatalf("second EmailSent: %v", err)
		}
		if done, _ := s.Processed(ctx, "receipt", "evt-1"); !done {
			t.Fatal("sending did not record the inbox row")
		}
		late := &ladle.Email{RestaurantID: f.Restaurant.ID, Consumer: "receipt", EventID: "evt-1", Kind: "receipt"}
		if claimed, busy, err := s.ClaimEmail(ctx, late, now.Add(time.Hour), time.Minute); err != nil || claimed || late.Status != ladle.EmailSent || !busy.IsZero() {
			t.Fatalf("claimed a sent email: %v %s %v %v", claimed, late.Status, busy, err)
		}
		got, err := s.Email(ctx, f.Restaurant.ID, e.ID)
		if err != nil || got.Status != ladle.EmailSent || got.Attempts != 2 || got.Error != "" || got.SentAt == nil || !got.SentAt.Equal(now.Add(4*time.Second)) {
			t.Fatalf("stored email %+v, %v", got, err)
		}

		// A second email that gives up.
		e2 := &ladle.Email{RestaurantID: f.Restaurant.ID, Consumer: "ready", EventID: "evt-2", Kind: "ready",
			OrderID: o.ID, From: "a@b.c", To: "d@e.f", Subject: "Ready", Text: "t", MessageID: "m2"}
		if _, err := s.ReserveEmail(ctx, e2); err != nil {
			t.Fatal(err)
		}
		if err := s.EmailFailed(ctx, e2.ID, "550 no such user", true, now); err != nil {
			t.Fatal(err)
		}
		list, err := s.Emails(ctx, f.Restaurant.ID, 0, 10)
		if err != nil || len(list) != 2 || list[0].ID != e2.ID || list[0].Status != ladle.EmailFailed || list[0].Error != "550 no such user" {
			t.Fatalf("emails %+v, %v", list, err)
		}
		if page, _ := s.Emails(ctx, f.Restaurant.ID, e2.ID, 10); len(page) != 1 || page[0].ID != e.ID {
			t.Fatalf("second page %+v", page)
		}
		if byOrder, _ := s.OrderEmails(ctx, f.Restaurant.ID, o.ID); len(byOrder) != 2 {
			t.Fatalf("order emails %d", len(byOrder))
		}
		counts, _ := s.EmailCounts(ctx, f.Restaurant.ID)
		if counts[ladle.EmailSent] != 1 || counts[ladle.EmailFailed] != 1 {
			t.Fatalf("counts %v", counts)
		}
		// Staff of the other restaurant see none of it.
		if l, _ := s.Emails(ctx, f.Other.ID, 0, 10); len(l) != 0 {
			t.Fatalf("other restaurant sees %d emails", len(l))
		}
		if _, err := s.Email(ctx, f.Other.ID, e.ID); ladle.ErrorCode(err) != ladle.CodeNotFound {
			t.Fatalf("other restaurant reads an email: %v", err)
		}
	})
}

func TestInbox(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		first, err := s.MarkProcessed(ctx, "live", "evt-1", ladle.Now())
		if err != nil || !first {
			t.Fatalf("first mark: %v %v", first, err)
		}
		if first, err := s.MarkProcessed(ctx, "live", "evt-1", ladle.Now()); err != nil || first {
			t.Fatalf("second mark: %v %v", first, err)
		}
		if done, _ := s.Processed(ctx, "other", "evt-1"); done {
			t.Fatal("inbox rows are per consumer")
		}
		if n, err := s.PruneInbox(ctx, ladle.Now().Add(time.Second), 100); err != nil || n != 1 {
			t.Fatalf("prune: %d %v", n, err)
		}
	})
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		f := storetest.Seed(t, s)
		o := placeOrder(t, s, f)
		var placed ladle.Event
		evs, _ := s.OutboxEvents(ctx, f.Restaurant.ID)
		for _, ev := range evs {
			if ev.Type == ladle.EventOrderPlaced && ev.AggregateID == o.ID {
				placed = ev
			}
		}
		if placed.ID == "" {
			t.Fatal("no order.placed event")
		}
		dl := &ladle.DeadLetter{Consumer: "receipt", Event: placed, Error: "550 no such user", Deliveries: 1}
		if created, err := s.AddDeadLetter(ctx, dl); err != nil || !created || dl.ID == 0 {
			t.Fatalf("add: %v %v", created, err)
		}
		// The worker crashed before terminating the message and gives up
		// on the redelivery again: still one letter.
		if created, err := s.AddDeadLetter(ctx, &ladle.DeadLetter{Consumer: "receipt", Event: placed, Error: "again", Deliveries: 2}); err != nil || created {
			t.Fatalf("second add: %v %v", created, err)
		}
		if n, _ := s.CountDeadLetters(ctx, f.Restaurant.ID); n != 1 {
			t.Fatalf("%d open letters", n)
		}
		list, err := s.DeadLetters(ctx, f.Restaurant.ID, false, 0)
		if err != nil || len(list) != 1 || list[0].Event.ID != placed.ID || string(list[0].Event.Payload) == "" || list[0].Error != "550 no such user" {
			t.Fatalf("letters %+v %v", list, err)
		}
		var payload ladle.Order
		if err := json.Unmarshal(list[0].Event.Payload, &payload); err != nil || payload.ID != o.ID {
			t.Fatalf("stored event payload: %v %s", err, list[0].Event.Payload)
		}

		// Other restaurant: invisible, and cannot replay it.
		if l, _ := s.DeadLetters(ctx, f.Other.ID, true, 0); len(l) != 0 {
			t.Fatal("other restaurant sees the letter")
		}
		if _, err := s.ReplayDeadLetter(ctx, f.Other.ID, dl.ID, ladle.Now()); ladle.ErrorCode(err) != ladle.CodeNotFound {
			t.Fatalf("other restaurant's replay: %v", err)
		}

		var woke atomic.Int32
		s.OnEventsCommitted(func() { woke.Add(1) })
		got, err := s.ReplayDeadLetter(ctx, f.Restaurant.ID, dl.ID, ladle.Now())
		if err != nil || got.ReplayedAt == nil || got.ReplayEventID == "" {
			t.Fatalf("replay: %+v %v", got, err)
		}
		if woke.Load() != 1 {
			t.Error("a replay did not wake the relay")
		}
		if _, err := s.ReplayDeadLetter(ctx, f.Restaurant.ID, dl.ID, ladle.Now()); ladle.ErrorCode(err) != "already_replayed" {
			t.Fatalf("second replay: %v", err)
		}
		evs, _ = s.OutboxEvents(ctx, f.Restaurant.ID)
		last := evs[len(evs)-1]
		if last.ID != got.ReplayEventID || last.Type != ladle.EventReplayPrefix+"receipt" {
			t.Fatalf("replay event %+v", last)
		}
		var inner ladle.Event
		if err := json.Unmarshal(last.Payload, &inner); err != nil || inner.ID != placed.ID || string(inner.Payload) != string(placed.Payload) {
			t.Fatalf("replay payload %s: %v", last.Payload, err)
		}
		// Replayed letters leave the open list; a new failure can be recorded.
		if n, _ := s.CountDeadLetters(ctx, f.Restaurant.ID); n != 0 {
			t.Fatalf("%d open letters after replay", n)
		}
		if created, _ := s.AddDeadLetter(ctx, &ladle.DeadLetter{Consumer: "receipt", Event: placed, Error: "failed again", Deliveries: 8}); !created {
			t.Fatal("a failure after a replay was not recorded")
		}
		if all, _ := s.DeadLetters(ctx, f.Restaurant.ID, true, 0); len(all) != 2 {
			t.Fatalf("%d letters in all", len(all))
		}
	})
}

func TestDeliverEmail(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *sqlstore.Store) {
		ctx := context.Background()
		f := storetest.Seed(t, s)
		mk := func(ev string) *ladle.Email {
			return &ladle.Email{RestaurantID: f.Restaurant.ID, Consumer: "receipt", EventID: ev, Kind: "receipt",
				From: "a@b.c", To: "d@e.f", Subject: "s " + ev, Text: "t", MessageID: ev + "@x", Transport: "mailbox", CreatedAt: ladle.Now()}
		}
		e := mk("evt-1")
		if created, err := s.DeliverEmail(ctx, e); err != nil || !created || e.Status != ladle.EmailSent || e.SentAt == nil {
			t.Fatalf("deliver: %v %v %+v", created, err, e)
		}
		if done, _ := s.Processed(ctx, "receipt", "evt-1"); !done {
			t.Fatal("no inbox row with the delivery")
		}
		again := mk("evt-1")
		again.Subject = "changed"
		if created, err := s.DeliverEmail(ctx, again); err != nil || created || again.ID != e.ID || again.Subject != "s evt-1" {
			t.Fatalf("second delivery: %v %v %+v", created, err, again)
		}
		// An earlier attempt left a failed record: a replay delivers it.
		failed := mk("evt-2")
		if _, err := s.ReserveEmail(ctx, failed); err != nil {
			t.Fatal(err)
		}
		if err := s.EmailFailed(ctx, failed.ID, "bad address", true, ladle.Now()); err != nil {
			t.Fatal(err)
		}
		replay := mk("evt-2")
		if _, err := s.DeliverEmail(ctx, replay); err != nil || replay.ID != failed.ID || replay.Status != ladle.EmailSent {
			t.Fatalf("replayed delivery: %v %+v", err, replay)
		}
		// A batch commits together.
		batch := []*ladle.Email{mk("evt-3"), mk("evt-4"), mk("evt-1")}
		if err := s.DeliverEmails(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if batch[0].ID == 0 || batch[1].ID == 0 || batch[2].ID != e.ID {
			t.Fatalf("batch %+v", batch)
		}
		if counts, _ := s.EmailCounts(ctx, f.Restaurant.ID); counts[ladle.EmailSent] != 4 {
			t.Fatalf("counts %v", counts)
		}
	})
}
