package web

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// Browser tests of the storefront's layout and accessibility: long text on
// the staff board, a checkout done with the keyboard alone, and axe-core's
// checks on the guest pages.

// staffLogin signs in through the login form and lands on next.
func staffLogin(t *testing.T, ctx context.Context, e *env, u *ladle.User, next string) {
	t.Helper()
	run(t, ctx,
		chromedp.Navigate(next),
		chromedp.WaitVisible(chromedp.CSS(`#l-email`)),
		chromedp.SendKeys(chromedp.CSS(`#l-email`), u.Email),
		chromedp.SendKeys(chromedp.CSS(`#l-password`), staffPassword),
		chromedp.Click(chromedp.CSS(`.login button[type="submit"]`)),
	)
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(50 * time.Millisecond) {
		loc := eval[string](t, ctx, `document.readyState === 'complete' ? location.href : ''`)
		if loc == next {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after signing in at %q, want %s", loc, next)
		}
	}
}

// overflow is what sticks out of the viewport: the page's scroll width
// beyond the window's, and every element whose right edge is past it.
const overflowJS = `(() => {
	const w = document.documentElement.clientWidth;
	// Inside a scrolling box (the section nav) is not past the page's edge.
	const clipped = el => { for (let p = el.parentElement; p; p = p.parentElement) {
		if (getComputedStyle(p).overflowX !== 'visible') return p.getBoundingClientRect().right <= w + 0.5; } return false; };
	const out = [...document.querySelectorAll('main *')]
		.filter(el => el.getBoundingClientRect().right > w + 0.5 && !clipped(el))
		.map(el => el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ').join('.') : ''));
	return JSON.stringify({scroll: document.documentElement.scrollWidth, width: w, out: out.slice(0, 8)});
})()`

type overflow struct {
	Scroll, Width int
	Out           []string
}

func checkOverflow(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	var o overflow
	if err := json.Unmarshal([]byte(eval[string](t, ctx, overflowJS)), &o); err != nil {
		t.Fatal(err)
	}
	if o.Scroll > o.Width || len(o.Out) > 0 {
		t.Errorf("%s: page scroll width %d > viewport %d, or elements past the edge: %v", where, o.Scroll, o.Width, o.Out)
	}
}

// TestBrowserBoardLongText: a 100-character name without a space and a
// 200-character note leave the board's four columns on screen, at desktop
// and phone widths.
func TestBrowserBoardLongText(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	ctx := browser(t)
	e := newEnv(t, "sqlite", func(d *Deps) { d.ImageURL = nil })
	req := e.request("long@example.com")
	req.Customer.Name = strings.Repeat("W", 100)
	req.Lines[0].Note = strings.Repeat("M", 200)
	long := e.place(e.fx.Restaurant, req)
	accepted := e.place(e.fx.Restaurant, e.request("second@example.com"))
	if _, err := e.store.SetOrderStatus(context.Background(), e.fx.Restaurant.ID, accepted.ID, ladle.StatusAccepted, "", 0, e.clock.Now()); err != nil {
		t.Fatal(err)
	}

	board := e.srv.URL + "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders"
	staffLogin(t, ctx, e, e.staffA, board)
	for _, vp := range []struct {
		w, h   int64
		mobile bool
	}{{1280, 900, false}, {390, 844, true}} {
		opts := []chromedp.EmulateViewportOption{}
		if vp.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		run(t, ctx, chromedp.EmulateViewport(vp.w, vp.h, opts...), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#order-`+long.ID)))
		where := itoa(vp.w) + " px"
		checkOverflow(t, ctx, where)
		// The four lanes: side by side at desktop width, stacked on a
		// phone, each inside the viewport.
		lanes := eval[string](t, ctx, `JSON.stringify([...document.querySelectorAll('.lane')].map(l => {
			const r = l.getBoundingClientRect(); return [Math.round(r.left), Math.round(r.right), Math.round(r.top)];
		}))`)
		var rects [][3]int
		if err := json.Unmarshal([]byte(lanes), &rects); err != nil || len(rects) != 4 {
			t.Fatalf("%s: lanes %s", where, lanes)
		}
		for i, r := range rects {
			if r[0] < 0 || r[1] > int(vp.w) {
				t.Errorf("%s: lane %d spans %d..%d, off screen", where, i, r[0], r[1])
			}
			if !vp.mobile && i > 0 && (r[0] <= rects[i-1][0] || r[2] != rects[0][2]) {
				t.Errorf("%s: lanes not side by side: %v", where, rects)
			}
			if !vp.mobile && r[1]-r[0] < 200 {
				t.Errorf("%s: lane %d is %d px wide: squeezed by its neighbour", where, i, r[1]-r[0])
			}
		}
		// The long name wraps inside its ticket instead of widening it.
		if h := eval[int](t, ctx, `document.querySelector('#order-`+long.ID+` .ticket-customer').getBoundingClientRect().height | 0`); h < 40 {
			t.Errorf("%s: the 100-character name is %d px tall: it does not wrap", where, h)
		}
		// The header stays one tidy block: sign-out on screen and not
		// taller than two rows.
		if hh := eval[int](t, ctx, `document.querySelector('.staff-header').getBoundingClientRect().height | 0`); hh > 110 {
			t.Errorf("%s: staff header is %d px tall", where, hh)
		}
	}
}

// tabTo presses Tab until the focused element matches sel.
func tabTo(t *testing.T, ctx context.Context, sel string, max int) {
	t.Helper()
	for range max {
		if eval[bool](t, ctx, `!!document.activeElement && document.activeElement.matches(`+jsString(sel)+`)`) {
			return
		}
		run(t, ctx, chromedp.KeyEvent(kb.Tab))
	}
	t.Fatalf("%d presses of Tab never reached %s (focus on %s)", max, sel, eval[string](t, ctx, `document.activeElement.outerHTML.slice(0, 120)`))
}

// evalSoon polls the boolean js until it holds or stepTimeout passes, and
// returns its last value: for state the page sets a task or a frame after
// the step that causes it (a dialog's close event, a timer).
func evalSoon(t *testing.T, ctx context.Context, js string) bool {
	t.Helper()
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(20 * time.Millisecond) {
		if eval[bool](t, ctx, js) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func typeKeys(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	run(t, ctx, chromedp.KeyEvent(text))
}

// TestBrowserKeyboardCheckout orders with Tab, Enter and Space only: from
// the menu through the item dialog (focus moves into it, stays in it, and
// returns to the button that opened it; Escape closes it) to the placed
// order.
// The item dialog opens again at once after it closed: closing hides it
// at once, and the browser gives the focus back to the opener, but the
// close event (which puts the form back) comes a task later. An Enter on
// the opener in between used to be ignored (the dialog was still "in
// use"), and TestBrowserKeyboardCheckout timed out on a loaded machine.
func TestBrowserItemDialogReopensAtOnce(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	ctx := browser(t)
	e := newEnv(t, "sqlite", func(d *Deps) { d.ImageURL = nil })
	open := `[data-open-item="` + itoa(e.fx.Burger.ID) + `"]`
	run(t, ctx, chromedp.Navigate(e.srv.URL+"/r/"+e.fx.Restaurant.Slug), chromedp.WaitVisible(chromedp.CSS(open)))
	run(t, ctx, chromedp.Click(chromedp.CSS(open)), chromedp.WaitVisible(chromedp.CSS(`#item-dialog`)))
	// Closed and opened again in one task: the close event has not run.
	if !eval[bool](t, ctx, `(() => { const d = document.querySelector('#item-dialog'); d.close();
		document.querySelector(`+jsString(open)+`).click(); return d.open; })()`) {
		t.Fatal("the dialog did not open again right after it closed")
	}
	// Once the late close event has run, the dialog still holds the form.
	time.Sleep(100 * time.Millisecond)
	if !eval[bool](t, ctx, `(() => { const d = document.querySelector('#item-dialog');
		const f = d.querySelector('form.add-form'); return d.open && f !== null && !f.hidden; })()`) {
		t.Fatal("the late close event emptied the dialog opened again")
	}
	// And it closes and gives the form back as ever.
	run(t, ctx, chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.CSS(`#item-dialog`)))
	if !evalSoon(t, ctx, `document.querySelector('#item-dialog form.add-form') === null && document.querySelector('[data-item] form.add-form') !== null`) {
		t.Fatal("after Escape the form is not back under its item")
	}
}

func TestBrowserKeyboardCheckout(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	ctx := browser(t)
	e := newEnv(t, "sqlite", func(d *Deps) { d.ImageURL = nil })
	f := e.fx
	open := `[data-open-item="` + itoa(f.Burger.ID) + `"]`
	run(t, ctx, chromedp.Navigate(e.srv.URL+"/r/"+f.Restaurant.Slug), chromedp.WaitVisible(chromedp.CSS(open)))

	// The skip link comes first.
	run(t, ctx, chromedp.KeyEvent(kb.Tab))
	if !eval[bool](t, ctx, `document.activeElement.matches('a.skip')`) {
		t.Error("the first Tab does not reach the skip link")
	}

	tabTo(t, ctx, open, 40)
	run(t, ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`#item-dialog`)))
	if !eval[bool](t, ctx, `document.querySelector('#item-dialog').matches(':modal') && document.querySelector('#item-dialog').contains(document.activeElement)`) {
		t.Fatal("the dialog is not modal, or focus did not move into it")
	}
	// Focus stays in the dialog however often Tab is pressed.
	for i := range 16 {
		run(t, ctx, chromedp.KeyEvent(kb.Tab))
		if out := eval[string](t, ctx, `(() => { const a = document.activeElement;
			return a === document.body || document.querySelector('#item-dialog').contains(a) ? '' : a.outerHTML.slice(0, 100); })()`); out != "" {
			t.Fatalf("Tab %d left the dialog for %s", i+1, out)
		}
	}
	// Escape closes it and focus returns to the button (in the dialog's
	// close event, a task after it is hidden: wait for it).
	run(t, ctx, chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.CSS(`#item-dialog`)))
	if !evalSoon(t, ctx, `document.activeElement.matches(`+jsString(open)+`)`) {
		t.Fatal("after Escape, focus is not back on the button that opened the dialog")
	}

	// Again, for real: Extras → Cheese with Space, then Add to cart.
	run(t, ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`#item-dialog`)))
	tabTo(t, ctx, `#item-dialog input[value="`+itoa(f.Cheese.ID)+`"]`, 20)
	run(t, ctx, chromedp.KeyEvent(" "))
	tabTo(t, ctx, `#item-dialog button[type="submit"]`, 20)
	run(t, ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitNotVisible(chromedp.CSS(`#item-dialog`)))
	if !evalSoon(t, ctx, `document.activeElement.matches(`+jsString(open)+`)`) {
		t.Error("after adding, focus is not back on the item's button")
	}
	if got := eval[string](t, ctx, `document.querySelector('[data-cart] .cart-line').textContent.replace(/\s+/g, '')`); !strings.Contains(got, "BurgerSmall,Cheese") {
		t.Fatalf("cart line %q, want the burger with cheese", got)
	}
	// The status region is filled a moment later (a timer, so that screen
	// readers notice the change).
	if !evalSoon(t, ctx, `document.querySelector('[data-cart-status]').textContent.includes('added')`) {
		t.Errorf("nothing announced the addition: %q", eval[string](t, ctx, `document.querySelector('[data-cart-status]').textContent`))
	}

	// To checkout, and through the form.
	tabTo(t, ctx, `[data-checkout-link]`, 40)
	run(t, ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`[data-checkout-form]`)))
	tabTo(t, ctx, `#f-name`, 20)
	typeKeys(t, ctx, "Ada Lovelace")
	tabTo(t, ctx, `#f-email`, 3)
	typeKeys(t, ctx, "ada@example.com")
	tabTo(t, ctx, `#f-card`, 30)
	typeKeys(t, ctx, "tok_visa")
	tabTo(t, ctx, `[data-place-order]`, 10)
	run(t, ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS(`[data-success]`)))
	if n := len(e.orders(f.Restaurant.ID)); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
	o := e.orders(f.Restaurant.ID)[0]
	if o.Customer.Name != "Ada Lovelace" || len(o.Lines) != 1 || o.Lines[0].Name != "Burger" || len(o.Lines[0].Modifiers) != 2 {
		t.Fatalf("placed %+v", o)
	}
}

// axeSource is axe-core's browser build, installed by npm from
// testdata/axe/package-lock.json (.ci/run does; by hand:
// npm ci --prefix internal/web/testdata/axe).
func axeSource(t *testing.T) string {
	t.Helper()
	p := filepath.Join("testdata", "axe", "node_modules", "axe-core", "axe.min.js")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("axe-core is not installed (%v): run npm ci --prefix internal/web/testdata/axe", err)
	}
	return string(b)
}

type axeViolation struct {
	ID, Impact, Help string
	Nodes            []string
}

// axeCheck runs axe-core on the page in ctx and fails on every serious or
// critical violation of WCAG 2.1 A/AA and axe's best practices.
func axeCheck(t *testing.T, ctx context.Context, page, src string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(tctx, chromedp.Evaluate[bool](src+";\ntrue")); err != nil {
		t.Fatalf("%s: injecting axe: %v", page, err)
	}
	res, err := chromedp.Run(tctx, chromedp.Evaluate[string](`axe.run(document, {
		runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
		resultTypes: ['violations'],
	}).then(r => JSON.stringify(r.violations.map(v => ({
		id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5),
	}))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: axe.run: %v", page, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(res), &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("%s: axe %s (%s): %s at %v", page, v.ID, v.Impact, v.Help, v.Nodes)
		} else {
			t.Logf("%s: axe %s (%s): %s at %v", page, v.ID, v.Impact, v.Help, v.Nodes)
		}
	}
}

// TestBrowserAccessibility runs axe-core on the storefront (with the item
// dialog open too), checkout and the order status page, at desktop and
// phone sizes.
func TestBrowserAccessibility(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	src := axeSource(t)
	ctx := browser(t)
	e := newEnv(t, "sqlite", func(d *Deps) { d.ImageURL = nil })
	f := e.fx
	o := e.place(f.Restaurant, e.request("axe@example.com"))
	statusURL := ordering.StatusURL(o.ID, e.svc.AccessToken(o.ID))
	for _, vp := range []int64{1280, 390} {
		run(t, ctx, chromedp.EmulateViewport(vp, 900),
			chromedp.Navigate(e.srv.URL+"/r/"+f.Restaurant.Slug),
			chromedp.WaitVisible(chromedp.CSS(`[data-open-item]`)),
			chromedp.Click(chromedp.CSS(`form[data-item-id="`+itoa(f.Fries.ID)+`"] button[type="submit"]`)))
		axeCheck(t, ctx, "storefront "+itoa(vp), src)
		run(t, ctx, chromedp.Click(chromedp.CSS(`[data-open-item="`+itoa(f.Burger.ID)+`"]`)), chromedp.WaitVisible(chromedp.CSS(`#item-dialog`)))
		axeCheck(t, ctx, "item dialog "+itoa(vp), src)
		run(t, ctx, chromedp.KeyEvent(kb.Escape),
			chromedp.Navigate(e.srv.URL+"/r/"+f.Restaurant.Slug+"/checkout"),
			chromedp.WaitVisible(chromedp.CSS(`[data-checkout-form]`)))
		axeCheck(t, ctx, "checkout "+itoa(vp), src)
		run(t, ctx, chromedp.Navigate(e.srv.URL+statusURL), chromedp.WaitVisible(chromedp.CSS(`.order-hero`)))
		axeCheck(t, ctx, "order status "+itoa(vp), src)
	}
}
