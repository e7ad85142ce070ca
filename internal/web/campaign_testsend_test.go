package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// "Send test to me" on a campaign's page queues one test send to the
// signed-in manager's own address (a "to" in the form changes nothing),
// once per rendered form (a double click), at most
// ladle.CampaignTestsPerWindow a minute (then the page says to wait);
// a manager of another restaurant cannot test this one's campaign.
func TestCampaignTestSendForm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "sqlite", func(d *Deps) { d.Campaigns = campaign.NewService(d.Store.(*sqlstore.Store), quiet) })
	st := e.store.(*sqlstore.Store)
	rid := e.fx.Restaurant.ID
	mgr, other := e.manager("mgr", rid), e.manager("other", e.fx.Other.ID)
	c, _, err := campaign.NewService(st, quiet).Create(ctx, rid, campaign.Input{Name: "Spring", Subject: "Hi {{.Name}}", Text: "Hi {{.Name}}"})
	if err != nil {
		t.Fatal(err)
	}
	tests := func() []ladle.CampaignTest {
		evs, err := st.OutboxEvents(ctx, rid)
		if err != nil {
			t.Fatal(err)
		}
		var out []ladle.CampaignTest
		for _, ev := range evs {
			if ev.Type == ladle.EventCampaignTest {
				var ct ladle.CampaignTest
				if err := json.Unmarshal(ev.Payload, &ct); err != nil {
					t.Fatal(err)
				}
				out = append(out, ct)
			}
		}
		return out
	}

	cl := e.client()
	cl.login(mgr)
	page := "/admin/r/" + itoa(rid) + "/campaigns/" + c.ID
	res := cl.get(page)
	res.want(t, http.StatusOK, `id="campaign-test"`, "Send test to me", mgr.Email)
	key := res.field(t, "key")
	for range 2 { // a double click: the same rendered form twice
		res = cl.post(page+"/test", url.Values{"key": {key}, "to": {"attacker@evil.example"}})
		if loc := res.header.Get("Location"); res.status != http.StatusSeeOther || !strings.Contains(loc, "notice=") {
			t.Fatalf("test send: %d %q\n%s", res.status, loc, res.body)
		}
	}
	cl.get(res.header.Get("Location")).want(t, http.StatusOK, "A test was sent to "+mgr.Email)
	if got := tests(); len(got) != 1 || got[0].UserID != mgr.ID || got[0].CampaignID != c.ID {
		t.Fatalf("test sends queued: %+v", got)
	}
	// The page renders a new key each time; past the bound it says so.
	for i := 2; i <= ladle.CampaignTestsPerWindow+1; i++ {
		res = cl.post(page+"/test", url.Values{"key": {cl.get(page).field(t, "key")}})
		loc := res.header.Get("Location")
		if over := i > ladle.CampaignTestsPerWindow; res.status != http.StatusSeeOther || over != strings.Contains(loc, "error=") {
			t.Fatalf("test %d: %d %q", i, res.status, loc)
		}
	}
	if got := tests(); len(got) != ladle.CampaignTestsPerWindow {
		t.Fatalf("%d test sends queued, want %d", len(got), ladle.CampaignTestsPerWindow)
	}
	// Another restaurant's manager, through either restaurant's pages.
	oc := e.client()
	oc.login(other)
	for _, p := range []string{page, "/admin/r/" + itoa(e.fx.Other.ID) + "/campaigns/" + c.ID} {
		if res := oc.post(p+"/test", url.Values{"key": {"x"}}); res.status == http.StatusSeeOther {
			t.Fatalf("%s: another restaurant's manager got %d %q", p, res.status, res.header.Get("Location"))
		}
	}
	if got := tests(); len(got) != ladle.CampaignTestsPerWindow {
		t.Fatalf("%d test sends queued after the other manager", len(got))
	}
}
