package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/payment/paymenttest"
	"github.com/ladle-dev/ladle/internal/storetest"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestCheckoutPage(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		res := e.client().get(e.checkoutPath())
		res.want(t, http.StatusOK,
			`<label for="f-name">Name</label>`, `<label for="f-email">Email`, `<label for="f-phone">Phone`,
			`name="pickup"`, `<option value="asap" selected>As soon as possible</option>`,
			`name="coupon"`, `name="tip"`, `name="marketing" value="1"`,
			`name="payment" value="card" checked`, `name="payment" value="pay_at_pickup"`,
			`name="card_token" value="tok_visa"`, `name="cart" value="[]"`,
			`data-key-mode="keep"`, `data-fresh="1"`,
			"Place order", "Placing your order…",
			`<script type="application/json" id="menu-data">`,
		)
		if key := res.field(t, "idempotency_key"); !uuidRE.MatchString(key) {
			t.Errorf("idempotency_key %q is not a UUID", key)
		}
		if res.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", res.header.Get("Cache-Control"))
		}
		// Pickup slots are in the restaurant's time zone, sent as UTC.
		if !regexp.MustCompile(`<option value="\d{4}-\d\d-\d\dT\d\d:\d\d:00Z">(Today|Tomorrow) \d{1,2}:\d\d [AP]M</option>`).MatchString(res.body) {
			t.Errorf("no pickup slots:\n%s", res.body)
		}
	})
}

func TestCheckoutPlacesOrder(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		key := newKey()
		form := e.checkoutForm("ada@example.com", key)
		form.Set("tip", "2.50")
		form.Set("coupon", "save10")
		form.Set("marketing", "1")
		res := c.post(e.checkoutPath(), form)
		res.want(t, http.StatusSeeOther)
		loc := res.header.Get("Location")
		if !regexp.MustCompile(`^/orders/[0-9a-f-]{36}\?token=[A-Za-z0-9_-]+&placed=1$`).MatchString(loc) {
			t.Fatalf("Location %q", loc)
		}

		orders := e.orders(e.fx.Restaurant.ID)
		if len(orders) != 1 {
			t.Fatalf("%d orders, want 1", len(orders))
		}
		o := orders[0]
		if o.Status != ladle.StatusPlaced || o.PaymentStatus != ladle.PaymentCaptured || o.Tip != 250 ||
			o.CouponCode != "SAVE10" || !o.MarketingOptIn || o.Customer.Name != "Ada Lovelace" || len(o.Lines) != 2 {
			t.Fatalf("order as stored: %+v", o)
		}
		if n := paymenttest.Charges(t, e.pay); n != 1 {
			t.Fatalf("%d charges, want 1", n)
		}

		// The status page.
		page := c.get(loc)
		page.want(t, http.StatusOK,
			"Thanks! Your order #"+itoa(o.Number)+" is placed",
			"2×", "Burger", "Large, Cheese", "Fries",
			formatMoney(storetest.RequestSubtotal, "USD"),
			"Discount (SAVE10)", "-"+formatMoney(o.Discount, "USD"),
			formatMoney(o.Tax, "USD"), "$2.50", formatMoney(o.Total, "USD"),
			"Paid by card.", `data-from-checkout="placed"`, `data-slug="`+e.fx.Restaurant.Slug+`"`,
		)
		if page.header.Get("Cache-Control") != "no-store" {
			t.Errorf("status page Cache-Control %q", page.header.Get("Cache-Control"))
		}
		// Without placed=1 (a link opened later) the page leaves the cart alone.
		later := c.get(strings.TrimSuffix(loc, "&placed=1"))
		later.want(t, http.StatusOK, "is placed")
		later.wantNot(t, "data-from-checkout")
	})
}

func TestCheckoutSameKeyTwiceIsOneOrder(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		form := e.checkoutForm("twice@example.com", newKey())
		first := c.post(e.checkoutPath(), form)
		first.want(t, http.StatusSeeOther)
		second := c.post(e.checkoutPath(), form) // a reload of the POST, a double submit
		second.want(t, http.StatusSeeOther)
		if first.header.Get("Location") != second.header.Get("Location") {
			t.Fatalf("replay went elsewhere: %q vs %q", first.header.Get("Location"), second.header.Get("Location"))
		}
		if n := len(e.orders(e.fx.Restaurant.ID)); n != 1 {
			t.Fatalf("%d orders, want 1", n)
		}
		if n := paymenttest.Charges(t, e.pay); n != 1 {
			t.Fatalf("%d charges, want 1", n)
		}
	})
}

func TestCheckoutWhileFirstAttemptInFlight(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		e.pay.SetDelay(time.Second)
		c := e.client()
		form := e.checkoutForm("inflight@example.com", newKey())

		var wg sync.WaitGroup
		var first *response
		wg.Go(func() { first = c.post(e.checkoutPath(), form) })
		// The charge call is made once the order row exists and the key is
		// locked; then the provider holds it for a second.
		waitFor(t, func() bool { return paymenttest.Calls(t, e.pay) == 1 })

		second := c.post(e.checkoutPath(), form)
		second.want(t, http.StatusConflict, "Still placing your order…", `data-retry="1"`, "Check again")
		again := second.hiddenFields()
		if again.Get("idempotency_key") != form.Get("idempotency_key") || again.Get("cart") != form.Get("cart") ||
			again.Get("email") != form.Get("email") || again.Get("attempt") != "1" {
			t.Fatalf("the retry form does not repeat the attempt: %v", again)
		}

		wg.Wait()
		first.want(t, http.StatusSeeOther)
		// The page's automatic re-post joins the finished first attempt.
		third := c.post(e.checkoutPath(), again)
		third.want(t, http.StatusSeeOther)
		if third.header.Get("Location") != first.header.Get("Location") {
			t.Fatalf("retry went to %q, first to %q", third.header.Get("Location"), first.header.Get("Location"))
		}
		if n := len(e.orders(e.fx.Restaurant.ID)); n != 1 {
			t.Fatalf("%d orders, want 1", n)
		}
		if n := paymenttest.Charges(t, e.pay); n != 1 {
			t.Fatalf("%d charges, want 1", n)
		}
	})
}

func TestCheckoutPossibleDuplicate(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		first := c.post(e.checkoutPath(), e.checkoutForm("dup@example.com", newKey()))
		first.want(t, http.StatusSeeOther)
		existing := strings.TrimSuffix(first.header.Get("Location"), "&placed=1")

		// A new attempt (new key) with the same content.
		key2 := newKey()
		form := e.checkoutForm("dup@example.com", key2)
		form.Set("tip", "1") // tip and payment are not part of "the same order"
		res := c.post(e.checkoutPath(), form)
		res.want(t, http.StatusConflict,
			`<dialog id="duplicate-dialog"`, "It looks like you just placed this order",
			`data-open-existing>Open my existing order`,
			`form="checkout-form" name="confirm_duplicate" value="1"`, "Place it again",
			`data-key-mode="rotate"`, `value="Ada Lovelace"`, `value="dup@example.com"`, `name="tip" value="1"`,
		)
		// The page names nothing of the similar order (it may be someone
		// else's): no id, no link, no access token.
		existingID := strings.TrimPrefix(strings.Split(existing, "?")[0], "/orders/")
		existingToken := e.svc.AccessToken(existingID)
		if body := string(res.body); strings.Contains(body, existingID) || strings.Contains(body, existingToken) ||
			strings.Contains(body, url.QueryEscape(existingToken)) {
			t.Fatalf("the duplicate page reveals order %s or its token", existingID)
		}
		key3 := res.field(t, "idempotency_key")
		if key3 == key2 || !uuidRE.MatchString(key3) {
			t.Fatalf("duplicate re-render key %q (posted %q): want a fresh one", key3, key2)
		}
		if n := len(e.orders(e.fx.Restaurant.ID)); n != 1 {
			t.Fatalf("%d orders after the duplicate, want 1", n)
		}

		// "Place it again": the browser sends the hidden 0 and the button's 1.
		again := e.checkoutForm("dup@example.com", key3)
		again.Set("tip", "1")
		again.Add("confirm_duplicate", "1")
		placed := c.post(e.checkoutPath(), again)
		placed.want(t, http.StatusSeeOther)
		if placed.header.Get("Location") == first.header.Get("Location") {
			t.Fatal("placing again went to the first order")
		}
		if n := len(e.orders(e.fx.Restaurant.ID)); n != 2 {
			t.Fatalf("%d orders, want 2", n)
		}
	})
}

func TestCheckoutDeclinedCard(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		key := newKey()
		form := e.checkoutForm("declined@example.com", key)
		form.Set("card_token", payment.TokenDecline)
		form.Set("coupon", "SAVE10")
		res := c.post(e.checkoutPath(), form)
		res.want(t, http.StatusPaymentRequired, "declined", `data-key-mode="rotate"`,
			"This card was declined.", `value="declined@example.com"`, `name="coupon" value="SAVE10"`)
		newK := res.field(t, "idempotency_key")
		if newK == key {
			t.Fatal("the key was not rotated after a decline")
		}
		if paymenttest.Charges(t, e.pay) != 0 {
			t.Fatal("a declined card shows a charge")
		}
		// Same key again replays the decline (nothing new is tried).
		c.post(e.checkoutPath(), form).want(t, http.StatusPaymentRequired, "declined")
		if paymenttest.Calls(t, e.pay) != 1 {
			t.Fatalf("%d provider calls, want 1", paymenttest.Calls(t, e.pay))
		}

		// Another card under the new key goes through: the decline released
		// the duplicate fingerprint and the coupon.
		form.Set("card_token", payment.TokenVisa)
		form.Set("idempotency_key", newK)
		c.post(e.checkoutPath(), form).want(t, http.StatusSeeOther)
		if n := paymenttest.Charges(t, e.pay); n != 1 {
			t.Fatalf("%d charges, want 1", n)
		}
	})
}

func TestCheckoutValidationKeepsTheForm(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()

		// Checked by the domain: each message lands on its field.
		key := newKey()
		form := e.checkoutForm("not-an-email", key)
		form.Set("name", "")
		form.Set("phone", "12")
		form.Set("coupon", "SAVE10")
		form.Set("tip", "3")
		res := c.post(e.checkoutPath(), form)
		res.want(t, http.StatusUnprocessableEntity,
			"Please check the highlighted fields.",
			`<p class="field-error" id="f-name-err">Name is required.</p>`,
			`<p class="field-error" id="f-email-err">Email is not a valid email address.</p>`,
			`id="f-phone-err">Phone is not a valid phone number.</p>`,
			`value="not-an-email"`, `name="coupon" value="SAVE10"`, `name="tip" value="3"`,
			`aria-invalid="true"`,
		)
		if res.field(t, "cart") != form.Get("cart") {
			t.Error("the cart was lost")
		}

		// Checked by the form itself: the tip and the cart.
		form = e.checkoutForm("valid@example.com", newKey())
		form.Set("tip", "two dollars")
		res = c.post(e.checkoutPath(), form)
		res.want(t, http.StatusUnprocessableEntity, "Enter the tip as an amount, like 2.50.", `name="tip" value="two dollars"`)

		form = e.checkoutForm("valid@example.com", newKey())
		form.Set("cart", "[]")
		c.post(e.checkoutPath(), form).want(t, http.StatusUnprocessableEntity, "Your cart is empty.")
		form.Set("cart", `{"bad"`)
		c.post(e.checkoutPath(), form).want(t, http.StatusUnprocessableEntity, "Your cart could not be read.")

		// A modifier that breaks the group rule (two sizes).
		form = e.checkoutForm("valid@example.com", newKey())
		form.Set("cart", `[{"item_id":`+itoa(e.fx.Burger.ID)+`,"quantity":1,"modifier_ids":[`+itoa(e.fx.Small.ID)+`,`+itoa(e.fx.Large.ID)+`]}]`)
		c.post(e.checkoutPath(), form).want(t, http.StatusUnprocessableEntity, `id="cart-error"`, "choose exactly 1 from Size")

		if n := len(e.orders(e.fx.Restaurant.ID)); n != 0 {
			t.Fatalf("%d orders after invalid forms, want 0", n)
		}
		// A fixed form with the first key now goes through.
		form = e.checkoutForm("valid@example.com", key)
		c.post(e.checkoutPath(), form).want(t, http.StatusSeeOther)
	})
}

func TestCheckoutSoldOutItem(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		form := e.checkoutForm("soldout@example.com", newKey())
		form.Set("cart", `[{"item_id":`+itoa(e.fx.VeggieBurger.ID)+`,"quantity":1,"modifier_ids":[`+itoa(e.fx.Small.ID)+`]}]`)
		res := e.client().post(e.checkoutPath(), form)
		res.want(t, http.StatusConflict, "Veggie Burger is sold out", `data-sold-out="`+itoa(e.fx.VeggieBurger.ID)+`"`,
			`data-key-mode="rotate"`)
		if n := len(e.orders(e.fx.Restaurant.ID)); n != 0 {
			t.Fatalf("%d orders, want 0", n)
		}
	})
}

func TestCheckoutBadCoupon(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		form := e.checkoutForm("coupon@example.com", newKey())
		form.Set("coupon", "NOPE")
		res := e.client().post(e.checkoutPath(), form)
		res.want(t, http.StatusConflict, `id="f-coupon-err"`, "Your coupon could not be applied.", `name="coupon" value="NOPE"`)
		if n := len(e.orders(e.fx.Restaurant.ID)); n != 0 {
			t.Fatalf("%d orders, want 0", n)
		}
	})
}

func TestCheckoutKeyReusedForAnotherOrder(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		key := newKey()
		c.post(e.checkoutPath(), e.checkoutForm("reuse@example.com", key)).want(t, http.StatusSeeOther)
		changed := e.checkoutForm("reuse@example.com", key)
		changed.Set("cart", `[{"item_id":`+itoa(e.fx.Soda.ID)+`,"quantity":3,"modifier_ids":[]}]`)
		res := c.post(e.checkoutPath(), changed)
		res.want(t, http.StatusUnprocessableEntity, "Your order changed while an earlier attempt", `data-key-mode="rotate"`)
		if res.field(t, "idempotency_key") == key {
			t.Fatal("key not rotated")
		}
		if n := len(e.orders(e.fx.Restaurant.ID)); n != 1 {
			t.Fatalf("%d orders, want 1", n)
		}
	})
}

func TestCheckoutWithoutKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	form := e.checkoutForm("nokey@example.com", "")
	res := e.client().post(e.checkoutPath(), form)
	res.want(t, http.StatusBadRequest, "place it again", `value="nokey@example.com"`)
	if !uuidRE.MatchString(res.field(t, "idempotency_key")) {
		t.Fatal("no fresh key")
	}
	if n := len(e.orders(e.fx.Restaurant.ID)); n != 0 {
		t.Fatalf("%d orders, want 0", n)
	}
}

func TestCheckoutPaymentPendingResumes(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		form := e.checkoutForm("timeout@example.com", newKey())
		form.Set("card_token", payment.TokenTimeout) // the provider charges, then loses the answer
		res := c.post(e.checkoutPath(), form)
		res.want(t, http.StatusServiceUnavailable, "Confirming your payment…", "Check again")
		if res.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		again := res.hiddenFields()
		if again.Get("idempotency_key") != form.Get("idempotency_key") {
			t.Fatal("the retry does not keep the key")
		}
		c.post(e.checkoutPath(), again).want(t, http.StatusSeeOther)
		if n := paymenttest.Charges(t, e.pay); n != 1 {
			t.Fatalf("%d charges, want 1", n)
		}
		if n := len(e.orders(e.fx.Restaurant.ID)); n != 1 {
			t.Fatalf("%d orders, want 1", n)
		}
	})
}

func TestCheckoutPayAtPickup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	form := e.checkoutForm("pickup@example.com", newKey())
	form.Set("payment", "pay_at_pickup") // the card field still holds tok_visa: ignored
	res := e.client().post(e.checkoutPath(), form)
	res.want(t, http.StatusSeeOther)
	page := e.client().get(res.header.Get("Location"))
	page.want(t, http.StatusOK, "is placed", "when you pick it up")
	if paymenttest.Calls(t, e.pay) != 0 {
		t.Fatal("pay at pickup called the card provider")
	}
}

func TestCheckoutScheduledPickup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	// 2030-06-15 14:00 UTC is 10:00 in New York.
	e.clock.Set(time.Date(2030, 6, 15, 14, 0, 0, 0, time.UTC))
	page := e.client().get(e.checkoutPath())
	page.want(t, http.StatusOK, `<option value="2030-06-15T14:30:00Z">Today 10:30 AM</option>`)
	form := e.checkoutForm("later@example.com", newKey())
	form.Set("pickup", "2030-06-15T14:30:00Z")
	res := e.client().post(e.checkoutPath(), form)
	res.want(t, http.StatusSeeOther)
	e.client().get(res.header.Get("Location")).want(t, http.StatusOK, "10:30 AM")

	form = e.checkoutForm("past@example.com", newKey())
	form.Set("pickup", "2030-06-15T10:00:00Z")
	e.client().post(e.checkoutPath(), form).want(t, http.StatusUnprocessableEntity, `id="f-pickup-err">Pickup time is in the past.`,
		`<option value="2030-06-15T10:00:00Z" selected>`)
}

func TestCheckoutCrossOriginRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	c := e.client()
	form := e.checkoutForm("csrf@example.com", newKey())
	c.post(e.checkoutPath(), form, "Sec-Fetch-Site", "cross-site").want(t, http.StatusForbidden, "Request refused")
	c.post(e.checkoutPath(), form, "Origin", "https://evil.example").want(t, http.StatusForbidden)
	if n := len(e.orders(e.fx.Restaurant.ID)); n != 0 {
		t.Fatalf("%d orders after cross-origin posts, want 0", n)
	}
	// The same form from the page itself goes through.
	c.post(e.checkoutPath(), form, "Sec-Fetch-Site", "same-origin", "Origin", e.srv.URL).want(t, http.StatusSeeOther)
}

func TestOrderPageNeedsItsToken(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		o := e.place(e.fx.Restaurant, e.request("token@example.com"))
		c := e.client()
		good := e.svc.AccessToken(o.ID)
		c.get("/orders/"+o.ID+"?token="+url.QueryEscape(good)).want(t, http.StatusOK, "Thanks! Your order #"+itoa(o.Number)+" is placed")
		for _, p := range []string{
			"/orders/" + o.ID,
			"/orders/" + o.ID + "?token=wrong",
			"/orders/" + o.ID + "?token=" + url.QueryEscape(e.svc.AccessToken(newKey())),
			"/orders/" + newKey() + "?token=" + url.QueryEscape(good),
		} {
			c.get(p).want(t, http.StatusNotFound, "Page not found")
		}
	})
}

func TestOrderPageFollowsStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	o := e.place(e.fx.Restaurant, e.request("follow@example.com"))
	path := "/orders/" + o.ID + "?token=" + url.QueryEscape(e.svc.AccessToken(o.ID))
	c := e.client()
	c.get(path).want(t, http.StatusOK, `<meta http-equiv="refresh" content="30">`, `class="step current" aria-current="step">Placed`)
	for _, to := range []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady} {
		if _, err := e.store.SetOrderStatus(t.Context(), e.fx.Restaurant.ID, o.ID, to, "", 0, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c.get(path).want(t, http.StatusOK, "is ready for pickup", `class="step done">Placed`, `aria-current="step">Ready for pickup`)
	if _, err := e.store.SetOrderStatus(t.Context(), e.fx.Restaurant.ID, o.ID, ladle.StatusCancelled, "Kitchen fire", 0, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	res := c.get(path)
	res.want(t, http.StatusOK, "was cancelled", "Kitchen fire")
	res.wantNot(t, "http-equiv=\"refresh\"")
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in %v", stepTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCheckoutBodyIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	form := e.checkoutForm("big@example.com", newKey())
	form.Set("cart", "["+strings.Repeat(`{"item_id":1,"quantity":1,"modifier_ids":[]},`, 2000)+"]")
	e.client().post(e.checkoutPath(), form).want(t, http.StatusRequestEntityTooLarge, "too large")
	if n := len(e.orders(e.fx.Restaurant.ID)); n != 0 {
		t.Fatalf("%d orders, want 0", n)
	}
}
