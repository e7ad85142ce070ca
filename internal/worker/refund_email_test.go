package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/worker"
)

// TestRefundEmail: each refund that succeeded mails the guest once, into
// the dev mailbox, with the amount, the reason and what was refunded so
// far; a refund that failed mails nobody. On SQLite and PostgreSQL.
func TestRefundEmail(t *testing.T) {
	t.Parallel()
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, hopts{kind: brokertest.Embedded, postgres: pg})
			ctx := context.Background()
			s, rid := h.store, h.f.Restaurant.ID
			req := h.f.Request()
			req.Customer.Email, req.Customer.Name = "refundee@example.com", "Refundee"
			req.Payment = ladle.PaymentInput{Method: "card", Token: "tok_visa"}
			o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(), RestaurantID: rid, Request: req, Now: ladle.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SettlePayment(ctx, ladle.Settlement{OrderID: o.ID, Result: ladle.PaymentResult{Captured: true, ChargeID: "ch_mail"}, Now: ladle.Now()}); err != nil {
				t.Fatal(err)
			}
			refund := func(key string, amount ladle.Money, ok bool) {
				t.Helper()
				r, _, err := s.CreateRefund(ctx, ladle.NewRefund{ID: uuid.Must(uuid.NewV7()).String(), RestaurantID: rid, OrderID: o.ID,
					RequestKey: key, Amount: amount, Source: ladle.RefundSourceStaff, Reason: "Cold fries " + key, Now: ladle.Now()})
				if err != nil {
					t.Fatal(err)
				}
				st := ladle.RefundSettlement{RestaurantID: rid, RefundID: r.ID, Attempt: 1, Now: ladle.Now()}
				if ok {
					st.Succeeded, st.ProviderRefundID = true, "re_"+key
				} else {
					st.FailureReason = "refused"
				}
				if _, err := s.SettleRefund(ctx, st); err != nil {
					t.Fatal(err)
				}
			}
			refund("a", 250, true)
			refund("b", 100, false)
			refund("c", 300, true)
			eventually(t, 15*time.Second, "two refund emails", func() bool { return h.sentCount(string(mail.KindRefund)) == 2 })
			time.Sleep(500 * time.Millisecond) // a third (duplicate or for the failed refund) would show by now
			var got []ladle.Email
			for _, e := range h.emails() {
				if e.Kind == string(mail.KindRefund) {
					got = append(got, e)
				}
			}
			if len(got) != 2 {
				t.Fatalf("refund emails = %d, want 2", len(got))
			}
			texts := got[0].Text + got[1].Text
			for _, want := range []string{"refunded $2.50 to your card", "Reason: Cold fries a", "refunded $3.00 to your card", "Reason: Cold fries c", "Refunded so far: $5.50"} {
				if !strings.Contains(texts, want) {
					t.Fatalf("refund emails lack %q:\n%s", want, texts)
				}
			}
			if strings.Contains(texts, "Cold fries b") {
				t.Fatal("a failed refund was mailed")
			}
			for _, e := range got {
				if e.To != `"Refundee" <refundee@example.com>` || e.OrderID != o.ID || e.Consumer != worker.ConsumerRefund ||
					e.Transport != mail.MailboxName || !strings.HasPrefix(e.Subject, "Refund of $") {
					t.Fatalf("refund email = %+v", e)
				}
			}
		})
	}
}
