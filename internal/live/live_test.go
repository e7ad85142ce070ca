package live_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/live"
	"github.com/ladle-dev/ladle/internal/outbox"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
)

var quiet = slog.New(slog.DiscardHandler)

func TestHubRoutesAndDropsSlowSubscribers(t *testing.T) {
	t.Parallel()
	h := live.NewHub()
	board := h.Subscribe(1, "")
	guest := h.Subscribe(1, "o2")
	other := h.Subscribe(2, "")
	h.Publish(live.Update{RestaurantID: 1, OrderID: "o1", Status: ladle.StatusPlaced})
	h.Publish(live.Update{RestaurantID: 1, OrderID: "o2", Status: ladle.StatusPlaced})
	h.Publish(live.Update{RestaurantID: 3, OrderID: "o9"})
	if got := drain(board); len(got) != 2 {
		t.Errorf("board got %d updates, want 2", len(got))
	}
	if got := drain(guest); len(got) != 1 || got[0].OrderID != "o2" {
		t.Errorf("guest page got %+v", got)
	}
	if got := drain(other); len(got) != 0 {
		t.Errorf("another restaurant's board got %+v", got)
	}
	// A board that stopped reading is dropped rather than stall the others.
	for i := range 100 {
		h.Publish(live.Update{RestaurantID: 1, OrderID: "x", Number: int64(i)})
	}
	n := 0
	for range board.C() {
		n++
	}
	if n != 64 {
		t.Errorf("slow subscriber got %d before being dropped, want its buffer of 64", n)
	}
	if h.Subscribers() != 2 { // guest and other remain (guest only saw o2)
		t.Errorf("%d subscribers left", h.Subscribers())
	}
	h.Unsubscribe(board) // already dropped: harmless
	h.Unsubscribe(guest)
	h.Unsubscribe(guest)
}

func drain(s *live.Sub) []live.Update {
	var out []live.Update
	for {
		select {
		case u := <-s.C():
			out = append(out, u)
		default:
			return out
		}
	}
}

func TestServeSSE(t *testing.T) {
	t.Parallel()
	h := live.NewHub()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub := h.Subscribe(1, "o1")
		live.ServeSSE(w, r, h, sub, func(u live.Update) any { return u.Guest() })
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		if !lines.Scan() {
			t.Fatal("stream ended")
		}
		return lines.Text()
	}
	for _, want := range []string{"retry: 2000", "event: hello", "data: {}", ""} {
		if got := next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	o := &ladle.Order{ID: "o1", Number: 7, Status: ladle.StatusReady, Customer: ladle.CustomerInput{Email: "secret@example.com"}}
	h.Publish(live.Update{EventID: "e1", RestaurantID: 1, OrderID: "o1", Number: 7, Status: ladle.StatusReady, Order: o})
	if got := next(); got != "id: e1" {
		t.Fatalf("got %q", got)
	}
	if got := next(); got != "event: order" {
		t.Fatalf("got %q", got)
	}
	data := strings.TrimPrefix(next(), "data: ")
	if strings.Contains(data, "secret@example.com") {
		t.Fatalf("guest stream leaks contact details: %s", data)
	}
	var g live.GuestView
	if err := json.Unmarshal([]byte(data), &g); err != nil || g.Status != ladle.StatusReady || g.Number != 7 {
		t.Fatalf("data %s: %v", data, err)
	}
	cancel()
	// The server notices the client left on its next write or when the
	// request's context ends: give a loaded machine (the race detector)
	// time for that.
	deadline := time.Now().Add(30 * time.Second)
	for h.Subscribers() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if h.Subscribers() != 0 {
		t.Fatal("subscription not closed after the client left")
	}
}

// TestFeedAcrossProcesses runs two "processes" (each its own broker
// connection, feed and hub) on one stream: an order committed anywhere
// reaches both boards, and fast.
func TestFeedAcrossProcesses(t *testing.T) {
	t.Parallel()
	brokertest.Each(t, func(t *testing.T, kind brokertest.Kind) {
		t.Parallel()
		ctx := context.Background()
		s, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "l.db"), sqlstore.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		f := storetest.Seed(t, s)

		cfg := brokertest.Config(t, kind, "")
		if kind == brokertest.Embedded {
			cfg.Listen = "127.0.0.1:0"
		}
		b1 := brokertest.OpenConfig(t, cfg)
		cfg2 := cfg
		cfg2.URL, cfg2.DataDir, cfg2.Listen = b1.ClientURL(), "", ""
		b2 := brokertest.OpenConfig(t, cfg2)

		relay := outbox.New(outbox.Config{Store: s, Publisher: b1, Logger: quiet})
		s.OnEventsCommitted(relay.Wake)
		if err := relay.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer relay.Stop()
		var boards []*live.Sub
		for _, b := range []*broker.Broker{b1, b2} {
			hub := live.NewHub()
			feed := live.NewFeed(b, hub, quiet)
			if err := feed.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer feed.Stop()
			boards = append(boards, hub.Subscribe(f.Restaurant.ID, ""))
		}
		// Each feed makes its consumer (new events only) in the background:
		// wait until both exist, or the order could be published before one
		// of them (a loaded machine can take more than a moment).
		waitConsumers(t, b1, "live_", 2)

		req := f.Request()
		start := time.Now()
		o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(), RestaurantID: f.Restaurant.ID,
			Request: req, Now: ladle.Now()})
		if err != nil {
			t.Fatal(err)
		}
		// recv's bound is for delivery (no update lost); the speed that is
		// promised, under a second, is checked on its own.
		for i, b := range boards {
			u := recv(t, b, 10*time.Second)
			if u.Type != ladle.EventOrderPlaced || u.OrderID != o.ID || u.Number != o.Number || u.Order == nil || u.Order.Total != o.Total {
				t.Fatalf("board %d got %+v", i, u)
			}
			if i == 0 {
				t.Logf("commit to board: %v", time.Since(start))
				if d := time.Since(start); d > time.Second {
					t.Errorf("the new order took %v to reach the board", d)
				}
			}
		}
		if _, err := s.SetOrderStatus(ctx, f.Restaurant.ID, o.ID, ladle.StatusAccepted, "", 0, ladle.Now()); err != nil {
			t.Fatal(err)
		}
		for _, b := range boards {
			u := recv(t, b, 10*time.Second)
			if u.Type != ladle.EventOrderStatusChanged || u.Status != ladle.StatusAccepted || u.From != ladle.StatusPlaced || !u.At.After(o.CreatedAt) {
				t.Fatalf("status update %+v", u)
			}
		}
	})
}

// waitConsumers waits until b's stream has n consumers named prefix….
func waitConsumers(t *testing.T, b *broker.Broker, prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		st, err := b.JetStream().Stream(ctx, b.StreamName())
		if err == nil {
			names := st.ConsumerNames(ctx)
			k := 0
			for name := range names.Name() {
				if strings.HasPrefix(name, prefix) {
					k++
				}
			}
			if k >= n && names.Err() == nil {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("fewer than %d consumers %s… on the stream after a minute (%v)", n, prefix, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func recv(t *testing.T, s *live.Sub, timeout time.Duration) live.Update {
	t.Helper()
	select {
	case u := <-s.C():
		return u
	case <-time.After(timeout):
		t.Fatal("no update")
	}
	return live.Update{}
}

func TestHubCloseEndsStreams(t *testing.T) {
	t.Parallel()
	h := live.NewHub()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		live.ServeSSE(w, r, h, h.Subscribe(1, ""), func(u live.Update) any { return u })
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, resp.Body) // returns when the server ends the stream
		close(done)
	}()
	for h.Subscribers() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	h.Close() // what http.Server.Shutdown triggers through RegisterOnShutdown
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a bound for a loaded machine; Close ends the stream at once
		t.Fatal("the stream outlived Hub.Close")
	}
	if s := h.Subscribe(1, ""); s == nil {
		t.Fatal("nil subscription")
	} else if _, open := <-s.C(); open {
		t.Fatal("a subscription after Close is open")
	}
}
