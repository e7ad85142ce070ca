package ordering

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/payment/paymenttest"
	"github.com/ladle-dev/ladle/internal/payment/stripefake"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// twoProcesses opens the database twice, as an api process and a worker
// process sharing it do, and runs fn on SQLite and on PostgreSQL.
func twoProcesses(t *testing.T, fn func(t *testing.T, api, worker *sqlstore.Store, clk *clock)) {
	open := func(t *testing.T, url string, clk *clock) *sqlstore.Store {
		st, err := sqlstore.Open(context.Background(), url, sqlstore.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if err := st.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return st
	}
	run := func(t *testing.T, url string) {
		clk := &clock{t: time.Now().UTC().Truncate(time.Microsecond)}
		fn(t, open(t, url, clk), open(t, url, clk), clk)
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		run(t, "sqlite:"+filepath.Join(t.TempDir(), "ladle.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		run(t, testenv.PostgresSchema(t))
	})
}

func countEvents(t *testing.T, st *sqlstore.Store, typ, orderID string) int {
	t.Helper()
	var n int
	if err := st.DB().QueryRowContext(context.Background(), `SELECT count(*) FROM outbox WHERE type = $1 AND aggregate_id = $2`,
		typ, orderID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// recoverTogether runs both processes' recovery rounds at once and
// returns how many payments they settled between them.
func recoverTogether(t *testing.T, api, worker *Service) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for _, svc := range []*Service{api, worker} {
		wg.Go(func() {
			n, err := svc.RecoverPayments(context.Background(), svc.StaleLock())
			if err != nil {
				t.Errorf("recover: %v", err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	return total
}

// TestUnknownChargeRecoveredOnceAcrossProcesses: the api process charges
// and loses the answer, then "restarts" (a new Service on a new store
// handle); it and a worker process both recover the pending payment at
// the same moment. They ask the provider, not their memory: the order is
// placed once, with one receipt event and one charge — with Stripe (a
// PaymentIntent whose response was lost) and with the test provider (its
// charges in the database).
func TestUnknownChargeRecoveredOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	t.Run("stripe", func(t *testing.T) {
		twoProcesses(t, func(t *testing.T, apiStore, workerStore *sqlstore.Store, clk *clock) {
			ctx := context.Background()
			fix := storetest.Seed(t, apiStore)
			fake := stripefake.New(t)
			newProvider := func() ladle.PaymentProvider {
				p, err := payment.NewStripe(payment.StripeConfig{SecretKey: "sk_test_123", APIURL: fake.URL, NetworkRetries: -1})
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			secret := []byte("multi-process-secret-0123456789")
			api := New(apiStore, newProvider(), secret, WithClock(clk.Now), WithConnect(0), WithHolder("api"))
			req := fix.Request()
			req.Payment = ladle.PaymentInput{Method: "card", Token: stripefake.CardVisa}
			fake.LoseResponses(1)
			_, err := api.Place(ctx, fix.Restaurant, "lost-1", req)
			if ladle.ErrorCode(err) != ladle.CodePaymentPending {
				t.Fatalf("lost response: %v, want payment_pending", err)
			}
			orderID := err.(*ladle.Error).Extra["order_id"].(string)

			restarted := New(apiStore, newProvider(), secret, WithClock(clk.Now), WithConnect(0), WithHolder("api"))
			worker := New(workerStore, newProvider(), secret, WithClock(clk.Now), WithConnect(0), WithHolder("worker"))
			clk.Add(worker.StaleLock() + time.Second)
			// Both may report the payment settled (the later one finds it so);
			// what counts is the effect, once, below.
			if n := recoverTogether(t, restarted, worker); n < 1 {
				t.Fatalf("settled %d between the two processes", n)
			}
			if n := recoverTogether(t, restarted, worker); n != 0 {
				t.Fatalf("a second round settled %d", n)
			}
			o, err := workerStore.Order(ctx, orderID)
			if err != nil || o.Status != ladle.StatusPlaced {
				t.Fatalf("order %+v, %v", o, err)
			}
			if n := countEvents(t, apiStore, ladle.EventOrderPlaced, orderID); n != 1 {
				t.Fatalf("order.placed %d", n)
			}
			if n := len(fake.Intents()); n != 1 {
				t.Fatalf("%d PaymentIntents (%s)", n, fake)
			}
			// The guest's retry gets the order, from either process.
			if res, err := worker.Place(ctx, fix.Restaurant, "lost-1", req); err != nil || res.Status != 201 || res.Order.ID != orderID {
				t.Fatalf("retry: %+v, %v", res, err)
			}
		})
	})
	t.Run("test provider", func(t *testing.T) {
		twoProcesses(t, func(t *testing.T, apiStore, workerStore *sqlstore.Store, clk *clock) {
			ctx := context.Background()
			fix := storetest.Seed(t, apiStore)
			secret := []byte("multi-process-secret-0123456789")
			apiPay := payment.NewTestProvider(apiStore)
			api := New(apiStore, apiPay, secret, WithClock(clk.Now))
			req := fix.Request()
			req.Payment = ladle.PaymentInput{Method: "card", Token: payment.TokenTimeout}
			_, err := api.Place(ctx, fix.Restaurant, "lost-2", req)
			if ladle.ErrorCode(err) != ladle.CodePaymentPending {
				t.Fatalf("lost response: %v", err)
			}
			orderID := err.(*ladle.Error).Extra["order_id"].(string)
			restarted := New(apiStore, payment.NewTestProvider(apiStore), secret, WithClock(clk.Now))
			worker := New(workerStore, payment.NewTestProvider(workerStore), secret, WithClock(clk.Now))
			clk.Add(worker.StaleLock() + time.Second)
			if n := recoverTogether(t, restarted, worker); n < 1 {
				t.Fatalf("settled %d", n)
			}
			if n := countEvents(t, workerStore, ladle.EventOrderPlaced, orderID); n != 1 {
				t.Fatalf("order.placed %d", n)
			}
			// One real Charge call: recovery looked the charge up.
			if c, n := paymenttest.Charges(t, apiPay), paymenttest.Calls(t, apiPay); c != 1 || n != 1 {
				t.Fatalf("charges %d, Charge calls %d; want 1 and 1", c, n)
			}
		})
	})
}
