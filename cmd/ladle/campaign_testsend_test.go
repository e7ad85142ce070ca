package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// A test send asked of an API-only process reaches the staff member, and
// only them, through a worker process: subject "[Test] " + the rendered
// subject, their own name in the body, the test unsubscribe link (whose
// page unsubscribes nobody); a double click sends one email; the
// campaign's counts stay zero.
func TestCampaignTestSendThroughWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := smtptest.Start(t)
	dbURL := testenv.PostgresSchema(t)
	env := map[string]string{
		"LADLE_DATABASE_URL": dbURL,
		"LADLE_NATS_URL":     testenv.NATSURL(t),
		"LADLE_SMTP_URL":     srv.URL(),
		"LADLE_SECRET":       "campaign-test-send-secret-0123456789",
		"LADLE_PUBLIC_URL":   "https://ladle.example",
	}
	base := startLadle(t, env, "--role", "api", "--demo")
	st, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	instance, err := st.InstanceID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteStream(t, env["LADLE_NATS_URL"], "LADLE_EVENTS_"+strings.ToUpper(instance[:12])) })
	staff, err := st.UserByEmail(ctx, demo.StaffEmail)
	if err != nil {
		t.Fatal(err)
	}
	startLadle(t, env, "--role", "worker")
	tok := staffToken(t, demo.Slug, demo.StaffEmail, "--database-url", dbURL)
	api := base + "/api/v1/admin/restaurants/" + demo.Slug
	apiCall(t, "POST", api+"/customers/import", tok, "text/csv", "email,name,marketing_opt_in\nguest@example.com,Guest,true\n", 200)
	c := apiCall(t, "POST", api+"/campaigns", tok, "application/json",
		`{"name":"Spring","subject":"Hello {{.Name}}","html":"<p>Hi {{.Name}}</p><a href=\"{{.UnsubscribeURL}}\">unsubscribe</a>","text":"Hi {{.Name}}\nUnsubscribe: {{.UnsubscribeURL}}"}`, 201)
	id := c["id"].(string)
	for range 2 { // a double click
		postTest(t, api+"/campaigns/"+id+"/test", tok, "click-1", `{"to":"guest@example.com"}`)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(srv.Messages()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // a second email, if any, would be here by now
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages reached the server, want 1", len(msgs))
	}
	m := msgs[0]
	if m.To != demo.StaffEmail || m.Subject != "[Test] Hello "+staff.Name {
		t.Errorf("to %q subject %q", m.To, m.Subject)
	}
	body := string(m.Raw)
	if !strings.Contains(body, "Hi "+staff.Name) || !strings.Contains(body, "https://ladle.example/unsubscribe/test") {
		t.Errorf("body:\n%s", body)
	}
	// The headers of a campaign email, with the test link.
	if !strings.Contains(body, "List-Unsubscribe: <https://ladle.example/unsubscribe/test>\r\n") ||
		!strings.Contains(body, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n") {
		t.Errorf("test send without the campaign's List-Unsubscribe headers:\n%s", body)
	}
	if p := apiCall(t, "GET", api+"/campaigns/"+id, tok, "", "", 200); p["status"] != "draft" || p["sent"] != 0.0 || p["total"] != 0.0 {
		t.Errorf("campaign after the test: %v", p)
	}
	res, err := http.Post(base+"/unsubscribe/test", "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), "unsubscribed nobody") {
		t.Errorf("test unsubscribe link: %d %s", res.StatusCode, page)
	}
	if why, err := st.Suppressed(ctx, mustRestaurant(t, st, demo.Slug), demo.StaffEmail); err != nil || why != "" {
		t.Errorf("the staff member is suppressed: %q %v", why, err)
	}
}

// With the embedded default (the dev mailbox), the test send shows in the
// mailbox: an email of the campaign_test consumer, sent, to the member.
func TestCampaignTestSendInDevMailbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	base := startLadle(t, nil, "--demo", "--data-dir", dir)
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "ladle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tok := staffToken(t, demo.Slug, demo.StaffEmail, "--data-dir", dir)
	api := base + "/api/v1/admin/restaurants/" + demo.Slug
	c := apiCall(t, "POST", api+"/campaigns", tok, "application/json", `{"name":"N","subject":"News for {{.Name}}","text":"Hi {{.Name}}"}`, 201)
	postTest(t, api+"/campaigns/"+c["id"].(string)+"/test", tok, "k", "")
	rid := mustRestaurant(t, st, demo.Slug)
	deadline := time.Now().Add(20 * time.Second)
	for {
		es, err := st.Emails(ctx, rid, 0, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Consumer == "campaign_test" && e.Status == "sent" {
				if !strings.Contains(e.To, demo.StaffEmail) || !strings.HasPrefix(e.Subject, "[Test] News for ") || e.Transport != "mailbox" {
					t.Fatalf("mailbox email: to %q subject %q transport %q", e.To, e.Subject, e.Transport)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no test send in the dev mailbox: %+v", es)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustRestaurant(t *testing.T, st *sqlstore.Store, slug string) int64 {
	t.Helper()
	r, err := st.RestaurantBySlug(context.Background(), slug)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// postTest asks for a test send under key and wants 202.
func postTest(t *testing.T, url, tok, key, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Idempotency-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 202 {
		t.Fatalf("test send: %d", res.StatusCode)
	}
}
