package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// A manager turns double opt-in on from the campaigns page; a guest who
// then ticks the box at checkout is counted as waiting for confirmation,
// not as reachable. Turning it off again confirms nobody. Staff of the
// restaurant cannot change it; a manager of another restaurant cannot
// reach this one's setting.
func TestDoubleOptInSettingOnCampaignsPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "sqlite", func(d *Deps) { d.Campaigns = campaign.NewService(d.Store.(*sqlstore.Store), quiet) })
	st := e.store.(*sqlstore.Store)
	rid := e.fx.Restaurant.ID
	mgr, other := e.manager("mgr", rid), e.manager("other", e.fx.Other.ID)
	page := "/admin/r/" + itoa(rid) + "/campaigns"
	setting := page[:len(page)-len("/campaigns")] + "/double-opt-in"

	cl := e.client()
	cl.login(mgr)
	if res := cl.get(page); res.status != http.StatusOK || strings.Contains(res.body, `id="double-opt-in" checked`) {
		t.Fatalf("campaigns page before: %d, or double opt-in shown as on\n%s", res.status, res.body)
	}
	res := cl.post(setting, url.Values{"double_opt_in": {"on"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("turning it on: %d\n%s", res.status, res.body)
	}
	r, err := st.RestaurantByID(ctx, rid)
	if err != nil || !r.DoubleOptIn {
		t.Fatalf("after turning it on the restaurant has double_opt_in=%v (%v)", r != nil && r.DoubleOptIn, err)
	}
	cl.get(page).want(t, http.StatusOK, `id="double-opt-in" checked`)

	// The checkout says a confirmation link will come (the restaurant
	// may be cached for a moment, so wait for it).
	waitFor(t, func() bool {
		return strings.Contains(e.client().get(e.checkoutPath()).body, "we will email you a link to confirm first")
	})

	// A guest ticks the box: pending, not reachable.
	form := e.checkoutForm("pending-guest@example.com", newKey())
	form.Set("marketing", "1")
	if res := e.client().post(e.checkoutPath(), form); res.status != http.StatusSeeOther {
		t.Fatalf("checkout: %d\n%s", res.status, res.body)
	}
	cl.get(page).want(t, http.StatusOK, "<strong>0</strong> customers can receive campaigns; <strong>1</strong> have not confirmed")

	// Off again: the setting changes, the pending guest stays pending.
	if res := cl.post(setting, url.Values{}); res.status != http.StatusSeeOther {
		t.Fatalf("turning it off: %d", res.status)
	}
	res = cl.get(page)
	res.want(t, http.StatusOK, "<strong>0</strong> customers can receive campaigns; <strong>1</strong> have not confirmed")
	if strings.Contains(res.body, `id="double-opt-in" checked`) {
		t.Error("double opt-in still shown as on after turning it off")
	}

	// Staff role: refused; another restaurant's manager: no access.
	staff := e.client()
	staff.login(e.staffA)
	if res := staff.post(setting, url.Values{"double_opt_in": {"on"}}); res.status != http.StatusForbidden {
		t.Errorf("staff role turning it on: %d, want 403", res.status)
	}
	outsider := e.client()
	outsider.login(other)
	if res := outsider.post(setting, url.Values{"double_opt_in": {"on"}}); res.status != http.StatusNotFound && res.status != http.StatusForbidden {
		t.Errorf("another restaurant's manager: %d, want 404 or 403", res.status)
	}
	if r, _ := st.RestaurantByID(ctx, rid); r.DoubleOptIn {
		t.Error("a refused request turned double opt-in on")
	}
}
