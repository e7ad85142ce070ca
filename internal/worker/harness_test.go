package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/autoscale"
	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/outbox"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
	"github.com/ladle-dev/ladle/internal/worker"
)

// harness is the whole event path on real parts: a SQLite (or PostgreSQL)
// store, a broker (embedded or external), the relay, the email consumers
// and a transport (the dev mailbox, or a go-smtp server on loopback).
type harness struct {
	t         testing.TB
	store     *sqlstore.Store
	f         *storetest.Fixture
	b         *broker.Broker
	smtp      *smtptest.Server
	transport mail.Transport
	svc       *ordering.Service
	relay     *outbox.Relay
	w         *worker.Worker
	opts      hopts
}

type hopts struct {
	kind        brokertest.Kind
	postgres    bool
	smtp        bool
	ackWait     time.Duration
	backoff     []time.Duration
	maxAttempts int
	concurrency int
	scale       *autoscale.Config // autoscale the pools instead of concurrency
	sendTimeout time.Duration
	workerFault func(point string, ev ladle.Event) error
	relayFault  func(point string) error
	noStart     bool
	wrap        func(mail.Transport) mail.Transport // wraps the transport
	fast        bool                                // no fsync in SQLite or the embedded broker
}

var quiet = slog.New(slog.DiscardHandler)

func newHarness(t testing.TB, o hopts) *harness {
	t.Helper()
	if o.ackWait == 0 {
		o.ackWait = 2 * time.Second
	}
	if o.backoff == nil {
		o.backoff = []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}
	}
	if o.sendTimeout == 0 {
		o.sendTimeout = 2 * time.Second
	}
	h := &harness{t: t, opts: o}
	ctx := context.Background()
	url := "sqlite:" + filepath.Join(t.TempDir(), "ladle.db")
	if o.postgres {
		url = testenv.PostgresSchema(t)
	}
	sopts := []sqlstore.Option{sqlstore.WithLogger(quiet)}
	if o.fast {
		// In-process crash tests need no power-loss durability; skipping
		// fsync keeps them quick on slow disks.
		sopts = append(sopts, sqlstore.WithSQLiteSynchronousNormal())
	}
	s, err := sqlstore.Open(ctx, url, sopts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h.store = s
	h.f = storetest.Seed(t, s)
	bcfg := brokertest.Config(t, o.kind, "")
	if o.fast {
		bcfg.SyncInterval = time.Minute
	}
	h.b = brokertest.OpenConfig(t, bcfg)
	h.transport = mail.DevMailbox{}
	if o.smtp {
		h.smtp = smtptest.Start(t)
		if h.transport, err = mail.Open(h.smtp.URL() + "&pool=4"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.transport.Close() })
	}
	if o.wrap != nil {
		h.transport = o.wrap(h.transport)
	}
	h.svc = ordering.New(s, nil, []byte("test secret"))
	if !o.noStart {
		h.startRelay()
		h.startWorker()
	}
	return h
}

func (h *harness) startRelay() {
	h.t.Helper()
	h.relay = outbox.New(outbox.Config{Store: h.store, Publisher: h.b, PollInterval: 200 * time.Millisecond,
		Logger: quiet, Fault: h.opts.relayFault})
	h.store.OnEventsCommitted(h.relay.Wake)
	if err := h.relay.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	r := h.relay
	h.t.Cleanup(r.Stop)
}

func (h *harness) startWorker() {
	h.t.Helper()
	tpl, err := mail.NewTemplates("")
	if err != nil {
		h.t.Fatal(err)
	}
	cons, err := worker.EmailConsumers(worker.EmailConfig{
		Store: h.store, Transport: h.transport, Templates: tpl, From: "Ladle <orders@ladle.test>",
		StatusURL: worker.StatusLinker("https://ladle.test/", func(id string) string {
			return ordering.StatusURL(id, h.svc.AccessToken(id))
		}),
		SendTimeout: h.opts.sendTimeout, Concurrency: h.opts.concurrency, Scale: h.opts.scale, AckWait: h.opts.ackWait,
		MaxAttempts: h.opts.maxAttempts, Backoff: h.opts.backoff, Fault: h.opts.workerFault,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.w = worker.New(worker.Config{Broker: h.b, DeadLetters: h.store, Logger: quiet, Fault: h.opts.workerFault,
		ShutdownGrace: time.Second}, cons...)
	if err := h.w.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	w := h.w
	h.t.Cleanup(w.Stop)
}

// place places a pay-at-pickup order for guest n.
func (h *harness) place(n int) *ladle.Order {
	h.t.Helper()
	req := h.f.Request()
	req.Customer.Email = fmt.Sprintf("guest%d@example.com", n)
	req.Customer.Name = fmt.Sprintf("Guest %d", n)
	req.ConfirmDuplicate = true
	o, err := h.store.CreateOrder(context.Background(), ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(),
		RestaurantID: h.f.Restaurant.ID, Request: req, Now: ladle.Now()})
	if err != nil {
		h.t.Fatal(err)
	}
	return o
}

// emails returns all of the fixture restaurant's emails.
func (h *harness) emails() []ladle.Email {
	h.t.Helper()
	var all []ladle.Email
	before := int64(0)
	for {
		page, err := h.store.Emails(context.Background(), h.f.Restaurant.ID, before, 500)
		if err != nil {
			h.t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 500 {
			return all
		}
		before = page[len(page)-1].ID
	}
}

// sentCount counts the restaurant's sent emails of a kind.
func (h *harness) sentCount(kind string) int {
	n := 0
	for _, e := range h.emails() {
		if e.Kind == kind && e.Status == ladle.EmailSent {
			n++
		}
	}
	return n
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
