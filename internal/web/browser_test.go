package web

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ladle-dev/ladle/internal/payment/paymenttest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// stepTimeout bounds one step of a browser test (the actions given to run,
// one evaluation, one wait for a condition). It is no promise of the
// product's: it only ends a test that hangs. CI runs every package's tests
// at once on two cores, where Chromium gets a small share of a CPU and a
// login, a page load or two can take tens of seconds.
const stepTimeout = 2 * time.Minute

// expectedStatus matches the console line of a page the tests expect to be
// answered with a 4xx (a re-rendered form, the "still placing" page).
var expectedStatus = regexp.MustCompile(`Failed to load resource: the server responded with a status of (402|409|422)`)

// browser starts headless Chromium for the test, or skips it when none is
// installed. It returns a chromedp context (one tab) and collects console
// errors and uncaught exceptions, which fail the test at the end.
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := testenv.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// Chromium starting on a loaded machine can be slow to say where
		// its DevTools listen (the default gives up after 20 s).
		chromedp.WSURLReadTimeout(stepTimeout),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })

	var mu sync.Mutex
	var problems []string
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			// Pages answered 402/409/422 (a re-rendered checkout, still
			// placing) are logged as failed loads, and a reload that
			// replaces an in-flight post as an aborted one: both are the
			// point of the test.
			expected := strings.Contains(m.Text, "ERR_ABORTED") || expectedStatus.MatchString(m.Text)
			if m.IsException() || (m.Type == chromedp.ConsoleError && !expected) {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("browser console: %s", p)
		}
	})
	return ctx
}

// run runs the steps in order within stepTimeout. A failure names the step
// and the page the tab was on.
func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	for i, step := range steps {
		if err := chromedp.Do(tctx, step); err != nil {
			lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
			where, _ := chromedp.Run(lctx, chromedp.Evaluate[string](`location.href + ' (' + document.readyState + ')'`))
			lcancel()
			t.Fatalf("step %d of %d: %v; the tab is at %s", i+1, len(steps), err, where)
		}
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("LADLE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Sticky headers land mid-page in a full-page capture of a scrolled page.
	eval[bool](t, ctx, `window.scrollTo(0, 0), true`)
	tctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// TestBrowserCheckoutIsOneOrder is the guest's whole path in a real browser:
// menu, modifiers, cart, checkout, an impatient guest, a reload, and the
// duplicate dialog.
func TestBrowserCheckoutIsOneOrder(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	ctx := browser(t)
	e := newEnv(t, "sqlite", func(d *Deps) { d.ImageURL = nil })
	f := e.fx
	menuURL := e.srv.URL + "/r/" + f.Restaurant.Slug
	burgerForm := `form[data-item-id="` + itoa(f.Burger.ID) + `"]`

	addItems := func() {
		t.Helper()
		run(t, ctx,
			chromedp.Navigate(menuURL),
			// Burger has options: they open in the item dialog.
			chromedp.WaitVisible(chromedp.CSS(`[data-open-item="`+itoa(f.Burger.ID)+`"]`)),
			chromedp.Click(chromedp.CSS(`[data-open-item="`+itoa(f.Burger.ID)+`"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#item-dialog `+burgerForm)),
			// Burger: Large, with cheese, two of them.
			chromedp.Click(chromedp.CSS(burgerForm+` input[value="`+itoa(f.Large.ID)+`"]`)),
			chromedp.Click(chromedp.CSS(burgerForm+` input[value="`+itoa(f.Cheese.ID)+`"]`)),
			chromedp.SetValue(chromedp.CSS(burgerForm+` input[name="quantity"]`), "2"),
			chromedp.Click(chromedp.CSS(burgerForm+` button[type="submit"]`)),
			chromedp.WaitNotVisible(chromedp.CSS(`#item-dialog`)),
			// Fries, one.
			chromedp.Click(chromedp.CSS(`form[data-item-id="`+itoa(f.Fries.ID)+`"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-cart-totals]`)),
		)
	}
	fillContact := func() {
		t.Helper()
		run(t, ctx,
			chromedp.WaitVisible(chromedp.CSS(`[data-checkout-form]`)),
			chromedp.SendKeys(chromedp.CSS(`#f-name`), "Grace Hopper"),
			chromedp.SendKeys(chromedp.CSS(`#f-email`), "grace@example.com"),
			chromedp.SendKeys(chromedp.CSS(`#f-phone`), "+1 555 010 0142"),
		)
	}
	waitSuccess := func(n int) {
		t.Helper()
		run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`[data-success]`)))
		h1 := eval[string](t, ctx, `document.querySelector('[data-success]').textContent`)
		if want := "Thanks! Your order #" + itoa(int64(n)) + " is placed"; h1 != want {
			t.Fatalf("status page says %q, want %q", h1, want)
		}
	}

	// The storefront: a sold-out item cannot be added; the cart prices the
	// lines from the menu.
	addItems()
	if n := eval[int](t, ctx, `document.querySelectorAll('#item-`+itoa(f.VeggieBurger.ID)+` form').length`); n != 0 {
		t.Fatal("the sold-out item has an add form")
	}
	// A required group cannot be left empty: Extras is optional, Size has a
	// default; the quantity is checked.
	cart := eval[string](t, ctx, `JSON.stringify([...document.querySelectorAll('[data-cart] .cart-line')].map(li => li.textContent.replace(/\s+/g, ' ').trim()))`)
	for _, want := range []string{"2×BurgerLarge, Cheese$26.98", "1×Fries$3.99"} {
		if !strings.Contains(strings.ReplaceAll(cart, " ", ""), strings.ReplaceAll(want, " ", "")) {
			t.Fatalf("cart lines %s, want one like %q", cart, want)
		}
	}
	if sub := eval[string](t, ctx, `document.querySelector('[data-cart] [data-cart-subtotal]').textContent`); sub != "$30.97" {
		t.Fatalf("cart subtotal %q, want $30.97", sub)
	}
	screenshot(t, ctx, "storefront.png")

	// Checkout.
	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-checkout-link]`)))
	fillContact()
	cartField := eval[string](t, ctx, `document.querySelector('input[name=cart]').value`)
	wantCart := `[{"item_id":` + itoa(f.Burger.ID) + `,"quantity":2,"modifier_ids":[` + itoa(f.Large.ID) + `,` + itoa(f.Cheese.ID) + `]},{"item_id":` + itoa(f.Fries.ID) + `,"quantity":1,"modifier_ids":[]}]`
	if f.Cheese.ID < f.Large.ID {
		wantCart = strings.Replace(wantCart, itoa(f.Large.ID)+`,`+itoa(f.Cheese.ID), itoa(f.Cheese.ID)+`,`+itoa(f.Large.ID), 1)
	}
	if cartField != wantCart {
		t.Fatalf("cart field %s, want %s", cartField, wantCart)
	}
	key := eval[string](t, ctx, `document.querySelector('input[name=idempotency_key]').value`)
	if !uuidRE.MatchString(key) || eval[string](t, ctx, `sessionStorage.getItem('ladle.checkout-key.`+f.Restaurant.Slug+`')`) != key {
		t.Fatalf("checkout key %q not kept in sessionStorage", key)
	}
	if total := eval[string](t, ctx, `document.querySelector('[data-cart-total]').textContent`); total != "$33.53" {
		t.Fatalf("checkout total %q, want $33.53", total)
	}

	// The impatient guest: four quick clicks while the card charge takes a
	// second.
	e.pay.SetDelay(time.Second)
	state := eval[string](t, ctx, `(() => {
		const b = document.querySelector('[data-place-order]');
		for (let i = 0; i < 4; i++) b.click();
		return [b.disabled, b.textContent, document.querySelector('[data-progress]').hidden].join('|');
	})()`)
	if state != "true|Placing your order…|false" {
		t.Fatalf("after the clicks (disabled|label|progress hidden): %q", state)
	}
	waitFor(t, func() bool { return paymenttest.Calls(t, e.pay) == 1 }) // the first post is charging now

	// Reload the checkout page while it is in flight, and submit again.
	run(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`[data-checkout-form]`)))
	if again := eval[string](t, ctx, `document.querySelector('input[name=idempotency_key]').value`); again != key {
		t.Fatalf("after the reload the key is %q, want the same attempt %q", again, key)
	}
	if name := eval[string](t, ctx, `document.querySelector('#f-name').value`); name != "Grace Hopper" {
		t.Fatalf("after the reload the name is %q: the draft was not restored", name)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-place-order]`)))
	waitSuccess(1)

	if n := len(e.orders(f.Restaurant.ID)); n != 1 {
		t.Fatalf("%d orders, want exactly 1", n)
	}
	if n := paymenttest.Charges(t, e.pay); n != 1 {
		t.Fatalf("%d charges, want exactly 1", n)
	}
	if calls := paymenttest.Calls(t, e.pay); calls != 1 {
		t.Fatalf("%d provider calls, want 1", calls)
	}
	cleared := eval[string](t, ctx, `[localStorage.getItem('ladle.cart.`+f.Restaurant.Slug+`'), sessionStorage.getItem('ladle.checkout-key.`+f.Restaurant.Slug+`'), location.search.includes('placed')].join('|')`)
	if cleared != "||false" {
		t.Fatalf("after placing (cart|key|placed in URL): %q", cleared)
	}

	// A new attempt with the same content: the duplicate dialog.
	e.pay.SetDelay(0)
	addItems()
	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-checkout-link]`)))
	fillContact()
	if k := eval[string](t, ctx, `document.querySelector('input[name=idempotency_key]').value`); k == key {
		t.Fatal("the new attempt reuses the placed order's key")
	}
	run(t, ctx,
		chromedp.Click(chromedp.CSS(`[data-place-order]`)),
		chromedp.WaitVisible(chromedp.CSS(`#duplicate-dialog`)),
	)
	if modal := eval[bool](t, ctx, `document.querySelector('#duplicate-dialog').matches(':modal')`); !modal {
		t.Error("the duplicate dialog is not modal")
	}
	text := eval[string](t, ctx, `document.querySelector('#duplicate-dialog').textContent`)
	for _, want := range []string{"It looks like you just placed this order", "Open my existing order", "Place it again"} {
		if !strings.Contains(text, want) {
			t.Fatalf("dialog text %q lacks %q", text, want)
		}
	}
	href := eval[string](t, ctx, `document.querySelector('[data-open-existing]').getAttribute('href')`)
	if o := e.orders(f.Restaurant.ID)[0]; !strings.HasPrefix(href, "/orders/"+o.ID+"?token=") {
		t.Fatalf("'Open my existing order' goes to %q, want order %s", href, o.ID)
	}
	screenshot(t, ctx, "duplicate-dialog.png")

	run(t, ctx, chromedp.Click(chromedp.CSS(`[data-place-again]`)))
	waitSuccess(2)
	if n := len(e.orders(f.Restaurant.ID)); n != 2 {
		t.Fatalf("%d orders, want 2", n)
	}
	if n := paymenttest.Charges(t, e.pay); n != 2 {
		t.Fatalf("%d charges, want 2", n)
	}
	screenshot(t, ctx, "order-status.png")
}

// TestBrowserStaffBoard signs in through the form, works an order on the
// board, and takes a phone-sized look at the storefront.
func TestBrowserStaffBoard(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	ctx := browser(t)
	e := newEnv(t, "sqlite", func(d *Deps) { d.ImageURL = nil })
	first := e.place(e.fx.Restaurant, e.request("board-1@example.com"))
	req := e.request("board-2@example.com")
	req.Customer.Name = "Linus Pauling"
	req.Lines = req.Lines[1:]
	second := e.place(e.fx.Restaurant, req)

	// The storefront on a phone.
	run(t, ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(e.srv.URL+"/r/"+e.fx.Restaurant.Slug),
		chromedp.WaitVisible(chromedp.CSS(`form[data-item-id="`+itoa(e.fx.Fries.ID)+`"]`)),
		chromedp.Click(chromedp.CSS(`form[data-item-id="`+itoa(e.fx.Fries.ID)+`"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-cart-bar]`)),
	)
	if bar := eval[string](t, ctx, `document.querySelector('[data-cart-bar]').textContent.replace(/\s+/g, ' ').trim()`); bar != "View cart · 1 item · $3.99" {
		t.Errorf("mobile cart bar %q", bar)
	}
	screenshot(t, ctx, "storefront-mobile.png")
	run(t, ctx, chromedp.EmulateViewport(1280, 900))

	board := e.srv.URL + "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders"
	run(t, ctx,
		chromedp.Navigate(board),
		chromedp.WaitVisible(chromedp.CSS(`#l-email`)),
		chromedp.SendKeys(chromedp.CSS(`#l-email`), e.staffA.Email),
		chromedp.SendKeys(chromedp.CSS(`#l-password`), staffPassword),
		chromedp.Click(chromedp.CSS(`.login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#order-`+first.ID)),
	)
	if loc := eval[string](t, ctx, `location.href`); loc != board {
		t.Fatalf("after login at %q, want the board", loc)
	}
	run(t, ctx,
		chromedp.Click(chromedp.CSS(`#order-`+first.ID+` .ticket-actions button.button`)), // Accept
		chromedp.WaitVisible(chromedp.CSS(`#order-`+first.ID+`.status-accepted`)),
		// Cancel the second one, with a reason.
		chromedp.Click(chromedp.CSS(`#order-`+second.ID+` details.cancel summary`)),
		chromedp.SendKeys(chromedp.CSS(`#reason-`+second.ID), "Out of fries"),
		chromedp.Click(chromedp.CSS(`#order-`+second.ID+` button.danger`)),
		chromedp.WaitVisible(chromedp.CSS(`#order-`+second.ID+`.status-cancelled`)),
	)
	if got := e.order(e.fx.Restaurant.ID, first.ID); got.Status != "accepted" {
		t.Fatalf("first order %s, want accepted", got.Status)
	}
	if got := e.order(e.fx.Restaurant.ID, second.ID); got.Status != "cancelled" || got.CancelReason != "Out of fries" {
		t.Fatalf("second order %s %q", got.Status, got.CancelReason)
	}
	screenshot(t, ctx, "staff-board.png")
}
