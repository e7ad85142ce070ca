package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
)

func event(i int) ladle.Event {
	return ladle.Event{
		ID:           fmt.Sprintf("evt-%04d", i),
		Type:         ladle.EventOrderPlaced,
		RestaurantID: 7,
		AggregateID:  fmt.Sprintf("order-%d", i),
		Payload:      json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		CreatedAt:    time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func streamMsgs(t *testing.T, b *broker.Broker) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(context.Background(), b.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestPublishDeduplicatesByEventID(t *testing.T) {
	t.Parallel()
	brokertest.Each(t, func(t *testing.T, kind brokertest.Kind) {
		t.Parallel()
		b := brokertest.Open(t, kind)
		ctx := context.Background()
		evs := []ladle.Event{event(1), event(2), event(3)}
		acked, err := b.PublishEvents(ctx, evs)
		if err != nil || len(acked) != 3 {
			t.Fatalf("publish: acked %v, err %v", acked, err)
		}
		// The relay crashed before marking them published and sends them
		// again: the server drops the copies but still acknowledges them.
		acked, err = b.PublishEvents(ctx, evs[1:])
		if err != nil || len(acked) != 2 {
			t.Fatalf("republish: acked %v, err %v", acked, err)
		}
		if n := streamMsgs(t, b); n != 3 {
			t.Fatalf("stream holds %d messages, want 3", n)
		}

		cons, err := b.Consumer(ctx, jetstream.ConsumerConfig{
			Durable:       "dedup",
			AckPolicy:     jetstream.AckExplicitPolicy,
			FilterSubject: b.Subject(ladle.EventOrderPlaced),
		})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []ladle.Event
		for m := range batch.Messages() {
			ev, err := broker.DecodeEvent(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			if m.Headers().Get(jetstream.MsgIDHeader) != ev.ID || m.Headers().Get(broker.HeaderRestaurant) != "7" {
				t.Errorf("headers %v for event %s", m.Headers(), ev.ID)
			}
			if b.EventType(m.Subject()) != ev.Type {
				t.Errorf("subject %q does not carry type %q", m.Subject(), ev.Type)
			}
			got = append(got, ev)
			_ = m.Ack()
		}
		if len(got) != 3 {
			t.Fatalf("consumed %d events, want 3", len(got))
		}
		for i, ev := range got {
			want := evs[i]
			if ev.ID != want.ID || ev.AggregateID != want.AggregateID || string(ev.Payload) != string(want.Payload) || !ev.CreatedAt.Equal(want.CreatedAt) {
				t.Errorf("event %d = %+v, want %+v", i, ev, want)
			}
		}
	})
}

func TestSetupIsIdempotent(t *testing.T) {
	t.Parallel()
	brokertest.Each(t, func(t *testing.T, kind brokertest.Kind) {
		t.Parallel()
		cfg := brokertest.Config(t, kind, "")
		b := brokertest.OpenConfig(t, cfg)
		ctx := context.Background()
		ccfg := jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4}
		if _, err := b.Consumer(ctx, ccfg); err != nil {
			t.Fatal(err)
		}
		ccfg.MaxAckPending = 8
		c, err := b.Consumer(ctx, ccfg)
		if err != nil {
			t.Fatalf("updating a consumer: %v", err)
		}
		info, err := c.Info(ctx)
		if err != nil || info.Config.MaxAckPending != 8 {
			t.Fatalf("consumer not updated: %+v %v", info, err)
		}
		if kind == brokertest.External {
			// A second process starting with the same config (and one with
			// a changed retention) finds the stream there and carries on.
			cfg2 := cfg
			cfg2.MaxAge = 2 * time.Hour
			b2, err := broker.Open(ctx, cfg2)
			if err != nil {
				t.Fatal(err)
			}
			defer b2.Close()
			if err := b2.Ready(ctx); err != nil {
				t.Fatal(err)
			}
			s, _ := b.JetStream().Stream(ctx, b.StreamName())
			if info, _ := s.Info(ctx); info.Config.MaxAge != 2*time.Hour {
				t.Fatalf("stream max age %v, want updated to 2h", info.Config.MaxAge)
			}
		}
	})
}

func TestEmbeddedKeepsEventsAcrossRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := brokertest.Config(t, brokertest.Embedded, dir)
	ctx := context.Background()
	b, err := broker.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b.ClientURL() != "" {
		t.Errorf("embedded server without --nats-listen exposes %q", b.ClientURL())
	}
	if _, err := b.PublishEvents(ctx, []ladle.Event{event(1), event(2)}); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b = brokertest.OpenConfig(t, cfg)
	if n := streamMsgs(t, b); n != 2 {
		t.Fatalf("after restart the stream holds %d messages, want 2", n)
	}
	// Still deduplicating against what was stored before the restart.
	if _, err := b.PublishEvents(ctx, []ladle.Event{event(2), event(3)}); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, b); n != 3 {
		t.Fatalf("stream holds %d messages, want 3", n)
	}
}

func TestEmbeddedListen(t *testing.T) {
	t.Parallel()
	cfg := brokertest.Config(t, brokertest.Embedded, "")
	cfg.Listen = "127.0.0.1:0"
	cfg.SyncInterval = time.Second
	b := brokertest.OpenConfig(t, cfg)
	url := b.ClientURL()
	if url == "" {
		t.Fatal("no client URL with a listen address")
	}
	// Another process (here: another connection over TCP) publishes
	// through it and sees the same stream.
	other := cfg
	other.URL, other.DataDir, other.Listen = url, "", ""
	b2 := brokertest.OpenConfig(t, other)
	if _, err := b2.PublishEvents(context.Background(), []ladle.Event{event(1)}); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, b); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestExternalDownAtStart(t *testing.T) {
	t.Parallel()
	// Nothing listens on this port: Open must not fail (the API keeps
	// taking orders), but Ready and publishing report the outage.
	cfg := brokertest.Config(t, brokertest.Embedded, "")
	cfg.URL, cfg.DataDir = "nats://127.0.0.1:1", ""
	ctx := context.Background()
	b, err := broker.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open with the server down: %v", err)
	}
	defer b.Close()
	if err := b.Ready(ctx); err == nil {
		t.Fatal("Ready succeeded with the server down")
	}
	if _, err := b.PublishEvents(ctx, []ladle.Event{event(1)}); err == nil {
		t.Fatal("publish succeeded with the server down")
	}
	if b.Connected() {
		t.Fatal("connected to nothing")
	}
}

func TestParseSync(t *testing.T) {
	for in, want := range map[string]time.Duration{"": broker.SyncAlways, "always": broker.SyncAlways, "ALWAYS": 0, "1s": time.Second, "250ms": 250 * time.Millisecond} {
		if got, err := broker.ParseSync(in); err != nil || got != want {
			t.Errorf("ParseSync(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"never", "-1s", "0s"} {
		if _, err := broker.ParseSync(in); err == nil {
			t.Errorf("ParseSync(%q) accepted", in)
		}
	}
}

// TestEmbeddedListenNeedsCredentials: the port --nats-listen opens refuses
// a client without the token (and with a wrong one), and takes one with it.
func TestEmbeddedListenNeedsCredentials(t *testing.T) {
	t.Parallel()
	for _, token := range []string{"", "a-token-given-by-the-operator"} {
		cfg := brokertest.Config(t, brokertest.Embedded, "")
		cfg.Listen = "127.0.0.1:0"
		cfg.SyncInterval = time.Second
		cfg.Token = token
		b := brokertest.OpenConfig(t, cfg)
		withToken, err := url.Parse(b.ClientURL())
		if err != nil || withToken.User == nil {
			t.Fatalf("client URL %q carries no token", b.ClientURL())
		}
		if token != "" && withToken.User.Username() != token {
			t.Fatalf("client URL %q does not carry the given token", b.ClientURL())
		}
		bare := *withToken
		bare.User = nil
		wrong := bare
		wrong.User = url.User("not-the-token")
		for _, u := range []string{bare.String(), wrong.String()} {
			nc, err := nats.Connect(u, nats.Timeout(5*time.Second))
			if err == nil {
				nc.Close()
				t.Fatalf("connected to %s without the token", u)
			}
			if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Errorf("connect without the token: %v, want an authorization error", err)
			}
		}
		// Not even publishing: the connection is refused outright.
		nc, err := nats.Connect(withToken.String(), nats.Timeout(5*time.Second))
		if err != nil {
			t.Fatalf("connect with the token: %v", err)
		}
		nc.Close()
		// A Ladle process given the URL with the token uses the stream.
		other := cfg
		other.URL, other.DataDir, other.Listen, other.Token = withToken.String(), "", "", ""
		b2 := brokertest.OpenConfig(t, other)
		if _, err := b2.PublishEvents(context.Background(), []ladle.Event{event(1)}); err != nil {
			t.Fatal(err)
		}
		// Or the bare URL and the token on its own (--nats-token).
		other.URL, other.Token = bare.String(), withToken.User.Username()
		b3 := brokertest.OpenConfig(t, other)
		if _, err := b3.PublishEvents(context.Background(), []ladle.Event{event(2)}); err != nil {
			t.Fatal(err)
		}
		if n := streamMsgs(t, b); n != 2 {
			t.Fatalf("stream holds %d messages, want 2", n)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                           "nats://127.0.0.1:4222",
		"nats://s3cret@127.0.0.1:4222":                    "nats://redacted@127.0.0.1:4222",
		"nats://user:pass@a:4222,nats://user:pass@b:4222": "nats://redacted@a:4222,nats://redacted@b:4222",
	} {
		if got := broker.RedactURL(in); got != want || strings.Contains(got, "s3cret") || strings.Contains(got, "pass") {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestUnsyncedMarker: a server with a sync interval reports, at its next
// start, the interval a run that did not stop cleanly may have lost, and
// keeps reporting it until a run has settled it and stopped cleanly; a
// server that fsyncs every write leaves nothing to report.
func TestUnsyncedMarker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	marker := filepath.Join(dir, "jetstream.unsynced")
	open := func(sync time.Duration) *broker.Broker {
		t.Helper()
		cfg := brokertest.Config(t, brokertest.Embedded, dir)
		cfg.SyncInterval = sync
		b, err := broker.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open(broker.SyncAlways)
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a server syncing every write wrote a marker (%v)", err)
	}
	b.Close()

	b = open(2 * time.Second)
	if b.Unsynced() != 0 {
		t.Fatalf("first interval run reports %v unsynced", b.Unsynced())
	}
	b.Close()
	b = open(2 * time.Second)
	if b.Unsynced() != 0 {
		t.Fatalf("after a clean stop: %v unsynced, want 0", b.Unsynced())
	}
	// A run that dies: its marker stays (a crash is played by putting the
	// marker back after the stop, as the kill in internal/events does for real).
	data, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := os.WriteFile(marker, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// The next run, even one that syncs every write, reports it, and keeps
	// it through a stop that did not settle it.
	b = open(broker.SyncAlways)
	if b.Unsynced() != 2*time.Second {
		t.Fatalf("after an unclean stop: %v unsynced, want 2s", b.Unsynced())
	}
	b.Close()
	b = open(broker.SyncAlways)
	if b.Unsynced() != 2*time.Second {
		t.Fatalf("after a stop that did not settle it: %v unsynced, want 2s still", b.Unsynced())
	}
	b.Settle()
	b.Close()
	b = open(broker.SyncAlways)
	defer b.Close()
	if b.Unsynced() != 0 {
		t.Fatalf("after a settled clean stop: %v unsynced, want 0", b.Unsynced())
	}
}
