package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// TestHoursPage: a bad range is refused beside its day with everything
// typed kept and nothing saved; a good form is saved; plain staff may not.
func TestHoursPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	rid := itoa(e.fx.Restaurant.ID)
	staff := e.client()
	staff.login(e.staffA)
	staff.get("/admin/r/"+rid+"/hours").want(t, http.StatusForbidden)

	c := e.client()
	c.login(e.manager("hours", e.fx.Restaurant.ID))
	c.get("/admin/r/"+rid+"/hours").want(t, http.StatusOK, "Hours &amp; pickup slots", `name="day1"`, `name="closures"`)
	form := url.Values{"day1": {"11:00-14:00, 17:00-02:00"}, "day2": {"11-14"}, "day5": {"10:00-12:00, 11:00-13:00"},
		"closures": {"2030-12-25 Christmas\n2030-13-01"}, "slot_minutes": {"15"}, "slot_orders": {"5"}, "slot_items": {"x"}, "prep_minutes": {"20"}}
	res := c.post("/admin/r/"+rid+"/hours", form)
	res.want(t, http.StatusUnprocessableEntity, "Nothing was saved",
		`value="11:00-14:00, 17:00-02:00"`, `value="11-14"`, `id="f-day2-err">Write ranges like`,
		`id="f-day5-err">A range overlaps`, "2030-13-01", `id="f-closures-err"`, "Enter a whole number.")
	if h, _ := e.store.Hours(context.Background(), e.fx.Restaurant.ID); len(h.Weekly) != 0 {
		t.Fatalf("an invalid form saved %+v", h.Weekly)
	}
	form.Set("day2", "11:00-14:00")
	form.Set("day5", "")
	form.Set("closures", "2030-12-25 Christmas")
	form.Set("slot_items", "0")
	c.post("/admin/r/"+rid+"/hours", form).want(t, http.StatusSeeOther)
	h, err := e.store.Hours(context.Background(), e.fx.Restaurant.ID)
	if err != nil || len(h.Weekly) != 3 || h.SlotOrders != 5 || h.PrepMinutes != 20 || h.Closures[0].Note != "Christmas" {
		t.Fatalf("saved %+v, %v", h, err)
	}
	c.get("/admin/r/"+rid+"/hours").want(t, http.StatusOK, `value="11:00-14:00, 17:00-02:00"`, "2030-12-25 Christmas")
	// Another restaurant's hours page is not found.
	c.get("/admin/r/"+itoa(e.fx.Other.ID)+"/hours").want(t, http.StatusNotFound)
}

// TestPauseAndClosedCheckout: the board's pause switch stops checkout with
// the next opening time; the hours close ASAP while ordering ahead works.
func TestPauseAndClosedCheckout(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		// Friday 2030-05-17 08:30 in New York.
		e.clock.Set(time.Date(2030, 5, 17, 12, 30, 0, 0, time.UTC))
		rid := itoa(e.fx.Restaurant.ID)
		c := e.client()
		c.login(e.manager("hours", e.fx.Restaurant.ID))
		c.post("/admin/r/"+rid+"/pause", url.Values{"minutes": {"30"}}).want(t, http.StatusSeeOther)
		c.get("/admin/r/"+rid+"/orders").want(t, http.StatusOK, "Online ordering is paused until", `value="0">Resume now`)
		res := e.client().post(e.checkoutPath(), e.checkoutForm("paused@example.com", newKey()))
		res.want(t, http.StatusUnprocessableEntity, "paused online ordering", "Orders open again Fri May 17, 9:00 AM EDT")
		c.post("/admin/r/"+rid+"/pause", url.Values{"minutes": {"0"}}).want(t, http.StatusSeeOther)
		c.post("/admin/r/"+rid+"/pause", url.Values{"minutes": {"7"}}).want(t, http.StatusUnprocessableEntity)

		var weekly []ladle.OpenRange
		for d := time.Monday; d <= time.Friday; d++ {
			weekly = append(weekly, ladle.OpenRange{Day: d, Open: 11 * 60, Close: 14 * 60})
		}
		if err := e.store.SetHours(context.Background(), e.fx.Restaurant.ID, &ladle.Hours{Weekly: weekly, SlotMinutes: 15, PrepMinutes: 15}, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		page := e.client().get(e.checkoutPath())
		page.want(t, http.StatusOK, `<option value="asap" disabled>As soon as possible (Closed now · opens Today 11:00 AM)</option>`,
			`<option value="2030-05-17T15:00:00Z" selected>Today 11:00 AM</option>`)
		page.wantNot(t, `2030-05-17T14:45:00Z`)
		e.client().post(e.checkoutPath(), e.checkoutForm("closed@example.com", newKey())).want(t, http.StatusUnprocessableEntity,
			"The restaurant is closed now.")
		form := e.checkoutForm("ahead@example.com", newKey())
		form.Set("pickup", "2030-05-17T15:00:00Z")
		e.client().post(e.checkoutPath(), form).want(t, http.StatusSeeOther)
	})
}

// TestCheckoutApplyCoupon: the no-JS "Apply" button prices the form with
// the order's own code: discount and total in the summary, or the coupon's
// error beside the field; nothing is placed.
func TestCheckoutApplyCoupon(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	form := e.checkoutForm("apply@example.com", newKey())
	form.Set("action", "quote")
	form.Set("coupon", "save10")
	form.Set("tip", "2.00")
	// 30.97 − 3.10 = 27.87; tax 8.25 % = 2.30; + 2.00 tip = 32.17.
	e.client().post(e.checkoutPath(), form).want(t, http.StatusOK, "SAVE10 applied: −$3.10", `<dd data-cart-total>$32.17</dd>`,
		`<dd data-cart-discount>−$3.10</dd>`, `value="`+form.Get("idempotency_key")+`"`)
	form.Set("coupon", "NOPE")
	e.client().post(e.checkoutPath(), form).want(t, http.StatusConflict, `id="f-coupon-err">Coupon code is not a valid code.`)
	if n := len(e.orders(e.fx.Restaurant.ID)); n != 0 {
		t.Fatalf("%d orders placed by Apply", n)
	}
}

// TestBrowserCouponChangesTotal: in Chromium, typing a coupon at checkout
// changes the total (from the live quote) before anything is placed, and a
// bad code shows its error beside the field.
func TestBrowserCouponChangesTotal(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	ctx := browser(t)
	e := newEnv(t, "sqlite", func(d *Deps) { d.ImageURL = nil })
	srv := e.srv // the pages and the JSON API on one origin (newEnv)
	f := e.fx
	slug := f.Restaurant.Slug
	cart := `[{"item_id":` + itoa(f.Burger.ID) + `,"quantity":2,"modifier_ids":[` + itoa(f.Cheese.ID) + `,` + itoa(f.Large.ID) + `]},{"item_id":` + itoa(f.Fries.ID) + `,"quantity":1,"modifier_ids":[]}]`
	text := func(sel string) string {
		return eval[string](t, ctx, `(document.querySelector('`+sel+`') || {}).textContent || ''`)
	}
	waitText := func(sel, want string) {
		t.Helper()
		deadline := time.Now().Add(stepTimeout)
		for text(sel) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s says %q, want %q", sel, text(sel), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	run(t, ctx,
		chromedp.Navigate(srv.URL+"/r/"+slug),
		chromedp.Evaluate[chromedp.Void](`localStorage.setItem('ladle.cart.`+slug+`', '`+strings.ReplaceAll(cart, `'`, `\'`)+`')`),
		chromedp.Navigate(srv.URL+"/r/"+slug+"/checkout"),
		chromedp.WaitVisible(chromedp.CSS(`[data-checkout-form]`)),
	)
	waitText(`[data-cart-total]`, "$33.53")
	run(t, ctx, chromedp.SendKeys(chromedp.CSS(`#f-coupon`), "save10"))
	// 30.97 − 3.10 = 27.87 + 8.25 % tax 2.30 = 30.17.
	waitText(`[data-cart-total]`, "$30.17")
	waitText(`[data-cart-discount]`, "−$3.10")
	waitText(`[data-coupon-result]`, "SAVE10 applied: −$3.10")
	run(t, ctx, chromedp.SendKeys(chromedp.CSS(`#f-tip`), "2"))
	waitText(`[data-cart-total]`, "$32.17")
	eval[bool](t, ctx, `(() => { const f = document.querySelector('#f-coupon'); f.value = ''; f.dispatchEvent(new Event('input', {bubbles: true})); return true })()`)
	run(t, ctx, chromedp.SendKeys(chromedp.CSS(`#f-coupon`), "NOPE"))
	waitText(`#f-coupon-live-err`, "Coupon: is not a valid code.")
	waitText(`[data-cart-total]`, "$35.53")
	if eval[bool](t, ctx, `!document.querySelector('[data-cart-discount-row]').hidden`) {
		t.Fatal("the discount row stays after the coupon went bad")
	}
	if n := len(e.orders(f.Restaurant.ID)); n != 0 {
		t.Fatalf("%d orders placed while typing", n)
	}
}
