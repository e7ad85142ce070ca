package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/faultproxy"
	"github.com/ladle-dev/ladle/internal/httpapi"
	"github.com/ladle-dev/ladle/internal/limit"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// faultBundle is an API server whose PostgreSQL sits behind a fault proxy,
// and a direct store on the same schema to look at what was written.
type faultBundle struct {
	srv    *httptest.Server
	proxy  *faultproxy.Proxy
	direct *sqlstore.Store
	fix    *storetest.Fixture
}

// faultSetup: deadlines short enough that an outage answers within a
// second: 800 ms for a request's database work and for a whole placement.
func faultSetup(t *testing.T, readTimeout time.Duration) *faultBundle {
	t.Helper()
	ctx := context.Background()
	dsn := testenv.PostgresSchema(t)
	direct, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	if err := direct.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	fix := storetest.Seed(t, direct)

	u, _ := url.Parse(dsn)
	p, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	u.Host = p.Addr()
	st, err := sqlstore.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := ordering.New(st, payment.NewTestProvider(st), []byte("test-secret-test-secret"),
		ordering.WithOrderTimeout(800*time.Millisecond), ordering.WithChargeTimeout(500*time.Millisecond))
	menus, err := menucache.New(menucache.Config{Source: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { menus.Close() })
	mux := http.NewServeMux()
	httpapi.Register(mux, httpapi.Deps{Store: st, Menus: menus, Ordering: svc, RequestTimeout: 800 * time.Millisecond,
		OrderLimit: limit.NewSet().New(limit.Config{Name: "orders", MaxInFlight: 8, MaxQueue: 16, MaxWait: 500 * time.Millisecond})})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ReadTimeout = readTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return &faultBundle{srv: srv, proxy: p, direct: direct, fix: fix}
}

func (b *faultBundle) post(t *testing.T, key string) (response, time.Duration) {
	t.Helper()
	order := cardRequest(b.fix)
	order.Customer.Email = key + "@example.com" // one guest per key: not a look-alike of another
	raw, _ := json.Marshal(order)
	req, _ := http.NewRequest("POST", b.srv.URL+"/api/v1/restaurants/"+b.fix.Restaurant.Slug+"/orders", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, rb}, time.Since(start)
}

func (b *faultBundle) orders(t *testing.T) []ladle.Order {
	t.Helper()
	os, err := b.direct.Orders(context.Background(), b.fix.Restaurant.ID, ladle.OrderFilter{Statuses: allStatuses, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return os
}

// want503 checks a fast 503 unavailable with Retry-After.
func want503(t *testing.T, what string, r response, d time.Duration, within time.Duration) {
	t.Helper()
	if r.status != 503 || r.header.Get("Retry-After") == "" || r.code(t) != ladle.CodeUnavailable {
		t.Fatalf("%s: %d Retry-After %q %s, want 503 unavailable with Retry-After", what, r.status, r.header.Get("Retry-After"), r.body)
	}
	if d > within {
		t.Fatalf("%s: answered after %v, want within %v", what, d, within)
	}
	t.Logf("%s: 503 in %v", what, d.Round(time.Millisecond))
}

// TestDatabaseOutage is issue 7's must-show on PostgreSQL: with the
// database cut (connections reset, new ones refused) or blackholed
// (accepting, never answering), an order POST gets 503 unavailable with
// Retry-After within a second, not a 500 and not a hang; nothing partial
// is written; once the database is back, the same keys place their orders,
// without a restart, each exactly once.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	b := faultSetup(t, 30*time.Second)
	ids := map[string]bool{} // of orders answered 201
	created := func(what string, r response) {
		t.Helper()
		if r.status != 201 {
			t.Fatalf("%s: %d %s", what, r.status, r.body)
		}
		ids[r.json(t)["id"].(string)] = true
	}
	r, _ := b.post(t, "before")
	created("before the outage", r)

	b.proxy.Set(faultproxy.Cut)
	var d time.Duration
	for i := range 3 {
		r, d = b.post(t, fmt.Sprintf("cut-%d", i))
		want503(t, fmt.Sprintf("cut, attempt %d", i), r, d, time.Second)
	}
	b.proxy.Set(faultproxy.Pass)
	if n := len(b.orders(t)); n != 1 {
		t.Fatalf("%d orders after the cut, want 1: a refused order left something behind", n)
	}
	for i := range 3 {
		created(fmt.Sprintf("after the cut, key cut-%d", i), b.postEventually(t, fmt.Sprintf("cut-%d", i)))
	}

	b.proxy.Set(faultproxy.Blackhole)
	for i := range 2 {
		r, d = b.post(t, fmt.Sprintf("hole-%d", i))
		want503(t, fmt.Sprintf("blackhole, attempt %d", i), r, d, 1500*time.Millisecond)
	}
	b.proxy.Set(faultproxy.Pass)
	for i := range 2 {
		created(fmt.Sprintf("after the blackhole, key hole-%d", i), b.postEventually(t, fmt.Sprintf("hole-%d", i)))
	}
	// One order per key: six keys, six distinct orders answered, and no
	// other order in the database.
	os := b.orders(t)
	if len(os) != 6 || len(ids) != 6 {
		t.Fatalf("%d orders in the database, %d distinct answered, want 6 and 6", len(os), len(ids))
	}
	for _, o := range os {
		if !ids[o.ID] || o.Status != ladle.StatusPlaced {
			t.Errorf("order %s (%s) was not answered to any key, or is not placed", o.ID, o.Status)
		}
	}
}

// postEventually retries key as a client told "503, Retry-After" would,
// for up to 10 s: the first attempts after a restore may meet connections
// the outage broke, or a key whose earlier claim is still being released.
func (b *faultBundle) postEventually(t *testing.T, key string) response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _ := b.post(t, key)
		retry := r.status == 503 || r.status == 409 && r.code(t) == ladle.CodeIdempotencyKeyInUse
		if !retry || time.Now().After(deadline) {
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSlowDatabaseNeverMakesA400: with every database answer delayed past
// the server's read timeout, a valid order body whose bytes arrive after
// the headers is still read whole (it is read before any database work),
// so the answer is the order or a 503, never 400 invalid_json.
func TestSlowDatabaseNeverMakesA400(t *testing.T) {
	t.Parallel()
	b := faultSetup(t, 300*time.Millisecond)
	b.proxy.SetLatency(400 * time.Millisecond)
	raw, _ := json.Marshal(cardRequest(b.fix))
	for i := range 2 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(b.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /api/v1/restaurants/%s/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Idempotency-Key: slow-%d\r\nContent-Length: %d\r\n\r\n", b.fix.Restaurant.Slug, i, len(raw))
		time.Sleep(50 * time.Millisecond) // the body is not in the server's first read
		_, _ = conn.Write(raw)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode != 201 && resp.StatusCode != 503 {
			t.Fatalf("slow database, attempt %d: %d %s, want 201 or 503", i, resp.StatusCode, body)
		}
		t.Logf("slow database, attempt %d: %d", i, resp.StatusCode)
	}
}

// TestOrderShedWhenBusy: with every order slot taken and the queue full, an
// order POST is answered 503 with Retry-After at once, before its body is
// read, and writes nothing; its key works once the server has room.
func TestOrderShedWhenBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, fix := seededSQLite(t)
	svc := ordering.New(st, payment.NewTestProvider(st), []byte("test-secret-test-secret"))
	menus, err := menucache.New(menucache.Config{Source: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { menus.Close() })
	orders := limit.NewSet().New(limit.Config{Name: "orders", MaxInFlight: 1, MaxQueue: 1, MaxWait: time.Minute, RetryAfter: 3})
	mux := http.NewServeMux()
	httpapi.Register(mux, httpapi.Deps{Store: st, Menus: menus, Ordering: svc, OrderLimit: orders})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b := &bundle{srv: srv, store: st, fix: fix}

	hold, _ := orders.Acquire(ctx)
	// The queue's one place is taken by a request that waits.
	queued := make(chan response, 1)
	q := cardRequest(fix)
	q.Customer.Email = "queued@example.com"
	go func() { queued <- b.post(t, "queued", q) }()
	waitUntil(t, func() bool { return orders.Queued() == 1 })
	r := b.post(t, "shed", cardRequest(fix))
	if r.status != 503 || r.header.Get("Retry-After") != "3" || r.code(t) != ladle.CodeUnavailable {
		t.Fatalf("full: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	// Shed at once: the queued request is still waiting (for up to a minute).
	if orders.Queued() != 1 {
		t.Fatal("the shed request did not come back before the queued one")
	}
	if n := b.orderCount(t); n != 0 {
		t.Fatalf("%d orders written while shed", n)
	}
	hold()
	if r := <-queued; r.status != 201 {
		t.Fatalf("the queued request once there is room: %d %s", r.status, r.body)
	}
	if r := b.post(t, "shed", cardRequest(fix)); r.status != 201 {
		t.Fatalf("the shed key once there is room: %d %s", r.status, r.body)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30 s")
		}
		time.Sleep(time.Millisecond)
	}
}
