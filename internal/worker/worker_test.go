package worker_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/worker"
)

func TestReceiptAndReadyEmails(t *testing.T) {
	t.Parallel()
	brokertest.Each(t, func(t *testing.T, kind brokertest.Kind) {
		t.Parallel()
		h := newHarness(t, hopts{kind: kind})
		ctx := context.Background()
		var orders []*ladle.Order
		for i := range 3 {
			orders = append(orders, h.place(i))
		}
		eventually(t, 30*time.Second, "three receipts", func() bool { return h.sentCount("receipt") == 3 })

		byOrder := map[string]ladle.Email{}
		for _, e := range h.emails() {
			byOrder[e.OrderID] = e
		}
		for i, o := range orders {
			e, ok := byOrder[o.ID]
			if !ok {
				t.Fatalf("no receipt for order %d", o.Number)
			}
			if e.To != `"Guest `+string(rune('0'+i))+`" <guest`+string(rune('0'+i))+`@example.com>` {
				t.Errorf("receipt to %q", e.To)
			}
			if !strings.HasPrefix(e.Subject, "Your order #") || !strings.Contains(e.Text, "Total      $33.53") {
				t.Errorf("receipt %q:\n%s", e.Subject, e.Text)
			}
			if e.Transport != mail.MailboxName || e.Attempts != 1 || e.SentAt == nil || e.Consumer != worker.ConsumerReceipt {
				t.Errorf("receipt record %+v", e)
			}
			if !strings.HasSuffix(e.MessageID, ".receipt@ladle.test") || !strings.HasPrefix(e.MessageID, e.EventID) {
				t.Errorf("message id %q for event %s", e.MessageID, e.EventID)
			}
			// The status link works: its token opens the guest's order.
			i := strings.Index(e.Text, "https://ladle.test/orders/")
			if i < 0 {
				t.Fatalf("no status link in\n%s", e.Text)
			}
			u, err := url.Parse(strings.Fields(e.Text[i:])[0])
			if err != nil {
				t.Fatal(err)
			}
			if got, err := h.svc.GuestOrder(ctx, o.ID, u.Query().Get("token")); err != nil || got.ID != o.ID || !strings.HasSuffix(u.Path, o.ID) {
				t.Errorf("status link %s does not open order %s: %v", u, o.ID, err)
			}
			if done, _ := h.store.Processed(ctx, worker.ConsumerReceipt, e.EventID); !done {
				t.Errorf("no inbox row for %s", e.EventID)
			}
		}

		// Moving one order along sends one "ready" email, when it is ready.
		for _, st := range []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady} {
			if _, err := h.store.SetOrderStatus(ctx, h.f.Restaurant.ID, orders[1].ID, st, "", 0, ladle.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.store.SetOrderStatus(ctx, h.f.Restaurant.ID, orders[2].ID, ladle.StatusAccepted, "", 0, ladle.Now()); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the ready email", func() bool { return h.sentCount("ready") == 1 })
		// A consumer counts an event as handled after its effect committed
		// (the email marked sent) and just before the ack, so wait for the
		// counts to reach every event rather than read them a fixed moment
		// after the email: once the ready consumer has handled all four
		// status changes, a second ready email would be in the table too.
		eventually(t, 30*time.Second, "every event handled", func() bool {
			st := h.w.Stats()
			return st[worker.ConsumerReceipt].Handled >= 3 && st[worker.ConsumerReady].Handled >= 4
		})
		var ready []ladle.Email
		for _, e := range h.emails() {
			if e.Kind == "ready" {
				ready = append(ready, e)
			}
		}
		if len(ready) != 1 || ready[0].OrderID != orders[1].ID || !strings.Contains(ready[0].Subject, "is ready for pickup") {
			t.Fatalf("ready emails %+v", ready)
		}
		if st := h.w.Stats(); st[worker.ConsumerReceipt].Handled != 3 || st[worker.ConsumerReady].Handled != 4 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestRetriesDeadLettersAndReplay(t *testing.T) {
	t.Parallel()
	brokertest.Each(t, func(t *testing.T, kind brokertest.Kind) {
		t.Parallel()
		h := newHarness(t, hopts{kind: kind, smtp: true, maxAttempts: 3})
		ctx := context.Background()

		// Two temporary refusals, then it goes through.
		h.smtp.FailNext(smtptest.ErrTemporary, smtptest.ErrTemporary)
		o1 := h.place(1)
		msgs := h.smtp.Wait(1, 30*time.Second)
		if len(msgs) != 1 || msgs[0].To != "guest1@example.com" {
			t.Fatalf("received %+v", msgs)
		}
		eventually(t, 30*time.Second, "the email marked sent", func() bool { return h.sentCount("receipt") == 1 })
		if e := h.emails()[0]; e.Attempts != 3 || e.OrderID != o1.ID || e.Transport != "smtp" {
			t.Fatalf("email after two refusals: %+v", e)
		}

		// A permanent refusal: a dead letter at once, the email failed with
		// the server's reason, nothing delivered.
		h.smtp.FailNext(smtptest.ErrPermanent)
		o2 := h.place(2)
		eventually(t, 30*time.Second, "a dead letter", func() bool {
			n, _ := h.store.CountDeadLetters(ctx, h.f.Restaurant.ID)
			return n == 1
		})
		dls, _ := h.store.DeadLetters(ctx, h.f.Restaurant.ID, false, 0)
		if dls[0].Consumer != worker.ConsumerReceipt || dls[0].Event.AggregateID != o2.ID || dls[0].Deliveries != 1 || !strings.Contains(dls[0].Error, "550") {
			t.Fatalf("dead letter %+v", dls[0])
		}
		eventually(t, 30*time.Second, "the email marked failed", func() bool {
			for _, e := range h.emails() {
				if e.OrderID == o2.ID {
					return e.Status == ladle.EmailFailed && strings.Contains(e.Error, "550")
				}
			}
			return false
		})

		// Temporary refusals past MaxAttempts: a dead letter too.
		h.smtp.FailNext(smtptest.ErrTemporary, smtptest.ErrTemporary, smtptest.ErrTemporary)
		o3 := h.place(3)
		eventually(t, 30*time.Second, "a second dead letter", func() bool {
			n, _ := h.store.CountDeadLetters(ctx, h.f.Restaurant.ID)
			return n == 2
		})
		dls, _ = h.store.DeadLetters(ctx, h.f.Restaurant.ID, false, 0)
		if dls[0].Event.AggregateID != o3.ID || dls[0].Deliveries != 3 || !strings.Contains(dls[0].Error, "451") {
			t.Fatalf("dead letter after retries %+v", dls[0])
		}
		if got := h.smtp.Count(); got != 1 {
			t.Fatalf("server received %d messages, want 1", got)
		}

		// Staff replay both: each goes out once, to that consumer only.
		for _, dl := range dls {
			if _, err := h.store.ReplayDeadLetter(ctx, h.f.Restaurant.ID, dl.ID, ladle.Now()); err != nil {
				t.Fatal(err)
			}
		}
		msgs = h.smtp.Wait(3, 30*time.Second)
		if len(msgs) != 3 {
			t.Fatalf("after replay the server has %d messages, want 3", len(msgs))
		}
		eventually(t, 30*time.Second, "all three sent", func() bool { return h.sentCount("receipt") == 3 })
		if n, _ := h.store.CountDeadLetters(ctx, h.f.Restaurant.ID); n != 0 {
			t.Fatalf("%d open dead letters after replay", n)
		}
		seen := map[string]int{}
		for _, m := range msgs {
			seen[m.To]++
		}
		for _, to := range []string{"guest1@example.com", "guest2@example.com", "guest3@example.com"} {
			if seen[to] != 1 {
				t.Errorf("%s got %d receipts", to, seen[to])
			}
		}
		// The ready consumer saw no replay of the receipt's events.
		if st := h.w.Stats()[worker.ConsumerReady]; st.Handled != 0 || st.Failed != 0 {
			t.Errorf("ready consumer stats %+v", st)
		}
	})
}

// gate is a transport that holds receipts until released, to show that a
// stuck receipt backlog does not delay "ready" emails.
type gate struct {
	mail.DevMailbox
	release chan struct{}
	mu      sync.Mutex
	held    int
}

func (g *gate) Send(ctx context.Context, m *mail.Message) error {
	if strings.HasPrefix(m.Subject, "Your order") {
		g.mu.Lock()
		g.held++
		g.mu.Unlock()
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.DevMailbox.Send(ctx, m)
}

func TestConsumersDoNotBlockEachOther(t *testing.T) {
	t.Parallel()
	h := newHarness(t, hopts{kind: brokertest.Embedded, noStart: true, concurrency: 2, sendTimeout: 30 * time.Second})
	g := &gate{release: make(chan struct{})}
	h.transport = g
	h.startRelay()
	h.startWorker()
	ctx := context.Background()
	var orders []*ladle.Order
	for i := range 6 {
		orders = append(orders, h.place(i))
	}
	eventually(t, 30*time.Second, "receipts to be stuck", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.held == 2 // the receipt consumer's whole pool is busy
	})
	for _, st := range []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady} {
		if _, err := h.store.SetOrderStatus(ctx, h.f.Restaurant.ID, orders[5].ID, st, "", 0, ladle.Now()); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, "the ready email past the receipt backlog", func() bool { return h.sentCount("ready") == 1 })
	if n := h.sentCount("receipt"); n != 0 {
		t.Fatalf("%d receipts sent while held", n)
	}
	close(g.release)
	eventually(t, 30*time.Second, "the receipts", func() bool { return h.sentCount("receipt") == 6 })
}
