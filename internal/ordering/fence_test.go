package ordering

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/payment/paymenttest"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type bundle struct {
	store *sqlstore.Store
	fix   *storetest.Fixture
	pay   *payment.TestProvider
	clock *clock
}

// backends runs fn on SQLite and on PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, b *bundle)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, setup(t, "sqlite:"+t.TempDir()+"/ladle.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, setup(t, testenv.PostgresSchema(t)))
	})
}

func setup(t *testing.T, url string) *bundle {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Now().UTC().Truncate(time.Microsecond)}
	st, err := sqlstore.Open(ctx, url, sqlstore.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return &bundle{store: st, fix: storetest.Seed(t, st), pay: payment.NewTestProvider(st), clock: clk}
}

func (b *bundle) service(opts ...Option) *Service {
	return New(b.store, b.pay, []byte("fence-test-secret-0123456789"), append([]Option{WithClock(b.clock.Now)}, opts...)...)
}

func (b *bundle) cardRequest() *ladle.OrderRequest {
	r := b.fix.Request()
	r.Payment = ladle.PaymentInput{Method: "card", Token: payment.TokenVisa}
	// As in the reproduction of issue 7: the duplicate window does not
	// stand in for the fence.
	r.ConfirmDuplicate = true
	return r
}

// orders returns every order of the fixture restaurant, whatever its status.
func (b *bundle) orders(t *testing.T) []ladle.Order {
	t.Helper()
	os, err := b.store.Orders(context.Background(), b.fix.Restaurant.ID, ladle.OrderFilter{Statuses: []ladle.OrderStatus{
		ladle.StatusPendingPayment, ladle.StatusPaymentFailed, ladle.StatusPlaced}})
	if err != nil {
		t.Fatal(err)
	}
	return os
}

// stall returns a hook that signals when it is reached and then waits for
// release.
func stall() (hook func(), reached, release chan struct{}) {
	reached, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	return func() {
		once.Do(func() { close(reached) })
		<-release
	}, reached, release
}

func wantFenced(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ladle.ErrFenced) {
		t.Fatalf("first holder's outcome = %v, want KeyFenced", err)
	}
}

// TestStalledInsidePlacement: the first request stalls inside its first
// transaction (claim + create), here on a row lock that another
// transaction holds on the guest's customer row, past the stale-lock time.
// A retry cannot take the key over: the key row is the first request's,
// uncommitted, so the retry waits and then answers 503 within its own
// deadline. When the lock goes, the first request places the one order.
// (PostgreSQL: on SQLite the placement's transaction holds the database's
// only write lock, so nothing else can even try.)
func TestStalledInsidePlacement(t *testing.T) {
	b := setup(t, testenv.PostgresSchema(t))
	ctx := context.Background()
	req := b.cardRequest()
	// The guest ordered before, so their customer row exists to be locked.
	pickup := b.fix.Request()
	if _, err := b.service().Place(ctx, b.fix.Restaurant, "earlier", pickup); err != nil {
		t.Fatal(err)
	}
	lock, err := b.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	var id int64
	if err := lock.QueryRowContext(ctx, `SELECT id FROM customers WHERE email = $1 FOR UPDATE`,
		req.Customer.Email).Scan(&id); err != nil {
		t.Fatal(err)
	}

	first := b.service()
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := first.Place(ctx, b.fix.Restaurant, "key-1", req)
		done <- outcome{res, err}
	}()
	// Wait until the first request is blocked on the lock, holding its key.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		if err := b.store.DB().QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO customers%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first request never reached the locked row")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.clock.Add(first.StaleLock() + time.Second)
	retry := b.service(WithOrderTimeout(300 * time.Millisecond))
	start := time.Now()
	_, err = retry.Place(ctx, b.fix.Restaurant, "key-1", b.cardRequest())
	if ladle.ErrorKind(err) != ladle.KindUnavailable {
		t.Fatalf("retry while the first is stalled = %v, want 503 unavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the retry took %v with a 300ms order timeout", d)
	}
	if err := lock.Commit(); err != nil {
		t.Fatal(err)
	}
	out := <-done
	if out.err != nil || out.res.Status != http.StatusCreated {
		t.Fatalf("first = %+v, %v", out.res, out.err)
	}
	var cards int
	for _, o := range b.orders(t) {
		if o.PaymentMethod == "card" {
			cards++
		}
	}
	if cards != 1 || paymenttest.Charges(t, b.pay) != 1 {
		t.Fatalf("card orders %d, charges %d; want 1 and 1", cards, paymenttest.Charges(t, b.pay))
	}
}

// TestStalledHolderBeforeCharge: the first request created the order and
// stalls before charging, past the stale-lock time; the retry resumes the
// same order and charges it. The first then does not call the provider
// again, and cannot settle or store a response.
func TestStalledHolderBeforeCharge(t *testing.T) {
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		first, second := b.service(), b.service()
		hook, reached, release := stall()
		first.beforeCharge = func(string) { hook() }
		errc := make(chan error, 1)
		go func() {
			_, err := first.Place(ctx, b.fix.Restaurant, "key-1", b.cardRequest())
			errc <- err
		}()
		<-reached
		b.clock.Add(first.StaleLock() + time.Second)
		res, err := second.Place(ctx, b.fix.Restaurant, "key-1", b.cardRequest())
		if err != nil || res.Status != http.StatusCreated {
			t.Fatalf("retry = %+v, %v", res, err)
		}
		close(release)
		wantFenced(t, <-errc)
		if os := b.orders(t); len(os) != 1 || os[0].Status != ladle.StatusPlaced {
			t.Fatalf("orders = %+v, want one placed", os)
		}
		if n := paymenttest.Charges(t, b.pay); n != 1 || paymenttest.Calls(t, b.pay) != 1 {
			t.Fatalf("charges %d, provider calls %d; want 1 and 1", n, paymenttest.Calls(t, b.pay))
		}
	})
}

// TestStalledHolderDuringCharge: the provider is slow and the first
// request's charge outlives the stale-lock time; the retry charges the same
// order with the same provider key (the same charge) and settles it. The
// first's settlement is fenced out.
func TestStalledHolderDuringCharge(t *testing.T) {
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		first, second := b.service(), b.service()
		b.pay.SetDelay(300 * time.Millisecond)
		errc := make(chan error, 1)
		charging := make(chan struct{})
		first.beforeCharge = func(string) { close(charging) }
		go func() {
			_, err := first.Place(ctx, b.fix.Restaurant, "key-1", b.cardRequest())
			errc <- err
		}()
		<-charging
		// The provider records the call, then reads its delay: wait for the
		// record (a write, slow on a loaded machine) and a moment more, so
		// that the first is in its 300 ms call before the delay goes to 0.
		for deadline := time.Now().Add(30 * time.Second); paymenttest.Calls(t, b.pay) == 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the first request never reached the provider")
			}
		}
		time.Sleep(50 * time.Millisecond) // the first is in the provider call now
		b.clock.Add(first.StaleLock() + time.Second)
		b.pay.SetDelay(0)
		res, err := second.Place(ctx, b.fix.Restaurant, "key-1", b.cardRequest())
		if err != nil || res.Status != http.StatusCreated {
			t.Fatalf("retry = %+v, %v", res, err)
		}
		wantFenced(t, <-errc)
		if os := b.orders(t); len(os) != 1 {
			t.Fatalf("orders = %d, want 1", len(os))
		}
		if n := paymenttest.Charges(t, b.pay); n != 1 {
			t.Fatalf("charges %d, want 1 (provider calls %d, same key)", n, paymenttest.Calls(t, b.pay))
		}
	})
}

// TestRestartReleasesOwnKeys: a process dies mid-order (its request never
// returns); the same process restarted (same holder, new boot) serves a
// retry of the in-flight key at once, long before the stale-lock time,
// without a second order or charge. Another process (another holder) still
// has to wait.
func TestRestartReleasesOwnKeys(t *testing.T) {
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		dead := b.service(WithHolder("host-a /data"))
		hook, reached, release := stall()
		defer close(release)
		dead.beforeCharge = func(string) { hook() }
		errc := make(chan error, 1)
		go func() {
			_, err := dead.Place(ctx, b.fix.Restaurant, "key-1", b.cardRequest())
			errc <- err
		}()
		<-reached // "killed" here: the order exists, the charge never happened

		other := b.service(WithHolder("host-b /data"))
		_, err := other.Place(ctx, b.fix.Restaurant, "key-1", b.cardRequest())
		if ladle.ErrorCode(err) != ladle.CodeIdempotencyKeyInUse {
			t.Fatalf("another process's retry = %v, want idempotency_key_in_use", err)
		}

		restarted := b.service(WithHolder("host-a /data"))
		res, err := restarted.Place(ctx, b.fix.Restaurant, "key-1", b.cardRequest())
		if err != nil || res.Status != http.StatusCreated {
			t.Fatalf("retry after restart = %+v, %v", res, err)
		}
		if os := b.orders(t); len(os) != 1 || os[0].Status != ladle.StatusPlaced {
			t.Fatalf("orders = %+v, want one placed", os)
		}
		if n := paymenttest.Charges(t, b.pay); n != 1 {
			t.Fatalf("charges = %d", n)
		}
	})
}

// TestOrderDeadline: a placement never runs past the order timeout, even
// with a context that never ends: a provider that hangs turns into
// payment_pending within the deadline, and the key is released.
func TestOrderDeadline(t *testing.T) {
	backends(t, func(t *testing.T, b *bundle) {
		// Long enough that claim and create finish on a loaded CI machine
		// (under the race detector), so the deadline strikes the charge.
		svc := b.service(WithOrderTimeout(2*time.Second), WithChargeTimeout(time.Hour))
		b.pay.SetDelay(time.Hour)
		start := time.Now()
		_, err := svc.Place(context.Background(), b.fix.Restaurant, "key-1", b.cardRequest())
		if ladle.ErrorCode(err) != ladle.CodePaymentPending {
			t.Fatalf("err = %v, want payment_pending", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("placement took %v with a 2s order timeout", d)
		}
		rec, err := b.store.IdempotencyKey(context.Background(), b.fix.Restaurant.ID, "key-1")
		if err != nil || rec.LockedAt != nil || rec.OrderID == "" {
			t.Fatalf("key after the deadline = %+v, %v; want unlocked with its recovery point", rec, err)
		}
	})
}
