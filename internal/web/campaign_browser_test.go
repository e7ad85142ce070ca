package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/outbox"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// A manager creates a campaign in the staff UI, sends it, and watches the
// progress bar fill up to done without reloading: the page follows the
// campaign over its server-sent event stream (…/live).
func TestBrowserCampaignCreateSendWatch(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	b := brokertest.Open(t, brokertest.Embedded)
	srv := smtptest.Start(t)
	e := newEnv(t, "sqlite", func(d *Deps) {
		st := d.Store.(*sqlstore.Store)
		d.Campaigns = campaign.NewService(st, quiet)
		u, _ := url.Parse(srv.URL())
		tr, err := mail.NewSMTP(u)
		if err != nil {
			t.Fatal(err)
		}
		lim := campaign.NewLocalLimiter(40) // slow enough to watch
		sender, err := campaign.NewSender(campaign.SenderConfig{Store: st, Broker: b, Transport: tr, Limiter: lim,
			From: "Bistro <news@bistro.example>", PublicURL: "https://ladle.example", Signer: campaign.NewSigner([]byte("k")),
			Logger: quiet, BatchSize: 20, PageSize: 40})
		if err != nil {
			t.Fatal(err)
		}
		if err := sender.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sender.Stop(); tr.Close() })
		relay := outbox.New(outbox.Config{Store: st, Publisher: b, Logger: quiet})
		st.OnEventsCommitted(relay.Wake)
		if err := relay.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(relay.Stop)
	})
	var csv strings.Builder
	csv.WriteString("email,name,marketing_opt_in\n")
	for i := range 80 {
		fmt.Fprintf(&csv, "fan%02d@example.com,Fan %d,true\n", i, i)
	}
	if _, err := campaign.Import(context.Background(), e.store.(ladle.CampaignStore), e.fx.Restaurant.ID, strings.NewReader(csv.String()), time.Now()); err != nil {
		t.Fatal(err)
	}
	mgr := e.user("mgr", e.fx.Restaurant.ID)
	if err := e.store.AddMembership(context.Background(), ladle.Membership{UserID: mgr.ID, RestaurantID: e.fx.Restaurant.ID, Role: ladle.RoleManager}); err != nil {
		t.Fatal(err)
	}

	campaigns := e.srv.URL + "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/campaigns"
	// Each step has its own deadline (stepTimeout): a loaded machine is slow.
	run(t, ctx,
		chromedp.Navigate(campaigns),
		chromedp.WaitVisible(chromedp.CSS(`#l-email`)),
		chromedp.SendKeys(chromedp.CSS(`#l-email`), mgr.Email),
		chromedp.SendKeys(chromedp.CSS(`#l-password`), staffPassword),
		chromedp.Click(chromedp.CSS(`.login button[type="submit"]`)),
	)
	run(t, ctx,
		chromedp.WaitVisible(chromedp.CSS(`#new-campaign`)),
		chromedp.SendKeys(chromedp.CSS(`#campaign-name`), "Spring menu"),
		chromedp.SendKeys(chromedp.CSS(`#campaign-subject`), "Hello {{.Name}}"),
		chromedp.Click(chromedp.CSS(`#campaign-create`)),
	)
	// The bar moves while sending, without a reload, fed by the stream. The
	// page notes what it shows after each change itself, from its first
	// moment (a script run in every new document): the test's polling, slow
	// on a loaded machine, would miss steps the manager sees.
	if _, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument,
		cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: recordProgressJS}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx,
		chromedp.WaitVisible(chromedp.CSS(`#campaign[data-status="draft"]`)),
		chromedp.Click(chromedp.CSS(`#campaign-send`)),
	)
	run(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#campaign[data-status="sending"]`)))
	_ = eval[bool](t, ctx, `window.__notReloaded = true`)
	var seen []string
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(200 * time.Millisecond) {
		if err := json.Unmarshal([]byte(eval[string](t, ctx, `JSON.stringify(window.__seen || [])`)), &seen); err != nil {
			t.Fatal(err)
		}
		if len(seen) > 0 && strings.HasSuffix(seen[len(seen)-1], " done") || time.Now().After(deadline) {
			break
		}
	}
	if len(seen) == 0 || seen[len(seen)-1] != "80/80 done" {
		t.Fatalf("progress seen: %v", seen)
	}
	if len(seen) < 3 {
		t.Errorf("the bar did not move live: %v", seen)
	}
	if live := eval[string](t, ctx, `document.getElementById('campaign').dataset.live || ''`); live != "sse" && live != "ended" {
		t.Errorf("the page did not follow the live stream (data-live %q)", live)
	}
	if !eval[bool](t, ctx, `window.__notReloaded === true`) {
		t.Error("the page reloaded")
	}
	if got := eval[string](t, ctx, `document.getElementById('campaign-sent').textContent`); got != "80" {
		t.Errorf("sent shows %q", got)
	}
	if n := srv.Count(); n != 80 {
		t.Fatalf("SMTP server got %d", n)
	}
	screenshot(t, ctx, "campaign-done.png")
}

// recordProgressJS keeps, in window.__seen, each distinct state of the
// campaign page's progress ("sent/total status") as the page shows it.
const recordProgressJS = `window.__seen = [];
document.addEventListener('DOMContentLoaded', () => {
	const root = document.getElementById('campaign');
	if (!root) return;
	const note = () => {
		const b = document.getElementById('campaign-bar');
		const v = b.value + '/' + b.max + ' ' + document.getElementById('campaign-status').textContent;
		if (window.__seen[window.__seen.length - 1] !== v) window.__seen.push(v);
	};
	note();
	new MutationObserver(note).observe(root, {subtree: true, childList: true, characterData: true, attributes: true});
});`
