package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// TestCampaignAPIEndToEnd drives campaigns through the staff API of a real
// server (SQLite, embedded NATS, a loopback SMTP server): token, import,
// create, send, progress to done; one-click unsubscribe; another
// restaurant's token; a later campaign skips the unsubscribed.
func TestCampaignAPIEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	srv := smtptest.Start(t)
	base := startLadle(t, nil, "--demo", "--data-dir", dir, "--smtp-url", srv.URL(), "--campaign-rate", "2000",
		"--public-url", "https://ladle.example")

	// A second restaurant and a token of its own owner.
	store, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "ladle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	other := &ladle.Restaurant{Slug: "other-place", Name: "Other", Currency: "USD", TimeZone: "UTC"}
	if err := store.CreateRestaurant(ctx, other); err != nil {
		t.Fatal(err)
	}
	ou := &ladle.User{Email: "o@other.example", Name: "O", PasswordHash: "x"}
	if err := store.CreateUser(ctx, ou); err != nil {
		t.Fatal(err)
	}
	if err := store.AddMembership(ctx, ladle.Membership{UserID: ou.ID, RestaurantID: other.ID, Role: ladle.RoleOwner}); err != nil {
		t.Fatal(err)
	}

	token := func(slug, email string) string { return staffToken(t, slug, email, "--data-dir", dir) }
	tok := token(demo.Slug, demo.StaffEmail)
	otherTok := token(other.Slug, ou.Email)
	if !strings.HasPrefix(tok, "ldl_") {
		t.Fatalf("token %q", tok)
	}

	api := base + "/api/v1/admin/restaurants/" + demo.Slug
	call := func(method, url, bearer, ctype, body string, want int) map[string]any {
		t.Helper()
		return apiCall(t, method, url, bearer, ctype, body, want)
	}

	call("POST", api+"/campaigns", "", "application/json", "{}", 401)
	call("POST", api+"/campaigns", "ldl_"+strings.Repeat("A", 43), "application/json", "{}", 401)
	call("GET", api+"/campaigns", otherTok, "", "", 404) // another restaurant's token: as if absent

	var csv strings.Builder
	csv.WriteString("email,name,marketing_opt_in\n")
	for i := range 120 {
		fmt.Fprintf(&csv, "guest%03d@example.com,Guest %d,true\n", i, i)
	}
	csv.WriteString("bad-address,Bad,true\n")
	rep := call("POST", api+"/customers/import", tok, "text/csv", csv.String(), 200)
	if rep["imported"].(float64) != 120 || len(rep["rejected"].([]any)) != 1 {
		t.Fatalf("import: %v", rep)
	}
	rep = call("POST", api+"/customers/import", tok, "text/csv", csv.String(), 200)
	if rep["imported"].(float64) != 0 || rep["updated"].(float64) != 0 {
		t.Fatalf("second import changed something: %v", rep)
	}

	body := `{"name":"Spring","subject":"Hi {{.Name}}","html":"<p>Hi {{.Name}}</p><a href=\"{{.UnsubscribeURL}}\">unsubscribe</a>","text":"Hi {{.Name}} {{.UnsubscribeURL}}","audience":{"segment":"opted_in"}}`
	call("POST", api+"/campaigns", tok, "application/json", `{"name":"x","subject":"a\r\nBcc: x@example.com","html":"","text":"t"}`, 400)
	c := call("POST", api+"/campaigns", tok, "application/json", body, 201)
	id := c["id"].(string)
	if c["status"] != "draft" || c["audience_size"].(float64) != 120 {
		t.Fatalf("created: %v", c)
	}
	call("POST", api+"/campaigns/"+id+"/pause", tok, "", "", 409)
	call("POST", api+"/campaigns/"+id+"/schedule", tok, "application/json", `{"send_at":"2020-01-01T00:00:00Z"}`, 400)
	call("POST", api+"/campaigns/"+id+"/schedule", tok, "application/json", `{"send_at":"tomorrow"}`, 400)
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if s := call("POST", api+"/campaigns/"+id+"/schedule", tok, "application/json", `{"send_at":"`+later+`"}`, 200); s["status"] != "scheduled" || s["scheduled_at"] == nil {
		t.Fatalf("scheduled: %v", s)
	}
	call("POST", api+"/campaigns/"+id+"/send", tok, "", "", 200)
	deadline := time.Now().Add(30 * time.Second)
	var p map[string]any
	for {
		p = call("GET", api+"/campaigns/"+id, tok, "", "", 200)
		if p["status"] == "done" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p["status"] != "done" || p["sent"].(float64) != 120 || p["pending"].(float64) != 0 || p["total"].(float64) != 120 {
		t.Fatalf("progress: %v", p)
	}
	for _, k := range []string{"failed", "skipped", "rate_per_second"} {
		if _, ok := p[k]; !ok {
			t.Errorf("progress lacks %s: %v", k, p)
		}
	}
	if n := srv.Count(); n != 120 {
		t.Fatalf("SMTP server got %d, want 120", n)
	}
	call("GET", base+"/api/v1/admin/restaurants/other-place/campaigns/"+id, otherTok, "", "", 404)

	// Unsubscribe: GET shows a page and changes nothing; a tampered token
	// is refused; the one-click POST unsubscribes.
	var victim smtptest.Received
	for _, m := range srv.Messages() {
		if m.To == "guest007@example.com" {
			victim = m
		}
	}
	link := strings.Trim(victim.Header.Get("List-Unsubscribe"), "<>")
	local := strings.Replace(link, "https://ladle.example", base, 1)
	resp, err := http.Get(local)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "<form method=\"post\"") {
		t.Fatalf("GET unsubscribe: %d %s", resp.StatusCode, page)
	}
	// Another method is a 405 whatever the token, and changes nothing.
	for _, u := range []string{local, local[:len(local)-2] + "xx"} {
		req, _ := http.NewRequest("PUT", u, strings.NewReader("List-Unsubscribe=One-Click"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, POST" {
			t.Fatalf("PUT unsubscribe: %d, Allow %q; want 405, Allow GET, HEAD, POST", resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	rest, _ := store.RestaurantBySlug(ctx, demo.Slug)
	if why, _ := store.Suppressed(ctx, rest.ID, "guest007@example.com"); why != "" {
		t.Fatalf("GET or PUT unsubscribed (%s)", why)
	}
	resp, err = http.Post(local[:len(local)-2]+"xx", "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("tampered token: %d", resp.StatusCode)
	}
	resp, err = http.Post(local, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("one-click POST: %d", resp.StatusCode)
	}
	if why, _ := store.Suppressed(ctx, rest.ID, "guest007@example.com"); why != ladle.SuppressUnsubscribed {
		t.Fatalf("after POST: %q", why)
	}

	// A later campaign does not mail them.
	c2 := call("POST", api+"/campaigns", tok, "application/json", strings.Replace(body, "Spring", "Summer", 1), 201)
	if c2["audience_size"].(float64) != 119 {
		t.Fatalf("audience after unsubscribe: %v", c2["audience_size"])
	}
	id2 := c2["id"].(string)
	call("POST", api+"/campaigns/"+id2+"/send", tok, "", "", 200)
	srv.Wait(239, 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	got := 0
	for _, m := range srv.Messages() {
		if m.To == "guest007@example.com" {
			got++
		}
	}
	if got != 1 || srv.Count() != 239 {
		t.Fatalf("unsubscribed got %d messages in all; server %d", got, srv.Count())
	}
}
