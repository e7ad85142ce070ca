package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/httpapi"
)

// POST /campaigns/{id}/test queues one test send to the token's own staff
// member (an address in the body changes nothing), once per
// Idempotency-Key, at most ladle.CampaignTestsPerWindow a minute (then 429
// with Retry-After); another restaurant's token is 404. The test is an
// outbox event for the workers, not a send record.
func TestAdminCampaignTestSendAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, fix := seededSQLite(t)
	member := func(rid int64, email string) (*ladle.User, string) {
		u := &ladle.User{Email: email, Name: "Mia Manager", PasswordHash: "x"}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := st.AddMembership(ctx, ladle.Membership{UserID: u.ID, RestaurantID: rid, Role: ladle.RoleManager}); err != nil {
			t.Fatal(err)
		}
		tok, hash := auth.NewAPIToken()
		if err := st.CreateAPIToken(ctx, &ladle.APIToken{RestaurantID: rid, UserID: u.ID, Name: "t"}, hash); err != nil {
			t.Fatal(err)
		}
		return u, tok
	}
	mgr, tok := member(fix.Restaurant.ID, "mia@staff.example")
	_, otherTok := member(fix.Other.ID, "olaf@other.example")
	mux := http.NewServeMux()
	httpapi.RegisterAdmin(mux, httpapi.AdminDeps{Store: st, Campaigns: campaign.NewService(st, nil)})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base := srv.URL + "/api/v1/admin/restaurants/" + fix.Restaurant.Slug + "/campaigns"
	call := func(tok, method, url, key, body string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, res.StatusCode, raw)
		}
		return res, v
	}
	res, c := call(tok, "POST", base, "", `{"name":"Spring","subject":"Hello {{.Name}}","text":"Hi {{.Name}} {{.UnsubscribeURL}}"}`)
	if res.StatusCode != 201 {
		t.Fatalf("create: %d %v", res.StatusCode, c)
	}
	test := base + "/" + c["id"].(string) + "/test"

	res, first := call(tok, "POST", test, "k1", `{"to":"attacker@evil.example"}`)
	if res.StatusCode != 202 || first["to"] != mgr.Email || first["event_id"] == "" {
		t.Fatalf("test: %d %v", res.StatusCode, first)
	}
	res, again := call(tok, "POST", test, "k1", "")
	if res.StatusCode != 202 || again["event_id"] != first["event_id"] {
		t.Fatalf("double click: %d %v, first %v", res.StatusCode, again, first)
	}
	if res, p := call(tok, "POST", test, "", ""); res.StatusCode != 400 || p["code"] != ladle.CodeIdempotencyKeyMissing {
		t.Fatalf("no key: %d %v", res.StatusCode, p)
	}
	// Another restaurant's token: 404, whether through our slug or its own.
	if res, p := call(otherTok, "POST", test, "k9", ""); res.StatusCode != 404 {
		t.Fatalf("other restaurant's token: %d %v", res.StatusCode, p)
	}
	otherURL := srv.URL + "/api/v1/admin/restaurants/" + fix.Other.Slug + "/campaigns/" + c["id"].(string) + "/test"
	if res, p := call(otherTok, "POST", otherURL, "k9", ""); res.StatusCode != 404 {
		t.Fatalf("other restaurant's campaign: %d %v", res.StatusCode, p)
	}
	for i := 2; i <= ladle.CampaignTestsPerWindow; i++ {
		if res, p := call(tok, "POST", test, "k"+strconv.Itoa(i), ""); res.StatusCode != 202 {
			t.Fatalf("test %d: %d %v", i, res.StatusCode, p)
		}
	}
	res, p := call(tok, "POST", test, "k-too-many", "")
	ra, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	if res.StatusCode != 429 || p["code"] != ladle.CodeRateLimited || ra < 1 || ra > 60 {
		t.Fatalf("over the bound: %d Retry-After %q %v", res.StatusCode, res.Header.Get("Retry-After"), p)
	}
	// A repeat of an accepted request is still answered as before.
	if res, again := call(tok, "POST", test, "k1", ""); res.StatusCode != 202 || again["event_id"] != first["event_id"] {
		t.Fatalf("repeat past the bound: %d %v", res.StatusCode, again)
	}

	evs, err := st.OutboxEvents(ctx, fix.Restaurant.ID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Type != ladle.EventCampaignTest {
			continue
		}
		n++
		var ct ladle.CampaignTest
		if err := json.Unmarshal(ev.Payload, &ct); err != nil || ct.UserID != mgr.ID || ct.CampaignID != c["id"] {
			t.Errorf("event %s: %s", ev.ID, ev.Payload)
		}
	}
	if n != ladle.CampaignTestsPerWindow {
		t.Errorf("%d campaign.test events, want %d", n, ladle.CampaignTestsPerWindow)
	}
	if _, got := call(tok, "GET", base+"/"+c["id"].(string), "", ""); got["status"] != "draft" || got["total"] != 0.0 || got["sent"] != 0.0 {
		t.Errorf("the campaign after tests: %v", got)
	}
}
