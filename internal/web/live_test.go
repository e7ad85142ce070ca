package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/live"
	"github.com/ladle-dev/ladle/internal/outbox"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// Tests of the event-driven pages: the mailbox, failed deliveries with
// replay (admin_mailbox.go) and the live board and status page (live.go,
// static/live.js).

func withDeliveries(d *Deps) { d.Deliveries = d.Store.(*sqlstore.Store) }

// seedEmail stores an email for restaurant rid as the worker would.
func seedEmail(t *testing.T, e *env, rid int64, eventID, to, subject string, sent bool) *ladle.Email {
	t.Helper()
	ctx := context.Background()
	st := e.store.(*sqlstore.Store)
	em := &ladle.Email{RestaurantID: rid, Consumer: "receipt", EventID: eventID, Kind: "receipt", From: "Bistro <orders@ladle.test>",
		To: to, Subject: subject, Text: "Hi,\nyour order total is $33.53.\n", HTML: `<p style="color:red">Hello <b>guest</b></p>`,
		MessageID: eventID + ".receipt@ladle.test", Transport: "mailbox"}
	if _, err := st.ReserveEmail(ctx, em); err != nil {
		t.Fatal(err)
	}
	if sent {
		if err := st.EmailSent(ctx, em.ID, "mailbox", ladle.Now()); err != nil {
			t.Fatal(err)
		}
	} else if err := st.EmailFailed(ctx, em.ID, "550 5.1.1 no such user", true, ladle.Now()); err != nil {
		t.Fatal(err)
	}
	return em
}

func TestMailboxIsScopedToTheRestaurant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", withDeliveries)
	mine := seedEmail(t, e, e.fx.Restaurant.ID, "evt-a", "Ada <ada@example.com>", "Your order #1 at Bistro", true)
	failed := seedEmail(t, e, e.fx.Restaurant.ID, "evt-b", "bob@invalid.example", "Your order #2 at Bistro", false)
	theirs := seedEmail(t, e, e.fx.Other.ID, "evt-c", "carol@example.com", "Votre commande #1", true)
	rid, oid := itoa(e.fx.Restaurant.ID), itoa(e.fx.Other.ID)

	a := e.client()
	a.login(e.staffA)
	a.get("/admin/r/"+rid+"/mailbox").want(t, http.StatusOK, "Your order #1 at Bistro", "Ada &lt;ada@example.com&gt;",
		`data-email-id="`+itoa(failed.ID)+`" data-status="failed"`, "550 5.1.1 no such user", "1 sent", "1 failed")
	a.get("/admin/r/"+rid+"/mailbox").wantNot(t, "Votre commande")
	a.get("/admin/r/"+rid+"/mailbox/"+itoa(mine.ID)).want(t, http.StatusOK, "your order total is $33.53.",
		"&lt;evt-a.receipt@ladle.test&gt;", `sandbox`, "/mailbox/"+itoa(mine.ID)+"/html")
	res := a.get("/admin/r/" + rid + "/mailbox/" + itoa(mine.ID) + "/html")
	res.want(t, http.StatusOK, `<p style="color:red">Hello <b>guest</b></p>`)
	if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("email HTML served with CSP %q", csp)
	}
	// Another restaurant's email, through this restaurant's URL: not found.
	a.get("/admin/r/"+rid+"/mailbox/"+itoa(theirs.ID)).want(t, http.StatusNotFound)
	a.get("/admin/r/"+rid+"/mailbox/"+itoa(theirs.ID)+"/html").want(t, http.StatusNotFound)
	// Another restaurant's mailbox: not found, like any restaurant of others.
	a.get("/admin/r/"+oid+"/mailbox").want(t, http.StatusNotFound)
	if res := a.get("/admin/mailbox"); res.status != http.StatusSeeOther || res.header.Get("Location") != "/admin/r/"+rid+"/mailbox" {
		t.Errorf("/admin/mailbox: %d %s", res.status, res.header.Get("Location"))
	}
	b := e.client()
	b.login(e.staffB)
	b.get("/admin/r/"+oid+"/mailbox").want(t, http.StatusOK, "Votre commande #1")
	b.get("/admin/r/"+oid+"/mailbox").wantNot(t, "Your order #1")
	// Not signed in: the login page.
	if res := e.client().get("/admin/r/" + rid + "/mailbox"); res.status != http.StatusSeeOther {
		t.Errorf("anonymous mailbox: %d", res.status)
	}
}

func TestDeadLettersReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", withDeliveries)
	ctx := context.Background()
	st := e.store.(*sqlstore.Store)
	o := e.place(e.fx.Restaurant, e.request("dl@example.com"))
	payload, _ := json.Marshal(o)
	dl := &ladle.DeadLetter{Consumer: "receipt", Error: "550 5.1.1 no such user", Deliveries: 1,
		Event: ladle.Event{ID: "evt-dead", Type: ladle.EventOrderPlaced, RestaurantID: e.fx.Restaurant.ID, AggregateID: o.ID,
			Payload: payload, CreatedAt: ladle.Now()}}
	if _, err := st.AddDeadLetter(ctx, dl); err != nil {
		t.Fatal(err)
	}
	rid := itoa(e.fx.Restaurant.ID)
	page := "/admin/r/" + rid + "/dead-letters"
	replay := page + "/" + itoa(dl.ID) + "/replay"

	a := e.client()
	a.login(e.staffA) // role staff: may look, may not replay
	a.get(page).want(t, http.StatusOK, "550 5.1.1 no such user", o.ID, "a manager can replay it")
	a.post(replay, url.Values{}).want(t, http.StatusForbidden, "Only owners and managers")
	b := e.client()
	b.login(e.staffB) // another restaurant's staff
	b.get(page).want(t, http.StatusNotFound)
	a.post("/admin/r/"+rid+"/dead-letters/999999/replay", url.Values{}).want(t, http.StatusNotFound)

	manager := e.user("manager", e.fx.Restaurant.ID)
	if err := st.AddMembership(ctx, ladle.Membership{UserID: manager.ID, RestaurantID: e.fx.Restaurant.ID, Role: ladle.RoleManager}); err != nil {
		t.Fatal(err)
	}
	m := e.client()
	m.login(manager)
	res := m.post(replay, url.Values{})
	if res.status != http.StatusSeeOther {
		t.Fatalf("replay: %d\n%s", res.status, res.body)
	}
	m.get(res.header.Get("Location")).want(t, http.StatusOK, "Replayed.", "Nothing failed.")
	m.get(page+"?all=1").want(t, http.StatusOK, "replayed ")
	m.post(replay, url.Values{}).want(t, http.StatusConflict, "replayed already")
	// The replay is an event in the outbox, for the receipt consumer alone.
	evs, _ := st.OutboxEvents(ctx, e.fx.Restaurant.ID)
	if last := evs[len(evs)-1]; last.Type != ladle.EventReplayPrefix+"receipt" {
		t.Fatalf("last outbox event %s", last.Type)
	}
}

// liveEnv is a web env with the event path running: an embedded broker, the
// relay and this process's live feed into Deps.Live.
func liveEnv(t *testing.T) *env {
	hub := live.NewHub()
	e := newEnv(t, "sqlite", func(d *Deps) { d.ImageURL = nil; d.Live = hub; withDeliveries(d) })
	st := e.store.(*sqlstore.Store)
	b := brokertest.Open(t, brokertest.Embedded)
	relay := outbox.New(outbox.Config{Store: st, Publisher: b, Logger: quiet})
	st.OnEventsCommitted(relay.Wake)
	feed := live.NewFeed(b, hub, quiet)
	ctx := context.Background()
	if err := relay.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(relay.Stop)
	if err := feed.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(feed.Stop)
	// The feed makes its consumer (new events only) in the background; an
	// order committed before it exists would never reach a board, so wait
	// for it as a process's startup would have by the time staff look.
	deadline := time.Now().Add(stepTimeout)
	for {
		st, err := b.JetStream().Stream(ctx, b.StreamName())
		found := false
		if err == nil {
			names := st.ConsumerNames(ctx)
			for name := range names.Name() {
				found = found || strings.HasPrefix(name, "live_")
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live feed consumer on the stream after %v (%v)", stepTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e
}

func TestGuestLiveStreamNeedsTheToken(t *testing.T) {
	t.Parallel()
	e := liveEnv(t)
	o := e.place(e.fx.Restaurant, e.request("live@example.com"))
	c := e.client()
	c.get("/orders/"+o.ID+"/live?token=wrong").want(t, http.StatusNotFound)
	c.get("/admin/r/"+itoa(e.fx.Restaurant.ID)+"/orders/live").want(t, http.StatusSeeOther)

	// Without live updates configured, the streams say so once (no 404s in
	// the browser's console, no reconnecting every two seconds).
	plain := newEnv(t, "sqlite")
	o2 := plain.place(plain.fx.Restaurant, plain.request("off@example.com"))
	tok := plain.svc.AccessToken(o2.ID)
	plain.client().get("/orders/"+o2.ID+"/live?token="+tok).want(t, http.StatusOK, "event: off", "retry: 86400000")
	sc := plain.client()
	sc.login(plain.staffA)
	sc.get("/admin/r/"+itoa(plain.fx.Restaurant.ID)+"/orders/live").want(t, http.StatusOK, "event: off")
}

// TestBrowserLiveBoard: an order placed from the storefront appears on an
// open staff board within a second, highlighted and with a chime, without
// a reload; a status change made on another screen shows up on the board;
// and the guest's status page follows the kitchen live.
func TestBrowserLiveBoard(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	// The server first, the browsers after: cleanups run in reverse, so the
	// browsers hang up their event streams before the server closes.
	e := liveEnv(t)
	staffTab := browser(t)
	f := e.fx
	board := e.srv.URL + "/admin/r/" + itoa(f.Restaurant.ID) + "/orders"
	run(t, staffTab,
		chromedp.Navigate(board),
		chromedp.WaitVisible(chromedp.CSS(`#l-email`)),
		chromedp.SendKeys(chromedp.CSS(`#l-email`), e.staffA.Email),
		chromedp.SendKeys(chromedp.CSS(`#l-password`), staffPassword),
		chromedp.Click(chromedp.CSS(`.login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-live="on"]`)),
	)
	// Note the moment each ticket first shows up, in the page itself.
	eval[bool](t, staffTab, `(() => {
		window.seenAt = {};
		new MutationObserver(() => {
			document.querySelectorAll('[data-order-id]').forEach(el => {
				if (!(el.dataset.orderId in window.seenAt)) window.seenAt[el.dataset.orderId] = Date.now();
			});
		}).observe(document.body, {subtree: true, childList: true});
		return true;
	})()`)
	startURL := eval[string](t, staffTab, `location.href`)

	// A guest, on another device (another browser), orders from the
	// storefront.
	guestTab := browser(t)
	run(t, guestTab,
		chromedp.Navigate(e.srv.URL+"/r/"+f.Restaurant.Slug),
		chromedp.WaitVisible(chromedp.CSS(`form[data-item-id="`+itoa(f.Fries.ID)+`"]`)),
		chromedp.Click(chromedp.CSS(`form[data-item-id="`+itoa(f.Fries.ID)+`"] button[type="submit"]`)),
		chromedp.Click(chromedp.CSS(`[data-checkout-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-checkout-form]`)),
		chromedp.SendKeys(chromedp.CSS(`#f-name`), "Rosalind Franklin"),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "rosalind@example.com"),
		chromedp.Click(chromedp.CSS(`input[name="payment"][value="pay_at_pickup"]`)),
		chromedp.Click(chromedp.CSS(`[data-place-order]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-success]`)),
	)
	orders := e.orders(f.Restaurant.ID)
	if len(orders) != 1 {
		t.Fatalf("%d orders", len(orders))
	}
	o := orders[0]
	run(t, staffTab, chromedp.WaitVisible(chromedp.CSS(`#order-`+o.ID)))
	seen := eval[float64](t, staffTab, `window.seenAt['`+o.ID+`']`)
	latency := time.UnixMilli(int64(seen)).Sub(o.CreatedAt)
	t.Logf("order committed → on the staff board: %v", latency)
	if latency > time.Second {
		t.Errorf("the new order took %v to appear on the board, want under 1s", latency)
	}
	if eval[string](t, staffTab, `location.href`) != startURL || eval[float64](t, staffTab, `performance.getEntriesByType('navigation').length`) != 1 {
		t.Error("the board reloaded instead of updating in place")
	}
	if !eval[bool](t, staffTab, `document.getElementById('order-`+o.ID+`').classList.contains('arrived')`) {
		t.Error("the new ticket is not highlighted")
	}
	if n := eval[float64](t, staffTab, `window.ladleLive.chimes`); n < 1 {
		t.Error("no chime for the new order")
	}
	screenshot(t, staffTab, "live-board.png")

	// The guest watches the status page; the kitchen accepts the order on
	// the board. The page follows without the guest doing anything.
	run(t, guestTab, chromedp.WaitVisible(chromedp.CSS(`body[data-live="on"]`)))
	if cls := eval[string](t, guestTab, `document.querySelector('.order-hero').className`); !strings.Contains(cls, "status-placed") {
		t.Fatalf("status page hero %q", cls)
	}
	run(t, staffTab, chromedp.Click(chromedp.CSS(`#order-`+o.ID+` .ticket-actions button.button`))) // Accept
	run(t, guestTab, chromedp.WaitVisible(chromedp.CSS(`.order-hero.status-accepted`)))

	// Another screen (here: another process's write, straight to the
	// store) moves it on: the board follows without a reload.
	run(t, staffTab, chromedp.WaitVisible(chromedp.CSS(`body[data-live="on"]`)))
	startURL = eval[string](t, staffTab, `location.href`)
	if _, err := e.store.SetOrderStatus(context.Background(), f.Restaurant.ID, o.ID, ladle.StatusPreparing, "", 0, ladle.Now()); err != nil {
		t.Fatal(err)
	}
	run(t, staffTab, chromedp.WaitVisible(chromedp.CSS(`#order-`+o.ID+`.status-preparing`)))
	if eval[float64](t, staffTab, `performance.getEntriesByType('navigation').length`) != 1 || eval[string](t, staffTab, `location.href`) != startURL {
		t.Error("the board reloaded for a status change")
	}
	run(t, guestTab, chromedp.WaitVisible(chromedp.CSS(`.order-hero.status-preparing`)))
}
