package web

import (
	"bytes"
	"context"
	"flag"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/blob"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/imaging"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/testenv"
)

var updateScreenshots = flag.Bool("update-screenshots", false,
	"write TestScreenshots' pictures to docs/screenshots (else to a temporary folder)")

// screenshotDir is where the README's screenshots live, from this package.
const screenshotDir = "../../docs/screenshots"

// TestScreenshots renders the demo restaurant's pages, at desktop (1280 px)
// and phone (390 px) widths, the way the README shows them: the
// storefront, checkout, the guest's order status, and the staff board.
// With -update-screenshots it rewrites docs/screenshots; without, it still
// loads every page at both sizes and fails on a console error or a page
// wider than the screen.
//
//	go test ./internal/web -run TestScreenshots -update-screenshots
func TestScreenshots(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "browser test")
	ctx := browser(t)
	bg := context.Background()

	blobs, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var deps Deps
	e := newEnv(t, "sqlite", func(d *Deps) {
		d.Images, d.ImageURL = blobs, imaging.URLFunc("")
		deps = *d
	})
	mux := http.NewServeMux()
	mux.Handle("GET /media/", imaging.Handler(blobs, quiet))
	mux.Handle("/", New(deps))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	if _, err := demo.Seed(bg, e.store, e.auth.HashPassword, demo.WithPhotos(blobs)); err != nil {
		t.Fatal(err)
	}
	rest, err := e.store.RestaurantBySlug(bg, demo.Slug)
	if err != nil {
		t.Fatal(err)
	}
	owner := e.user("owner")
	if err := e.store.AddMembership(bg, ladle.Membership{UserID: owner.ID, RestaurantID: rest.ID, Role: ladle.RoleOwner}); err != nil {
		t.Fatal(err)
	}
	menu, err := e.store.Menu(bg, rest.ID)
	if err != nil {
		t.Fatal(err)
	}
	item := func(name string) *ladle.Item {
		for _, c := range menu.Categories {
			for i := range c.Items {
				if c.Items[i].Name == name {
					return &c.Items[i]
				}
			}
		}
		t.Fatalf("no demo item %q", name)
		return nil
	}
	line := func(name string, qty int, mods ...int) ladle.LineRequest {
		it := item(name)
		l := ladle.LineRequest{ItemID: it.ID, Quantity: qty}
		for gi, mi := range mods { // mods[g] = index of the modifier chosen in group g (-1: none)
			if mi >= 0 {
				l.ModifierIDs = append(l.ModifierIDs, it.ModifierGroups[gi].Modifiers[mi].ID)
			}
		}
		return l
	}

	// A lunch rush on the board: one order in each state.
	guests := []struct {
		name, phone string
		lines       []ladle.LineRequest
		to          []ladle.OrderStatus
	}{
		{"Maya Chen", "+12125550187", []ladle.LineRequest{line("Tomato Basil", 1, 1, 0), line("Grilled Cheese", 1)}, nil},
		{"Jonas Weber", "+4915123456789", []ladle.LineRequest{line("Miso Ramen", 2, 2), line("Iced Tea", 2, 0)}, nil},
		{"Priya Natarajan", "", []ladle.LineRequest{line("Harvest Grain Bowl", 1, 1)}, []ladle.OrderStatus{ladle.StatusAccepted}},
		{"Tomás Ortega", "+13475550123", []ladle.LineRequest{line("Pho Bowl", 1, 0), line("Lemonade", 1, 1)}, []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing}},
		{"Aisha Bello", "+12125550142", []ladle.LineRequest{line("Lentil & Spinach", 1, 1, 0), line("Garlic Focaccia", 2)}, []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady}},
		{"Liam O'Connor", "", []ladle.LineRequest{line("Chocolate Pot de Crème", 2)}, []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady, ladle.StatusCompleted}},
	}
	var statusPath string
	for i, g := range guests {
		req := &ladle.OrderRequest{
			Customer:    ladle.CustomerInput{Name: g.name, Email: "guest" + itoa(int64(i)) + "@example.com", Phone: g.phone},
			Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
			Lines:       g.lines,
			Payment:     ladle.PaymentInput{Method: "pay_at_pickup"},
		}
		if i == 1 {
			req.Lines[0].Note = "Extra napkins, please"
		}
		o := e.place(rest, req)
		for _, st := range g.to {
			if _, err := e.store.SetOrderStatus(bg, rest.ID, o.ID, st, "", owner.ID, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if i == 3 {
			statusPath = ordering.StatusURL(o.ID, e.svc.AccessToken(o.ID))
		}
	}

	dir := t.TempDir()
	if *updateScreenshots {
		dir = screenshotDir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cart := `[{"item_id":` + itoa(item("Tomato Basil").ID) + `,"quantity":1,"modifier_ids":[` + itoa(item("Tomato Basil").ModifierGroups[0].Modifiers[1].ID) + `]},` +
		`{"item_id":` + itoa(item("Garlic Focaccia").ID) + `,"quantity":2,"modifier_ids":[]},` +
		`{"item_id":` + itoa(item("Lemonade").ID) + `,"quantity":1,"modifier_ids":[` + itoa(item("Lemonade").ModifierGroups[0].Modifiers[0].ID) + `]}]`
	store := srv.URL + "/r/" + demo.Slug
	pages := []struct {
		name, url string
		prepare   func()
	}{
		{"storefront", store, nil},
		{"checkout", store + "/checkout", func() {
			eval[bool](t, ctx, `Object.entries({'f-name': 'Maya Chen', 'f-email': 'maya@example.com', 'f-card': 'tok_visa', 'f-tip': '3.00'})
				.forEach(([id, v]) => { const f = document.getElementById(id); f.value = v; f.dispatchEvent(new Event('input', {bubbles: true})); }), true`)
		}},
		{"order-status", srv.URL + statusPath, nil},
		{"board", srv.URL + "/admin/r/" + itoa(rest.ID) + "/orders", nil},
	}
	staffLogin(t, ctx, e, owner, srv.URL+"/admin/r/"+itoa(rest.ID)+"/orders")
	run(t, ctx, chromedp.Navigate(store))
	eval[bool](t, ctx, `localStorage.setItem('ladle.cart.`+demo.Slug+`', `+jsString(cart)+`), true`)
	for _, vp := range []struct {
		suffix string
		w, h   int64
	}{{"desktop", 1280, 1100}, {"phone", 390, 1500}} {
		for _, p := range pages {
			opts := []chromedp.EmulateViewportOption{}
			if vp.w < 600 {
				opts = append(opts, chromedp.EmulateMobile)
			}
			run(t, ctx, chromedp.EmulateViewport(vp.w, vp.h, opts...), chromedp.Navigate(p.url), chromedp.WaitVisible(chromedp.CSS(`main`)))
			if p.prepare != nil {
				p.prepare()
			}
			// Every picture loaded (lazy ones in view are asked for now).
			tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			_, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`Promise.all([...document.images].map(i => { i.loading = 'eager';
				return i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; }); })).then(() => true)`, chromedp.EvalAwaitPromise))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			eval[bool](t, ctx, `document.activeElement && document.activeElement.blur(), window.scrollTo(0, 0), true`)
			checkOverflow(t, ctx, p.name+" "+vp.suffix)
			shot(t, ctx, filepath.Join(dir, p.name+"-"+vp.suffix+".png"))
		}
	}
}

// shot captures the viewport as a small PNG (shrinkPNG).
func shot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	raw, err := chromedp.Run(tctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	small, err := shrinkPNG(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, small, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d KB", path, len(small)>>10)
}

// shrinkPNG reduces a screenshot to 256 colours (the most common ones, by
// 5-bit buckets; each pixel takes the nearest) and compresses it hard, so
// the committed pictures stay small. Pages are mostly flat colour, so
// little shows; photos get a little posterized.
func shrinkPNG(raw []byte) ([]byte, error) {
	src, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	b := src.Bounds()
	key := func(c color.Color) int {
		r, g, bb, _ := c.RGBA()
		return int(r>>11)<<10 | int(g>>11)<<5 | int(bb>>11)
	}
	type bucket struct {
		n          int
		r, g, b    int
		k          int
		nearestIdx int
	}
	buckets := make([]bucket, 1<<15)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := src.At(x, y)
			r, g, bb, _ := c.RGBA()
			k := key(c)
			bk := &buckets[k]
			bk.n++
			bk.r += int(r >> 8)
			bk.g += int(g >> 8)
			bk.b += int(bb >> 8)
		}
	}
	var used []int
	for k := range buckets {
		if buckets[k].n > 0 {
			buckets[k].k = k
			used = append(used, k)
		}
	}
	slices.SortFunc(used, func(a, b int) int { return buckets[b].n - buckets[a].n })
	pal := color.Palette{}
	for _, k := range used[:min(256, len(used))] {
		bk := buckets[k]
		pal = append(pal, color.RGBA{uint8(bk.r / bk.n), uint8(bk.g / bk.n), uint8(bk.b / bk.n), 255})
	}
	for _, k := range used {
		bk := &buckets[k]
		bk.nearestIdx = pal.Index(color.RGBA{uint8(bk.r / bk.n), uint8(bk.g / bk.n), uint8(bk.b / bk.n), 255})
	}
	dst := image.NewPaletted(b, pal)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			dst.SetColorIndex(x, y, uint8(buckets[key(src.At(x, y))].nearestIdx))
		}
	}
	var out bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&out, dst); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
