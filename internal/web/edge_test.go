package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/faultproxy"
	"github.com/ladle-dev/ladle/internal/limit"
	"github.com/ladle-dev/ladle/internal/live"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
)

// Tests of the limits and deadlines at the web edge (web.go, live.go,
// checkout_post.go).

// openStream opens an event stream with c's cookies and returns its lines;
// the channel closes when the stream ends. It fails t unless the stream
// starts with 200 and the hello event.
func openStream(t *testing.T, c *client, path string) <-chan string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	hc := &http.Client{Jar: c.hc.Jar, CheckRedirect: c.hc.CheckRedirect}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	lines := make(chan string, 64)
	go func() {
		defer resp.Body.Close()
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	waitLine(t, lines, "event: hello", 30*time.Second)
	return lines
}

// waitLine waits for the line want on the stream.
func waitLine(t *testing.T, lines <-chan string, want string, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended before %q", want)
			}
			if l == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q within %v", want, within)
		}
	}
}

// waitEnd waits for the stream to end.
func waitEnd(t *testing.T, lines <-chan string, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("stream still open after %v", within)
		}
	}
}

func TestStaffStreamEndsAtLogout(t *testing.T) {
	t.Parallel()
	hub := live.NewHub()
	e := newEnv(t, "sqlite", func(d *Deps) { d.Live = hub })
	c := e.client()
	c.login(e.staffA)
	board := "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders/live"
	s1 := openStream(t, c, board)
	s2 := openStream(t, c, board)
	// Another member's stream, of another session, stays open.
	other := e.client()
	other.login(e.staffA)
	s3 := openStream(t, other, board)

	start := time.Now()
	if res := c.post("/admin/logout", url.Values{}); res.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.status)
	}
	// 10 s: room for a loaded machine, and still short of the 15 s
	// heartbeat that would end them anyway.
	waitLine(t, s1, "event: off", 10*time.Second)
	waitEnd(t, s1, 10*time.Second)
	waitEnd(t, s2, 10*time.Second)
	t.Logf("both streams of the session ended %v after the logout", time.Since(start))
	select {
	case _, ok := <-s3:
		if !ok {
			t.Fatal("another session's stream ended at this logout")
		}
	case <-time.After(200 * time.Millisecond):
	}
	if n := hub.Subscribers(); n != 1 {
		t.Fatalf("%d subscriptions open, want the other session's 1", n)
	}
	// The logged-out browser cannot reopen it.
	c.get(board).want(t, http.StatusSeeOther)
}

// TestStaffStreamEndsWithTheSession: a session that ends where this process
// cannot see it (expired, or logged out through another process) ends the
// stream at the next heartbeat. Not parallel: it shortens live.Heartbeat,
// which parallel tests (paused until this one ends) also read.
func TestStaffStreamEndsWithTheSession(t *testing.T) {
	old := live.Heartbeat
	live.Heartbeat = 100 * time.Millisecond
	defer func() { live.Heartbeat = old }()
	e := newEnv(t, "sqlite", func(d *Deps) { d.Live = live.NewHub() })
	c := e.client()
	c.login(e.staffA)
	s := openStream(t, c, "/admin/r/"+itoa(e.fx.Restaurant.ID)+"/orders/live")
	waitLine(t, s, ": keep-alive", 10*time.Second) // still allowed: heartbeats flow
	e.clock.Add(13 * time.Hour)                    // past the session's 12 h
	waitLine(t, s, "event: off", 10*time.Second)
	waitEnd(t, s, 10*time.Second)
}

func TestStreamLimits(t *testing.T) {
	t.Parallel()
	set := limit.NewSet()
	hub := live.NewHub()
	perClient := set.NewPerClient("streams_per_client", 2, 7)
	e := newEnv(t, "sqlite", func(d *Deps) {
		d.Live = hub
		d.Limits.Streams = set.New(limit.Config{Name: "streams", MaxInFlight: 100, RetryAfter: 5})
		d.Limits.StreamsPerClient = perClient
	})
	o := e.place(e.fx.Restaurant, e.request("live@example.com"))
	path := "/orders/" + o.ID + "/live?token=" + e.svc.AccessToken(o.ID)
	c := e.client()
	s1 := openStream(t, c, path)
	s2 := openStream(t, c, path)
	// A third stream from the same address: 429, with Retry-After; a staff
	// board from that address counts too.
	res := c.get(path)
	if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") != "7" || !strings.Contains(res.body, "rate_limited") {
		t.Fatalf("third stream of one client: %d Retry-After %q %s", res.status, res.header.Get("Retry-After"), res.body)
	}
	staff := e.client()
	staff.login(e.staffA)
	board := "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders/live"
	if res := staff.get(board); res.status != http.StatusTooManyRequests {
		t.Fatalf("a board stream beyond the address's bound: %d", res.status)
	}
	// Closed streams give their places back.
	e.srv.CloseClientConnections()
	waitEnd(t, s1, 10*time.Second)
	waitEnd(t, s2, 10*time.Second)
	// The client sees its end at once; the server's handlers notice a
	// moment later, unsubscribe, and only then give the address's places
	// back: wait for that, not for the subscriptions alone.
	deadline := time.Now().Add(30 * time.Second)
	for hub.Subscribers() > 0 || perClient.Held("127.0.0.1") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after the clients left: %d subscriptions, %d of the address's places held", hub.Subscribers(), perClient.Held("127.0.0.1"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	openStream(t, staff, board)

	// The bound on all streams of the process: 503 with Retry-After.
	one := newEnv(t, "sqlite", func(d *Deps) {
		d.Live = live.NewHub()
		d.Limits.Streams = limit.NewSet().New(limit.Config{Name: "streams", MaxInFlight: 1, RetryAfter: 5})
	})
	o = one.place(one.fx.Restaurant, one.request("live@example.com"))
	path = "/orders/" + o.ID + "/live?token=" + one.svc.AccessToken(o.ID)
	openStream(t, one.client(), path)
	res = one.client().get(path)
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") != "5" {
		t.Fatalf("a stream beyond the process's bound: %d Retry-After %q", res.status, res.header.Get("Retry-After"))
	}
}

func TestCheckoutShedWhenBusy(t *testing.T) {
	t.Parallel()
	orders := limit.NewSet().New(limit.Config{Name: "orders", MaxInFlight: 1, MaxQueue: 1, MaxWait: 50 * time.Millisecond, RetryAfter: 2})
	e := newEnv(t, "sqlite", func(d *Deps) { d.Limits.Orders = orders; d.Limits.RequestTimeout = 5 * time.Second })
	hold, err := orders.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	form := e.checkoutForm("busy@example.com", "busy-key-1")
	res := c.post(e.checkoutPath(), form)
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") != "2" {
		t.Fatalf("checkout while busy: %d Retry-After %q", res.status, res.header.Get("Retry-After"))
	}
	// The page re-posts the very same form: the same key, nothing lost.
	if got := res.hiddenFields().Get("idempotency_key"); got != "busy-key-1" {
		t.Fatalf("busy page re-posts key %q, want busy-key-1\n%s", got, res.body)
	}
	if n := len(e.orders(e.fx.Restaurant.ID)); n != 0 {
		t.Fatalf("%d orders placed while shed", n)
	}
	hold()
	if res := c.post(e.checkoutPath(), res.hiddenFields()); res.status != http.StatusSeeOther {
		t.Fatalf("the re-post: %d\n%s", res.status, res.body)
	}
	if n := len(e.orders(e.fx.Restaurant.ID)); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
}

// TestCheckoutSlowDatabaseNeverA400: with every PostgreSQL answer delayed
// past the server's read timeout, a checkout form whose bytes arrive after
// the headers is still read whole (before any database work), so the guest
// gets the order or "try again", never "the checkout form could not be
// read".
func TestCheckoutSlowDatabaseNeverA400(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := freshSchema(t)
	direct, err := sqlstore.Open(ctx, dsn, sqlstore.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	if err := direct.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, fx: storetest.Seed(t, direct)}
	u, _ := url.Parse(dsn)
	p, err := faultproxy.Start(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	u.Host = p.Addr()
	st, err := sqlstore.Open(ctx, u.String(), sqlstore.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := ordering.New(st, payment.NewTestProvider(st), []byte("web-test-secret-0123456789abcdef"), ordering.WithLogger(quiet),
		ordering.WithOrderTimeout(3*time.Second))
	a := auth.New(st, auth.WithParams(auth.TestParams), auth.WithLogger(quiet))
	srv := httptest.NewUnstartedServer(New(Deps{Store: st, Ordering: svc, Auth: a, Logger: quiet,
		Limits: Limits{RequestTimeout: 10 * time.Second}}))
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	p.SetLatency(400 * time.Millisecond)
	body := e.checkoutForm("slow@example.com", "slow-key-1").Encode()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n",
		e.checkoutPath(), len(body))
	time.Sleep(50 * time.Millisecond) // the form is not in the server's first read
	_, _ = io.WriteString(conn, body)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("checkout on a slow database: %d, want 303 (placed) or 503 (try again)", resp.StatusCode)
	}
	t.Logf("checkout on a slow database: %d", resp.StatusCode)
}

// TestStaffPagesAndUploadsAreLimited: the staff limiter bounds staff pages
// (503 with Retry-After once it is full) but not the board's live stream,
// and uploads have a limiter of their own.
func TestStaffPagesAndUploadsAreLimited(t *testing.T) {
	t.Parallel()
	set := limit.NewSet()
	staff := set.New(limit.Config{Name: "staff", MaxInFlight: 1, RetryAfter: 4})
	uploads := set.New(limit.Config{Name: "uploads", MaxInFlight: 1, RetryAfter: 6})
	e := newEnv(t, "sqlite", func(d *Deps) {
		d.Live = live.NewHub()
		d.Limits.Staff, d.Limits.Uploads = staff, uploads
	})
	c := e.client()
	c.login(e.staffA)
	rid := itoa(e.fx.Restaurant.ID)
	c.get("/admin/r/"+rid+"/orders").want(t, http.StatusOK)
	hold, _ := staff.Acquire(context.Background())
	res := c.get("/admin/r/" + rid + "/orders")
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") != "4" {
		t.Fatalf("staff page with the staff limiter full: %d Retry-After %q", res.status, res.header.Get("Retry-After"))
	}
	openStream(t, c, "/admin/r/"+rid+"/orders/live") // streams are not staff pages
	holdUpload, _ := uploads.Acquire(context.Background())
	hold()
	res = c.upload("/admin/r/"+rid+"/menu/items/"+itoa(e.fx.Fries.ID)+"/image", "x.png", pngBytes(t), "version", "1")
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") != "6" {
		t.Fatalf("upload with the upload limiter full: %d Retry-After %q", res.status, res.header.Get("Retry-After"))
	}
	holdUpload()
	c.get("/admin/r/"+rid+"/orders").want(t, http.StatusOK)
}
