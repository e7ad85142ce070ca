package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// Double opt-in through a real server (SQLite, embedded NATS, a loopback
// SMTP server): a guest who ticks the box is pending and in no audience;
// one confirmation email arrives however often they order; GET on its link
// confirms nothing, a tampered link is refused, POST confirms.
func TestDoubleOptInEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := smtptest.Start(t)
	base := startLadle(t, nil, "--demo", "--data-dir", dir, "--smtp-url", srv.URL(), "--public-url", "https://ladle.example")
	store, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dir, "ladle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	confirmCount := func() int {
		n := 0
		for _, m := range srv.Messages() {
			if m.To == "ada@example.com" && strings.HasPrefix(m.Subject, "Confirm emails from") {
				n++
			}
		}
		return n
	}
	checkDoubleOptIn(t, base, base, store, confirmCount)
}

// The same with the API and the worker in separate processes (PostgreSQL,
// an external NATS, the dev mailbox): the worker signs the link, the API
// checks it.
func TestDoubleOptInAPIAndWorker(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"LADLE_DATABASE_URL": testenv.PostgresSchema(t),
		"LADLE_NATS_URL":     testenv.NATSURL(t),
		"LADLE_SECRET":       "double-opt-in-secret-0123456789",
		"LADLE_PUBLIC_URL":   "https://ladle.example",
	}
	api := startLadle(t, env, "--role", "api", "--demo")
	worker := startLadle(t, env, "--role", "worker")
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, env["LADLE_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	instance, err := store.InstanceID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStream(t, env["LADLE_NATS_URL"], "LADLE_EVENTS_"+strings.ToUpper(instance[:12])) })
	_ = worker
	checkDoubleOptIn(t, api, api, store, nil)
}

var confirmLink = regexp.MustCompile(`https://ladle\.example/confirm-email/[A-Za-z0-9_.-]+`)

// checkDoubleOptIn turns double opt-in on for the demo restaurant, orders
// twice with the box ticked on api and follows the confirmation email's
// link on web. sent, if set, counts the confirmation emails the SMTP
// server got (else the dev mailbox's are counted).
func checkDoubleOptIn(t *testing.T, api, web string, store *sqlstore.Store, sent func() int) {
	t.Helper()
	ctx := context.Background()
	r, err := store.RestaurantBySlug(ctx, demo.Slug)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetDoubleOptIn(ctx, r.ID, true); err != nil {
		t.Fatal(err)
	}
	menu, err := store.Menu(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	order := func(key, phone string) *ladle.Order {
		return postOrder(t, api, key, ladle.OrderRequest{
			Customer:       ladle.CustomerInput{Name: "Ada", Email: "Ada@example.com", Phone: phone},
			Fulfillment:    ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
			Lines:          []ladle.LineRequest{{ItemID: plainItem(t, menu).ID, Quantity: 1}},
			Payment:        ladle.PaymentInput{Method: "pay_at_pickup"},
			MarketingOptIn: true,
		})
	}
	audience := func() int64 {
		t.Helper()
		n, err := store.AudienceSize(ctx, r.ID, ladle.Audience{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// emails returns the order's emails once its receipt (and its
	// confirmation, if want) is sent.
	emails := func(o *ladle.Order, want int) []ladle.Email {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			es, err := store.OrderEmails(ctx, r.ID, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			sentN := 0
			for _, e := range es {
				if e.Status == ladle.EmailSent {
					sentN++
				}
			}
			if sentN >= want {
				time.Sleep(300 * time.Millisecond) // room for a duplicate to show up
				es, _ = store.OrderEmails(ctx, r.ID, o.ID)
				return es
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s: %d emails sent within 20s, want %d: %+v", o.ID, sentN, want, es)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	kinds := func(es []ladle.Email) string {
		var k []string
		for _, e := range es {
			k = append(k, e.Kind)
		}
		return strings.Join(k, ",")
	}
	if sent == nil {
		sent = func() int { return 0 }
	}

	o1 := order("doi-1", "")
	es := emails(o1, 2)
	if kinds(es) != "receipt,confirm" && kinds(es) != "confirm,receipt" {
		t.Fatalf("first order's emails: %s", kinds(es))
	}
	var confirm ladle.Email
	for _, e := range es {
		if e.Kind == "confirm" {
			confirm = e
		}
	}
	if !strings.Contains(confirm.To, "<ada@example.com>") {
		t.Fatalf("confirmation to %q", confirm.To)
	}
	if c, _ := store.CustomerByEmail(ctx, r.ID, "ada@example.com"); c == nil || c.Consent() != ladle.ConsentPending || audience() != 0 {
		t.Fatalf("after a tick under double opt-in: %+v, audience %d", c, audience())
	}

	// A second order with the box ticked: a receipt, no second
	// confirmation.
	o2 := order("doi-2", "+15550100")
	if es := emails(o2, 1); kinds(es) != "receipt" {
		t.Fatalf("second order's emails: %s", kinds(es))
	}
	if n := sent(); n > 1 {
		t.Fatalf("SMTP server got %d confirmation emails, want 1", n)
	}

	link := confirmLink.FindString(confirm.Text)
	if link == "" || !strings.Contains(confirm.HTML, link) {
		t.Fatalf("no confirmation link in:\n%s", confirm.Text)
	}
	local := strings.Replace(link, "https://ladle.example", web, 1)
	call := func(method, url string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	// GET (a mail scanner, a preview) shows the button and confirms nothing.
	if code, page := call("GET", local); code != 200 || !strings.Contains(page, `<form method="post"`) {
		t.Fatalf("GET confirm: %d %s", code, page)
	}
	if audience() != 0 {
		t.Fatal("GET on the confirmation link confirmed")
	}
	// Tampered: refused, nothing changes.
	i := strings.LastIndexByte(local, '.')
	tampered := local[:i-1] + map[bool]string{true: "B", false: "A"}[local[i-1] == 'A'] + local[i:]
	for _, m := range []string{"GET", "POST"} {
		if code, _ := call(m, tampered); code != 400 {
			t.Fatalf("%s with a tampered token: %d, want 400", m, code)
		}
	}
	if audience() != 0 {
		t.Fatal("a tampered link confirmed")
	}
	// POST confirms, once; again is fine.
	for range 2 {
		if code, page := call("POST", local); code != 200 || !strings.Contains(page, "Confirmed") {
			t.Fatalf("POST confirm: %d %s", code, page)
		}
	}
	c, err := store.CustomerByEmail(ctx, r.ID, "ada@example.com")
	if err != nil || c.Consent() != ladle.ConsentOptedIn || c.ConsentSource != ladle.ConsentCheckout || c.ConsentConfirmedAt == nil {
		t.Fatalf("after confirming: %+v, %v", c, err)
	}
	if audience() != 1 {
		t.Fatalf("audience %d after confirming, want 1", audience())
	}
}
