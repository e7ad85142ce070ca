package web

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/httpapi"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// The tests build the real thing in-process: a migrated SQLite store in a
// temp dir (and PostgreSQL in a fresh schema when LADLE_TEST_POSTGRES_URL is
// set), the ordering service with the test card provider, the auth manager,
// and this package's handler on an httptest.Server. Nothing is mocked.

const staffPassword = "correct horse battery staple"

// env is one running web UI over one store.
type env struct {
	t     *testing.T
	store ladle.Store
	fx    *storetest.Fixture
	pay   *payment.TestProvider
	// refunds is the test processor's refunds API (its ledger in the store).
	refunds *payment.TestRefunder
	svc     *ordering.Service
	auth    *auth.Manager
	clock   *testClock
	srv     *httptest.Server

	// staffA belongs to fx.Restaurant only, staffB to fx.Other only, multi
	// to both.
	staffA, staffB, multi *ladle.User
}

// backends runs fn once per available store.
func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, newEnv(t, "sqlite"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		testenv.PostgresURL(t)
		fn(t, newEnv(t, "postgres"))
	})
}

func newEnv(t *testing.T, backend string, opts ...func(*Deps)) *env {
	t.Helper()
	ctx := context.Background()
	clk := &testClock{}
	var dsn string
	if backend == "postgres" {
		dsn = freshSchema(t)
	} else {
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "ladle.db")
	}
	st, err := sqlstore.Open(ctx, dsn, sqlstore.WithClock(clk.Now), sqlstore.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, clock: clk, pay: payment.NewTestProvider(st)}
	e.fx = storetest.Seed(t, st)
	e.refunds = payment.NewTestRefunder(st)
	e.svc = ordering.New(st, e.pay, []byte("web-test-secret-0123456789abcdef"),
		ordering.WithClock(clk.Now), ordering.WithLogger(quiet), ordering.WithRefunder(e.refunds))
	e.auth = auth.New(st, auth.WithParams(auth.TestParams), auth.WithClock(clk.Now), auth.WithLogger(quiet))
	d := Deps{
		Store: st, Ordering: e.svc, Auth: e.auth, Logger: quiet, Now: clk.Now,
		ImageURL: func(key string) string { return "/media/" + key },
	}
	for _, o := range opts {
		o(&d)
	}
	// The pages and the JSON API on one origin, as ladle serve mounts
	// them (checkout's live quote and the storefront's open/closed line
	// call the API).
	mux := http.NewServeMux()
	httpapi.Register(mux, httpapi.Deps{Store: st, Ordering: e.svc, Logger: quiet})
	mux.Handle("/", New(d))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.staffA = e.user("a", e.fx.Restaurant.ID)
	e.staffB = e.user("b", e.fx.Other.ID)
	e.multi = e.user("multi", e.fx.Restaurant.ID, e.fx.Other.ID)
	return e
}

var quiet = slog.New(slog.DiscardHandler)

// user creates a staff user with staffPassword and memberships.
func (e *env) user(name string, restaurants ...int64) *ladle.User {
	e.t.Helper()
	ctx := context.Background()
	hash, err := e.auth.HashPassword(staffPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	u := &ladle.User{Email: name + "-" + randHex(4) + "@staff.example", Name: "Staff " + name, PasswordHash: hash}
	if err := e.store.CreateUser(ctx, u); err != nil {
		e.t.Fatal(err)
	}
	for _, rid := range restaurants {
		if err := e.store.AddMembership(ctx, ladle.Membership{UserID: u.ID, RestaurantID: rid, Role: ladle.RoleStaff}); err != nil {
			e.t.Fatal(err)
		}
	}
	return u
}

// place puts an order in through the ordering service, as a guest would.
func (e *env) place(r *ladle.Restaurant, req *ladle.OrderRequest) *ladle.Order {
	e.t.Helper()
	res, err := e.svc.Place(context.Background(), r, newKey(), req)
	if err != nil {
		e.t.Fatalf("placing order: %v", err)
	}
	if res.Order == nil {
		e.t.Fatalf("placing order: status %d %s", res.Status, res.Body)
	}
	return res.Order
}

// request is a pay-at-pickup order for the fixture restaurant, from email.
func (e *env) request(email string) *ladle.OrderRequest {
	r := e.fx.Request()
	r.Customer.Email = email
	return r
}

// otherRequest is an order for the second restaurant.
func (e *env) otherRequest() *ladle.OrderRequest {
	return &ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: "Other Guest", Email: "guest-" + randHex(3) + "@example.com"},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       []ladle.LineRequest{{ItemID: e.fx.OtherItem.ID, Quantity: 1}},
		Payment:     ladle.PaymentInput{Method: "pay_at_pickup"},
	}
}

// orders lists all orders of the fixture restaurant.
func (e *env) orders(rid int64) []ladle.Order {
	e.t.Helper()
	os, err := e.store.Orders(context.Background(), rid, ladle.OrderFilter{
		Statuses: []ladle.OrderStatus{ladle.StatusPendingPayment, ladle.StatusPaymentFailed, ladle.StatusPlaced,
			ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady, ladle.StatusCompleted, ladle.StatusCancelled},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return os
}

// checkoutForm is a complete checkout form for the fixture restaurant: two
// large burgers with cheese and one fries, paid by card.
func (e *env) checkoutForm(email, key string) url.Values {
	f := e.fx
	cart := `[{"item_id":` + itoa(f.Burger.ID) + `,"quantity":2,"modifier_ids":[` + itoa(f.Large.ID) + `,` + itoa(f.Cheese.ID) +
		`]},{"item_id":` + itoa(f.Fries.ID) + `,"quantity":1,"modifier_ids":[]}]`
	return url.Values{
		"name": {"Ada Lovelace"}, "email": {email}, "phone": {"+1 555 010 0199"},
		"pickup": {"asap"}, "coupon": {""}, "tip": {""},
		"payment": {"card"}, "card_token": {payment.TokenVisa},
		"cart": {cart}, "idempotency_key": {key}, "confirm_duplicate": {"0"},
	}
}

func (e *env) checkoutPath() string { return "/r/" + e.fx.Restaurant.Slug + "/checkout" }

// ---- HTTP client ----------------------------------------------------------

type client struct {
	t    *testing.T
	base string
	hc   *http.Client
}

type response struct {
	status int
	header http.Header
	body   string
}

// client returns a browser-like client with its own cookie jar that does not
// follow redirects (tests assert them).
func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: e.t, base: e.srv.URL, hc: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *client) do(req *http.Request, hdr ...string) *response {
	c.t.Helper()
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: string(b)}
}

// get fetches path; hdr are header name/value pairs.
func (c *client) get(path string, hdr ...string) *response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req, hdr...)
}

// post sends a form.
func (c *client) post(path string, form url.Values, hdr ...string) *response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req, hdr...)
}

// login signs c in as u.
func (c *client) login(u *ladle.User) {
	c.t.Helper()
	res := c.post("/admin/login", url.Values{"email": {u.Email}, "password": {staffPassword}})
	if res.status != http.StatusSeeOther {
		c.t.Fatalf("login as %s: status %d\n%s", u.Email, res.status, res.body)
	}
}

func (r *response) want(t *testing.T, status int, contains ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d\n%s", r.status, status, r.body)
	}
	for _, s := range contains {
		if !strings.Contains(r.body, s) {
			t.Fatalf("body does not contain %q\n%s", s, r.body)
		}
	}
}

func (r *response) wantNot(t *testing.T, not ...string) {
	t.Helper()
	for _, s := range not {
		if strings.Contains(r.body, s) {
			t.Fatalf("body contains %q\n%s", s, r.body)
		}
	}
}

// field returns the value of the first input named name in the body.
func (r *response) field(t *testing.T, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no input %q in\n%s", name, r.body)
	}
	return html.UnescapeString(m[1])
}

// hiddenFields returns every hidden input of the body, in order.
func (r *response) hiddenFields() url.Values {
	v := url.Values{}
	re := regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	for _, m := range re.FindAllStringSubmatch(r.body, -1) {
		v.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// ---- clock and PostgreSQL ------------------------------------------------------

// testClock is real time until Set; then it stays where it is put.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return ladle.Now()
	}
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t.UTC()
	c.mu.Unlock()
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	if c.t.IsZero() {
		c.t = ladle.Now()
	}
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	pgOnce sync.Once
	pgDB   *sql.DB
	pgErr  error
)

// freshSchema creates a randomly named schema, drops it after the test, and
// returns a URL whose search_path selects it.
func freshSchema(t *testing.T) string {
	t.Helper()
	base := testenv.PostgresURL(t)
	pgOnce.Do(func() {
		pgDB, pgErr = sql.Open("pgx", base)
		if pgErr == nil {
			pgDB.SetMaxOpenConns(2)
		}
	})
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	schema := "ladle_web_" + randHex(6)
	if _, err := pgDB.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := pgDB.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
