package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A manager creates a coupon in the staff UI in a real browser: a first try
// with a bad value comes back with everything typed still there, the fixed
// one is saved and listed with its rules; then the manager deactivates it.
func TestBrowserCouponCreate(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	e := newEnv(t, "sqlite")
	mgr := e.manager("mgr", e.fx.Restaurant.ID)
	page := e.srv.URL + "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/coupons"
	run(t, ctx,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`#l-email`)),
		chromedp.SendKeys(chromedp.CSS(`#l-email`), mgr.Email),
		chromedp.SendKeys(chromedp.CSS(`#l-password`), staffPassword),
		chromedp.Click(chromedp.CSS(`.login button[type="submit"]`)),
	)
	// Each step has its own deadline (stepTimeout): a loaded machine is slow.
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#new-coupon`)))
	run(t, ctx,
		chromedp.SendKeys(chromedp.CSS(`#coupon-code`), "lunch15"),
		chromedp.SendKeys(chromedp.CSS(`#coupon-value`), "fifteen"),
		chromedp.SendKeys(chromedp.CSS(`#coupon-min`), "12.50"),
		chromedp.SendKeys(chromedp.CSS(`#coupon-max`), "200"),
		chromedp.SendKeys(chromedp.CSS(`#coupon-per`), "2"),
		chromedp.Click(chromedp.CSS(`#coupon-create`)),
	)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#coupon-errors`)))
	kept := eval[string](t, ctx, `['coupon-code','coupon-value','coupon-min','coupon-max','coupon-per'].map(function(id){return document.getElementById(id).value}).join('|')`)
	if kept != "lunch15|fifteen|12.50|200|2" {
		t.Fatalf("after the refused form the fields hold %q", kept)
	}
	if msg := eval[string](t, ctx, `document.getElementById('err-value').textContent`); !strings.Contains(msg, "whole percent") {
		t.Fatalf("value error = %q", msg)
	}
	run(t, ctx,
		chromedp.SetValue(chromedp.CSS(`#coupon-value`), "15"),
		chromedp.Click(chromedp.CSS(`#coupon-create`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-coupon="LUNCH15"]`)),
	)
	row := eval[string](t, ctx, `document.querySelector('tr[data-coupon="LUNCH15"]').innerText`)
	for _, want := range []string{"LUNCH15", "15% off", "from $12.50", "2 per customer", "0 / 200", "active"} {
		if !strings.Contains(row, want) {
			t.Fatalf("the listed coupon %q lacks %q", row, want)
		}
	}
	run(t, ctx,
		chromedp.Click(chromedp.CSS(`tr[data-coupon="LUNCH15"] form button`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-coupon="LUNCH15"] .badge.inactive`)),
	)
	c, err := e.store.CouponByCode(t.Context(), e.fx.Restaurant.ID, "LUNCH15")
	if err != nil || c.Active || c.Value != 15 || c.MaxUses != 200 {
		t.Fatalf("stored coupon %+v, %v", c, err)
	}
}
