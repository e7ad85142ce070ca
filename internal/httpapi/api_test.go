package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/httpapi"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/payment/paymenttest"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// bundle is one API server over a real store, with its fixtures.
type bundle struct {
	srv      *httptest.Server
	store    ladle.Store
	fix      *storetest.Fixture
	payments *payment.TestProvider
	orders   *ordering.Service
	clock    *clock
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)     { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock                   { return &clock{t: time.Now().UTC().Truncate(time.Microsecond)} }
func (b *bundle) url(path string) string { return b.srv.URL + path }

// backends runs fn against SQLite and, when configured, PostgreSQL.
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

func setup(t *testing.T, dbURL string) *bundle {
	t.Helper()
	ctx := context.Background()
	clk := newClock()
	st, err := sqlstore.Open(ctx, dbURL, sqlstore.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	fix := storetest.Seed(t, st)
	pay := payment.NewTestProvider(st)
	svc := ordering.New(st, pay, []byte("test-secret-test-secret"), ordering.WithClock(clk.Now),
		ordering.WithChargeTimeout(5*time.Second))
	menus, err := menucache.New(menucache.Config{Source: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { menus.Close() })
	mux := http.NewServeMux()
	httpapi.Register(mux, httpapi.Deps{Store: st, Menus: menus, Ordering: svc})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &bundle{srv: srv, store: st, fix: fix, payments: pay, orders: svc, clock: clk}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON (%d): %s", r.status, r.body)
	}
	return m
}

func (r response) code(t *testing.T) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want problem+json; body %s", ct, r.body)
	}
	c, _ := r.json(t)["code"].(string)
	return c
}

func (b *bundle) post(t *testing.T, key string, body any) response {
	t.Helper()
	var raw []byte
	switch v := body.(type) {
	case []byte:
		raw = v
	case string:
		raw = []byte(v)
	default:
		raw, _ = json.Marshal(v)
	}
	req, _ := http.NewRequest("POST", b.url("/api/v1/restaurants/"+b.fix.Restaurant.Slug+"/orders"), bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, rb}
}

var allStatuses = []ladle.OrderStatus{ladle.StatusPendingPayment, ladle.StatusPaymentFailed, ladle.StatusPlaced,
	ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady, ladle.StatusCompleted, ladle.StatusCancelled}

func (b *bundle) orderCount(t *testing.T) int {
	t.Helper()
	os, err := b.store.Orders(context.Background(), b.fix.Restaurant.ID, ladle.OrderFilter{Statuses: allStatuses, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(os)
}

func cardRequest(f *storetest.Fixture) *ladle.OrderRequest {
	r := f.Request()
	r.Payment = ladle.PaymentInput{Method: "card", Token: payment.TokenVisa}
	return r
}

func TestIdempotencyProtocol(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		t.Run("missing key is 400", func(t *testing.T) {
			r := b.post(t, "", b.fix.Request())
			if r.status != 400 || r.code(t) != ladle.CodeIdempotencyKeyMissing {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			if n := b.orderCount(t); n != 0 {
				t.Fatalf("%d orders written", n)
			}
		})

		req := cardRequest(b.fix)
		req.CouponCode = b.fix.Coupon.Code
		first := b.post(t, "key-1", req)
		t.Run("first request creates one order, one charge, one redemption", func(t *testing.T) {
			if first.status != 201 {
				t.Fatalf("status %d: %s", first.status, first.body)
			}
			o := first.json(t)
			if o["status"] != "placed" || o["access_token"] == "" || o["discount"].(float64) <= 0 {
				t.Fatalf("unexpected order %s", first.body)
			}
			if loc := first.header.Get("Location"); loc != "/api/v1/orders/"+o["id"].(string) {
				t.Fatalf("Location %q", loc)
			}
			if first.header.Get("Idempotent-Replayed") != "" {
				t.Fatal("first response marked replayed")
			}
			if n := b.orderCount(t); n != 1 {
				t.Fatalf("%d orders", n)
			}
			if n := paymenttest.Charges(t, b.payments); n != 1 {
				t.Fatalf("%d charges", n)
			}
			pays, _ := b.store.Payments(context.Background(), o["id"].(string))
			if len(pays) != 1 || pays[0].Status != ladle.PaymentCaptured {
				t.Fatalf("payments %+v", pays)
			}
			reds, _ := b.store.Redemptions(context.Background(), b.fix.Restaurant.ID, b.fix.Coupon.ID)
			if len(reds) != 1 {
				t.Fatalf("%d redemptions", len(reds))
			}
		})

		t.Run("same key and body replays the stored response", func(t *testing.T) {
			r := b.post(t, "key-1", req)
			if r.status != 201 || !bytes.Equal(r.body, first.body) || r.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay %d %q %s", r.status, r.header.Get("Idempotent-Replayed"), r.body)
			}
			if b.orderCount(t) != 1 || paymenttest.Charges(t, b.payments) != 1 {
				t.Fatal("replay wrote or charged again")
			}
		})

		t.Run("same key, different body is 422", func(t *testing.T) {
			other := cardRequest(b.fix)
			other.Lines[0].Quantity = 3
			r := b.post(t, "key-1", other)
			if r.status != 422 || r.code(t) != ladle.CodeIdempotencyKeyReused {
				t.Fatalf("got %d %s", r.status, r.body)
			}
		})

		t.Run("new key, same content is a possible duplicate; confirming places a second order", func(t *testing.T) {
			r := b.post(t, "key-2", req)
			if r.status != 409 || r.code(t) != ladle.CodePossibleDuplicate {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			// Nothing of the other order leaks: it may be someone else's.
			existing := first.json(t)
			token, id := existing["access_token"].(string), existing["id"].(string)
			if token == "" || id == "" {
				t.Fatalf("first order lacks id or token: %s", first.body)
			}
			if p := r.json(t); p["status_url"] != nil || p["order_id"] != nil ||
				strings.Contains(string(r.body), token) || strings.Contains(string(r.body), id) {
				t.Fatalf("duplicate problem reveals the existing order: %s", r.body)
			}
			again := *req
			again.ConfirmDuplicate = true
			again.CouponCode = "" // the guest's one use of the coupon is spent
			r = b.post(t, "key-2", &again)
			if r.status != 201 {
				t.Fatalf("confirmed duplicate: %d %s", r.status, r.body)
			}
			if b.orderCount(t) != 2 || paymenttest.Charges(t, b.payments) != 2 {
				t.Fatalf("orders %d charges %d", b.orderCount(t), paymenttest.Charges(t, b.payments))
			}
		})

		t.Run("validation failure is not stored; the key works once fixed", func(t *testing.T) {
			bad := cardRequest(b.fix)
			bad.Customer.Name = "Someone Else"
			bad.Customer.Email = "else@example.com"
			bad.Lines[0].Quantity = 0
			r := b.post(t, "key-3", bad)
			if r.status != 400 || r.code(t) != ladle.CodeValidation || r.json(t)["errors"].(map[string]any)["lines[0].quantity"] == nil {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			sold := cardRequest(b.fix)
			sold.Customer = bad.Customer
			sold.Lines[0].ItemID = b.fix.VeggieBurger.ID
			sold.Lines[0].ModifierIDs = nil
			if r := b.post(t, "key-3", sold); r.status != 409 || r.code(t) != ladle.CodeItemUnavailable {
				t.Fatalf("sold out: %d %s", r.status, r.body)
			}
			bad.Lines[0].Quantity = 2
			if r := b.post(t, "key-3", bad); r.status != 201 {
				t.Fatalf("fixed body: %d %s", r.status, r.body)
			}
		})

		t.Run("declined card is 402, stored and replayed, nothing charged", func(t *testing.T) {
			d := cardRequest(b.fix)
			d.Customer = ladle.CustomerInput{Name: "Dee Clined", Email: "dee@example.com"}
			d.Payment.Token = payment.TokenDecline
			charges := paymenttest.Charges(t, b.payments)
			r := b.post(t, "key-4", d)
			if r.status != 402 || r.code(t) != ladle.CodePaymentDeclined {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			again := b.post(t, "key-4", d)
			if again.status != 402 || again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, r.body) {
				t.Fatalf("replay %d %s", again.status, again.body)
			}
			if paymenttest.Charges(t, b.payments) != charges {
				t.Fatal("a declined card was charged")
			}
			// The decline released the fingerprint: another card, new key, is no duplicate.
			d.Payment.Token = payment.TokenVisa
			if r := b.post(t, "key-5", d); r.status != 201 {
				t.Fatalf("retry with a good card: %d %s", r.status, r.body)
			}
		})
	})
}

func TestKeyInFlightIs409(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		// The first request's charge takes 3 s, so that the second arrives
		// while it is in flight even on a loaded machine (with 1 s, a slow
		// second round trip could find the first already done).
		b.payments.SetDelay(3 * time.Second)
		req := cardRequest(b.fix)
		done := make(chan response, 1)
		go func() { done <- b.post(t, "slow", req) }()
		// Wait until the first request holds the key (its order exists).
		deadline := time.Now().Add(30 * time.Second)
		for b.orderCount(t) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("first request never created its order")
			}
			time.Sleep(10 * time.Millisecond)
		}
		r := b.post(t, "slow", req)
		if r.status != 409 || r.code(t) != ladle.CodeIdempotencyKeyInUse {
			t.Fatalf("second request: %d %s", r.status, r.body)
		}
		if f := <-done; f.status != 201 {
			t.Fatalf("first request: %d %s", f.status, f.body)
		}
		b.payments.SetDelay(0)
		if r := b.post(t, "slow", req); r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("after completion: %d %s", r.status, r.body)
		}
		if paymenttest.Charges(t, b.payments) != 1 {
			t.Fatalf("%d charges", paymenttest.Charges(t, b.payments))
		}
	})
}

// fan sends n requests at once (released together) and returns the statuses
// and problem codes.
func fan(t *testing.T, n int, send func(i int) response) []response {
	var wg sync.WaitGroup
	out := make([]response, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = send(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

func TestConcurrentSameKeyIsOneOrder(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		req := cardRequest(b.fix)
		res := fan(t, 50, func(int) response { return b.post(t, "same-key", req) })
		created, ids := 0, map[string]bool{}
		for _, r := range res {
			switch r.status {
			case 201:
				created++
				ids[r.json(t)["id"].(string)] = true
			case 409:
				if c := r.code(t); c != ladle.CodeIdempotencyKeyInUse {
					t.Fatalf("409 with code %s", c)
				}
			default:
				t.Fatalf("unexpected %d %s", r.status, r.body)
			}
		}
		if created == 0 || len(ids) != 1 {
			t.Fatalf("created %d responses for %d distinct orders", created, len(ids))
		}
		if n := b.orderCount(t); n != 1 {
			t.Fatalf("%d orders", n)
		}
		if n := paymenttest.Charges(t, b.payments); n != 1 {
			t.Fatalf("%d charges", n)
		}
	})
}

func TestConcurrentSameContentIsOneOrder(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		req := cardRequest(b.fix)
		res := fan(t, 50, func(i int) response { return b.post(t, fmt.Sprintf("key-%d", i), req) })
		var created, dup int
		for _, r := range res {
			switch {
			case r.status == 201:
				created++
			case r.status == 409 && r.code(t) == ladle.CodePossibleDuplicate:
				dup++
			default:
				t.Fatalf("unexpected %d %s", r.status, r.body)
			}
		}
		if created != 1 || dup != 49 {
			t.Fatalf("created %d, possible_duplicate %d", created, dup)
		}
		if n := b.orderCount(t); n != 1 {
			t.Fatalf("%d orders", n)
		}
		if n := paymenttest.Charges(t, b.payments); n != 1 {
			t.Fatalf("%d charges", n)
		}
	})
}

func TestCouponLastUseUnderConcurrency(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		c := &ladle.Coupon{RestaurantID: b.fix.Restaurant.ID, Code: "LASTONE", Kind: "fixed", Value: 200, MaxUses: 1, Active: true}
		if err := b.store.CreateCoupon(ctx, c); err != nil {
			t.Fatal(err)
		}
		res := fan(t, 50, func(i int) response {
			r := b.fix.Request()
			r.Customer = ladle.CustomerInput{Name: fmt.Sprintf("Guest %d", i), Email: fmt.Sprintf("guest%d@example.com", i)}
			r.CouponCode = "lastone"
			return b.post(t, fmt.Sprintf("c-%d", i), r)
		})
		var won, exhausted int
		for _, r := range res {
			switch {
			case r.status == 201:
				won++
				if r.json(t)["discount"].(float64) != 200 {
					t.Fatalf("winner has no discount: %s", r.body)
				}
			case r.status == 409 && r.code(t) == ladle.CodeCouponExhausted:
				exhausted++
			default:
				t.Fatalf("unexpected %d %s", r.status, r.body)
			}
		}
		if won != 1 || exhausted != 49 {
			t.Fatalf("discounted %d, exhausted %d", won, exhausted)
		}
		reds, _ := b.store.Redemptions(ctx, b.fix.Restaurant.ID, c.ID)
		if len(reds) != 1 || b.orderCount(t) != 1 {
			t.Fatalf("%d redemptions, %d orders", len(reds), b.orderCount(t))
		}
	})
}

func TestPaymentTimeoutIsNeverChargedTwice(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		t.Run("the guest retries with the same key", func(t *testing.T) {
			req := cardRequest(b.fix)
			req.Payment.Token = payment.TokenTimeout
			r := b.post(t, "timeout-1", req)
			if r.status != 503 || r.code(t) != ladle.CodePaymentPending || r.header.Get("Retry-After") == "" {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			r = b.post(t, "timeout-1", req)
			if r.status != 201 || r.json(t)["status"] != "placed" {
				t.Fatalf("retry: %d %s", r.status, r.body)
			}
			if n := paymenttest.Charges(t, b.payments); n != 1 {
				t.Fatalf("%d charges", n)
			}
		})
		t.Run("the guest goes away; recovery settles it", func(t *testing.T) {
			req := cardRequest(b.fix)
			req.Customer = ladle.CustomerInput{Name: "Gone Away", Email: "gone@example.com"}
			req.Payment.Token = payment.TokenTimeout
			r := b.post(t, "timeout-2", req)
			if r.status != 503 {
				t.Fatalf("got %d %s", r.status, r.body)
			}
			id := r.json(t)["order_id"].(string)
			b.clock.Add(time.Minute)
			n, err := b.orders.RecoverPayments(context.Background(), 30*time.Second)
			if err != nil || n != 1 {
				t.Fatalf("recovered %d, %v", n, err)
			}
			o, err := b.store.Order(context.Background(), id)
			if err != nil || o.Status != ladle.StatusPlaced || o.PaymentStatus != ladle.PaymentCaptured {
				t.Fatalf("order after recovery: %+v %v", o, err)
			}
			if n := paymenttest.Charges(t, b.payments); n != 2 { // one per order
				t.Fatalf("%d charges for two orders", n)
			}
			// A late retry by the guest sees the placed order, charges nothing.
			if r := b.post(t, "timeout-2", req); r.status != 201 || paymenttest.Charges(t, b.payments) != 2 {
				t.Fatalf("late retry: %d %s", r.status, r.body)
			}
		})
	})
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		valid, _ := json.Marshal(b.fix.Request())
		cases := []struct {
			name   string
			body   []byte
			status int
			code   string
		}{
			{"empty", nil, 400, ladle.CodeInvalidJSON},
			{"malformed", []byte(`{"customer":`), 400, ladle.CodeInvalidJSON},
			{"unknown field", bytes.Replace(valid, []byte(`{`), []byte(`{"price_override":1,`), 1), 400, ladle.CodeInvalidJSON},
			{"wrong type", bytes.Replace(valid, []byte(`"quantity":1`), []byte(`"quantity":"one"`), 1), 400, ladle.CodeInvalidJSON},
			{"two objects", append(append([]byte{}, valid...), valid...), 400, ladle.CodeInvalidJSON},
			{"too large", append([]byte(`{"customer":{"name":"`), bytes.Repeat([]byte("x"), httpapi.MaxBodyBytes+10)...), 413, "body_too_large"},
			{"no lines", []byte(`{"customer":{"name":"A","email":"a@example.com"},"fulfillment":{"type":"pickup","time":"asap"},"lines":[],"payment":{"method":"pay_at_pickup"}}`), 400, ladle.CodeValidation},
		}
		for _, c := range cases {
			r := b.post(t, "bad-"+c.name, c.body)
			if r.status != c.status || r.code(t) != c.code {
				t.Errorf("%s: got %d %s", c.name, r.status, r.body)
			}
		}
		if n := b.orderCount(t); n != 0 {
			t.Fatalf("bad input wrote %d orders", n)
		}
		// Unknown restaurant and unknown routes are JSON 404s. (The key and
		// the body are checked first: they need no database.)
		req, _ := http.NewRequest("POST", b.url("/api/v1/restaurants/nope/orders"), bytes.NewReader(valid))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "nope-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 404 {
			t.Fatalf("unknown restaurant: %d", resp.StatusCode)
		}
		resp.Body.Close()
	})
}

func TestGuestOrderAccess(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		created := b.post(t, "k", b.fix.Request()).json(t)
		id, token := created["id"].(string), created["access_token"].(string)
		get := func(path, bearer string) int {
			req, _ := http.NewRequest("GET", b.url(path), nil)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for _, c := range []struct {
			path, bearer string
			want         int
		}{
			{"/api/v1/orders/" + id, token, 200},
			{"/api/v1/orders/" + id + "?token=" + token, "", 200},
			{"/api/v1/orders/" + id, "", 404},
			{"/api/v1/orders/" + id, tampered(token), 404},
			{"/api/v1/orders/not-an-order", token, 404},
		} {
			if got := get(c.path, c.bearer); got != c.want {
				t.Errorf("GET %s bearer=%t: %d, want %d", c.path, c.bearer != "", got, c.want)
			}
		}
	})
}

// tampered changes the token's last character (to one it is not).
func tampered(token string) string {
	if strings.HasSuffix(token, "A") {
		return token[:len(token)-1] + "B"
	}
	return token[:len(token)-1] + "A"
}

func TestKeysAreReaped(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		req := b.fix.Request()
		if r := b.post(t, "old", req); r.status != 201 {
			t.Fatal(r.status)
		}
		b.clock.Add(ladle.IdempotencyKeyTTL + time.Hour)
		n, err := b.store.ReapIdempotencyKeys(context.Background(), b.clock.Now().Add(-ladle.IdempotencyKeyTTL))
		if err != nil || n < 1 {
			t.Fatalf("reaped %d, %v", n, err)
		}
		// The key and the fingerprint are gone: the same key is a fresh request.
		if r := b.post(t, "old", req); r.status != 201 || r.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("after reaping: %d %s", r.status, r.body)
		}
	})
}

func TestMenuETag(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		resp, err := http.Get(b.url("/api/v1/restaurants/" + b.fix.Restaurant.Slug + "/menu"))
		if err != nil {
			t.Fatal(err)
		}
		var m ladle.Menu
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || etag == "" || len(m.Categories) == 0 {
			t.Fatalf("menu: %d etag %q", resp.StatusCode, etag)
		}
		req, _ := http.NewRequest("GET", b.url("/api/v1/restaurants/"+b.fix.Restaurant.Slug+"/menu"), nil)
		req.Header.Set("If-None-Match", etag)
		resp, _ = http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.StatusCode != 304 {
			t.Fatalf("conditional GET: %d", resp.StatusCode)
		}
	})
}

// TestWrongMethod: a route asked with a method it does not take is a 405
// problem document naming the methods it does take (Allow); a path that is
// no route is a 404, whatever the method.
func TestWrongMethod(t *testing.T) {
	t.Parallel()
	b := setup(t, "sqlite:"+t.TempDir()+"/ladle.db")
	slug := b.fix.Restaurant.Slug
	for _, c := range []struct {
		method, path string
		status       int
		allow, code  string
	}{
		{"PUT", "/api/v1/restaurants/" + slug + "/orders", 405, "POST", ladle.CodeMethodNotAllowed},
		{"GET", "/api/v1/restaurants/" + slug + "/orders", 405, "POST", ladle.CodeMethodNotAllowed},
		{"DELETE", "/api/v1/restaurants/" + slug + "/menu", 405, "GET, HEAD", ladle.CodeMethodNotAllowed},
		{"POST", "/api/v1/orders/some-order", 405, "GET, HEAD", ladle.CodeMethodNotAllowed},
		{"GET", "/api/v1/nothing/here", 404, "", ladle.CodeNotFound},
		{"DELETE", "/api/v1/restaurants/" + slug + "/orders/extra", 404, "", ladle.CodeNotFound},
	} {
		req, _ := http.NewRequest(c.method, b.url(c.path), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := response{status: resp.StatusCode, header: resp.Header, body: body}
		if r.status != c.status || r.header.Get("Allow") != c.allow || r.code(t) != c.code {
			t.Errorf("%s %s: %d, Allow %q, %s; want %d, Allow %q, %s", c.method, c.path, r.status,
				r.header.Get("Allow"), body, c.status, c.allow, c.code)
		}
	}
}
