package web

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/autoscale"
	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/broker/brokertest"
	"github.com/ladle-dev/ladle/internal/sysstats"
	"github.com/ladle-dev/ladle/internal/testenv"
	"github.com/ladle-dev/ladle/internal/worker"
)

// systemEnv is a web env whose System page is fed by a real worker (one
// autoscaled consumer whose handler takes 20 ms, like a slow downstream)
// on an embedded broker, reporting through sysstats as in `ladle serve`.
type systemEnv struct {
	*env
	b     *broker.Broker
	w     *worker.Worker
	owner *ladle.User
}

func newSystemEnv(t *testing.T) *systemEnv {
	t.Helper()
	board := &sysstats.Board{Logger: quiet}
	e := newEnv(t, "sqlite", func(d *Deps) { d.System = board; d.ImageURL = nil })
	b := brokertest.Open(t, brokertest.Embedded)
	w := worker.New(worker.Config{Broker: b, DeadLetters: e.store.(worker.DeadLetterStore), Logger: quiet, ShutdownGrace: time.Second},
		worker.Consumer{Name: "burst", EventTypes: []string{"test.burst"},
			Scale: &autoscale.Config{Min: 1, Max: 16, Target: time.Second, ScaleDownWindow: 5 * time.Second},
			Handle: func(ctx context.Context, ev ladle.Event) error {
				select {
				case <-time.After(20 * time.Millisecond):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}})
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	subject := "test_stats." + uuid.NewString()
	board.Outbox = e.store.(sysstats.Outbox)
	if err := board.Start(b.Conn(), subject); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(board.Stop)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		sysstats.Publish(ctx, b.Conn(), subject, sysstats.WorkerSnapshot("test", w))
	}()
	t.Cleanup(func() { cancel(); <-done })

	owner := e.user("owner", e.fx.Restaurant.ID)
	if err := e.store.AddMembership(context.Background(), ladle.Membership{UserID: owner.ID, RestaurantID: e.fx.Restaurant.ID, Role: ladle.RoleOwner}); err != nil {
		t.Fatal(err)
	}
	return &systemEnv{env: e, b: b, w: w, owner: owner}
}

// burst publishes n events for the consumer straight to the stream.
func (se *systemEnv) burst(t *testing.T, n int) {
	t.Helper()
	evs := make([]ladle.Event, n)
	for i := range evs {
		evs[i] = ladle.Event{ID: uuid.NewString(), Type: "test.burst", RestaurantID: se.fx.Restaurant.ID,
			AggregateID: strconv.Itoa(i), Payload: []byte(`{}`), CreatedAt: time.Now()}
	}
	// As the relay does, an event whose ack did not come in time (a loaded
	// machine) is published again: the broker drops the duplicates by id.
	deadline := time.Now().Add(stepTimeout)
	for len(evs) > 0 {
		k := min(len(evs), 500)
		acked, err := se.b.PublishEvents(context.Background(), evs[:k])
		if err == nil {
			evs = evs[k:]
			continue
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		done := make(map[string]bool, len(acked))
		for _, id := range acked {
			done[id] = true
		}
		evs = slices.DeleteFunc(evs, func(ev ladle.Event) bool { return done[ev.ID] })
	}
}

func TestSystemPageOwnersOnly(t *testing.T) {
	t.Parallel()
	se := newSystemEnv(t)
	page := "/admin/r/" + itoa(se.fx.Restaurant.ID) + "/system"

	staff := se.client()
	staff.login(se.staffA)
	staff.get(page).want(t, http.StatusForbidden, "Owners only")
	staff.get(page+"/charts").want(t, http.StatusForbidden)
	board := "/admin/r/" + itoa(se.fx.Restaurant.ID) + "/orders"
	if res := staff.get(board); res.status != http.StatusOK || strings.Contains(res.body, page+`"`) {
		t.Errorf("staff board: status %d, links the System page: %v", res.status, strings.Contains(res.body, page+`"`))
	}
	other := se.client()
	other.login(se.staffB)
	other.get(page).want(t, http.StatusNotFound)

	o := se.client()
	o.login(se.owner)
	// Within a few samples the worker's report arrives.
	deadline := time.Now().Add(stepTimeout)
	for {
		res := o.get(page + "/charts")
		if res.status == http.StatusOK && strings.Contains(res.body, `data-consumer="burst"`) {
			res.want(t, http.StatusOK, `data-chart="workers"`, `data-chart="lag"`, `data-chart="outbox-age"`, "<svg")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no consumer on the System page after %v:\n%s", stepTimeout, res.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	o.get(page).want(t, http.StatusOK, "System", "system.", "shared by every restaurant")
	o.get(board).want(t, http.StatusOK, `href="`+page+`"`)
}

// TestBrowserSystemPageShowsScaleUp: an owner watches the System page in
// Chromium while a burst of 1,500 events arrives; the live charts show the
// worker count rising from 1 to the maximum, then the lag draining.
func TestBrowserSystemPageShowsScaleUp(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	ctx := browser(t)
	se := newSystemEnv(t)
	page := se.srv.URL + "/admin/r/" + itoa(se.fx.Restaurant.ID) + "/system"
	run(t, ctx,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS(`#l-email`)),
		chromedp.SendKeys(chromedp.CSS(`#l-email`), se.owner.Email),
		chromedp.SendKeys(chromedp.CSS(`#l-password`), staffPassword),
		chromedp.Click(chromedp.CSS(`.login button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-system-charts]`)),
	)
	waitDOM := func(what, js string) {
		t.Helper()
		deadline := time.Now().Add(stepTimeout)
		for !eval[bool](t, ctx, js) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %v waiting for %s", stepTimeout, what)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// The page updates itself: the worker's first report shows one worker.
	waitDOM("the idle pool", `(() => { const r = document.querySelector('tr[data-consumer="burst"]'); return !!r && r.dataset.workers === "1"; })()`)

	se.burst(t, 1500)
	peak := `Number((document.querySelector('[data-chart="workers"]') || {dataset: {}}).dataset.peak || 0)`
	waitDOM("the worker count to rise to 16", peak+` >= 16`)
	lagPeak := eval[float64](t, ctx, `Number(document.querySelector('[data-chart="lag"]').dataset.peak)`)
	if lagPeak < 100 {
		t.Errorf("the lag chart peaked at %v during a burst of 1500", lagPeak)
	}
	screenshot(t, ctx, "system-burst.png")
	// The lag drains to zero while the charts keep the peak.
	waitDOM("the lag to drain", `Number(document.querySelector('[data-chart="lag"]').dataset.last) === 0`)
	if p := eval[float64](t, ctx, peak); p < 16 {
		t.Errorf("after draining the workers chart peaks at %v", p)
	}
	if os.Getenv("LADLE_SCREENSHOT_DIR") != "" {
		screenshot(t, ctx, "system-drained.png")
	}
	if st := se.w.Stats()["burst"]; st.Handled < 1500 {
		t.Errorf("handled %d of 1500", st.Handled)
	}
}
