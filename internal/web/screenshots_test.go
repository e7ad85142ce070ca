package web

import (
	"bytes"
	"context"
	"flag"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
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
	"github.com/ladle-dev/ladle/internal/httpapi"
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
	httpapi.Register(mux, httpapi.Deps{Store: e.store, Ordering: e.svc, Logger: quiet}) // the checkout's live quote
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

	// The pictures show a fixed lunchtime today, in the restaurant's zone:
	// two weeks of orders behind it (history, reports) and a rush on the
	// board with one order in each state.
	loc := rest.Location()
	today := time.Now().In(loc)
	lunch := time.Date(today.Year(), today.Month(), today.Day(), 12, 40, 0, 0, loc)
	var dishes []string
	for _, c := range menu.Categories {
		for _, it := range c.Items {
			if it.Available {
				dishes = append(dishes, it.Name)
			}
		}
	}
	rnd := rand.New(rand.NewPCG(12, 40))
	names := []string{"Ana", "Ben", "Chloé", "Dev", "Emma", "Felix", "Grace", "Hiro", "Inés", "Jamal", "Kofi", "Lena", "Mateo", "Nora", "Omar", "Pia"}
	advance := func(o *ladle.Order, to ...ladle.OrderStatus) {
		t.Helper()
		for _, st := range to {
			reason := ""
			if st == ladle.StatusCancelled {
				reason = "We ran out of bisque"
			}
			if _, err := e.store.SetOrderStatus(bg, rest.ID, o.ID, st, reason, owner.ID, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	order := func(i int, name, phone string, card bool, coupon string, lines ...ladle.LineRequest) *ladle.Order {
		t.Helper()
		req := &ladle.OrderRequest{
			Customer:    ladle.CustomerInput{Name: name, Email: "guest" + itoa(int64(i)) + "@example.com", Phone: phone},
			Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
			Lines:       lines,
			Payment:     ladle.PaymentInput{Method: "pay_at_pickup"},
			CouponCode:  coupon,
		}
		if card {
			req.Payment = ladle.PaymentInput{Method: "card", Token: "tok_visa"}
		}
		return e.place(rest, req)
	}
	n := 0
	for d := 13; d >= 1; d-- {
		day := lunch.AddDate(0, 0, -d)
		count := 3 + rnd.IntN(5) + 2*(d%2)
		for k := range count { // from 11:00 to 21:00, in order
			step := 600 / count
			e.clock.Set(time.Date(day.Year(), day.Month(), day.Day(), 11, k*step+rnd.IntN(step), 0, 0, loc))
			var lines []ladle.LineRequest
			for range 1 + rnd.IntN(3) {
				it := item(dishes[rnd.IntN(len(dishes))])
				l := ladle.LineRequest{ItemID: it.ID, Quantity: 1 + rnd.IntN(2)}
				for _, g := range it.ModifierGroups {
					if g.Min > 0 {
						l.ModifierIDs = append(l.ModifierIDs, g.Modifiers[rnd.IntN(len(g.Modifiers))].ID)
					}
				}
				lines = append(lines, l)
			}
			coupon := ""
			if k == 0 && d%3 == 0 { // over the coupon's minimum
				coupon = demo.CouponCode
				lines = append(lines, line("Harvest Grain Bowl", 1, -1))
			}
			n++
			o := order(n, names[rnd.IntN(len(names))]+" "+string(rune('A'+rnd.IntN(26)))+".", "", rnd.IntN(2) == 0, coupon, lines...)
			if d == 5 && k == 1 {
				advance(o, ladle.StatusCancelled)
			} else {
				advance(o, ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady, ladle.StatusCompleted)
			}
		}
	}
	guests := []struct {
		name, phone string
		lines       []ladle.LineRequest
		to          []ladle.OrderStatus
	}{
		{"Liam O'Connor", "", []ladle.LineRequest{line("Chocolate Pot de Crème", 2)}, []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady, ladle.StatusCompleted}},
		{"Aisha Bello", "+12125550142", []ladle.LineRequest{line("Lentil & Spinach", 1, 1, 0), line("Garlic Focaccia", 2)}, []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing, ladle.StatusReady}},
		{"Tomás Ortega", "+13475550123", []ladle.LineRequest{line("Pho Bowl", 1, 0), line("Lemonade", 1, 1)}, []ladle.OrderStatus{ladle.StatusAccepted, ladle.StatusPreparing}},
		{"Priya Natarajan", "", []ladle.LineRequest{line("Harvest Grain Bowl", 1, 1)}, []ladle.OrderStatus{ladle.StatusAccepted}},
		{"Jonas Weber", "+4915123456789", []ladle.LineRequest{line("Miso Ramen", 2, 2), line("Iced Tea", 2, 0)}, nil},
		{"Maya Chen", "+12125550187", []ladle.LineRequest{line("Tomato Basil", 1, 1, 0), line("Grilled Cheese", 1)}, nil},
	}
	var statusPath string
	for i, g := range guests {
		e.clock.Set(lunch.Add(time.Duration(i-len(guests)) * 4 * time.Minute))
		if g.name == "Jonas Weber" {
			g.lines[0].Note = "Extra napkins, please"
		}
		n++
		o := order(n, g.name, g.phone, i%2 == 0, "", g.lines...)
		advance(o, g.to...)
		if g.name == "Tomás Ortega" {
			statusPath = ordering.StatusURL(o.ID, e.svc.AccessToken(o.ID))
		}
	}
	e.clock.Set(lunch)

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
		{"history", srv.URL + "/admin/r/" + itoa(rest.ID) + "/history", nil},
		{"reports", srv.URL + "/admin/r/" + itoa(rest.ID) + "/reports", nil},
	}
	staffLogin(t, ctx, e, owner, srv.URL+"/admin/r/"+itoa(rest.ID)+"/orders")
	run(t, ctx, chromedp.Navigate(store))
	eval[bool](t, ctx, `localStorage.setItem('ladle.cart.`+demo.Slug+`', `+jsString(cart)+`), true`)
	for _, vp := range []struct {
		suffix string
		w, h   int64
	}{{"desktop", 1280, 1400}, {"phone", 390, 1700}} {
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
			tctx, cancel := context.WithTimeout(ctx, stepTimeout)
			_, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`Promise.all([...document.images].map(i => { i.loading = 'eager';
				return i.complete ? 0 : new Promise(r => { i.onload = i.onerror = r; }); })).then(() => true)`, chromedp.EvalAwaitPromise))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			eval[bool](t, ctx, `document.activeElement && document.activeElement.blur(), window.scrollTo(0, 0), true`)
			checkOverflow(t, ctx, p.name+" "+vp.suffix)
			// As tall as the page, up to the size's limit.
			if h := int64(eval[int](t, ctx, `document.documentElement.scrollHeight`)); h < vp.h {
				run(t, ctx, chromedp.EmulateViewport(vp.w, h, opts...))
			}
			shot(t, ctx, filepath.Join(dir, p.name+"-"+vp.suffix+".png"))
		}
	}
}

// shot captures the viewport as a small PNG (shrinkPNG).
func shot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, stepTimeout)
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

// shrinkPNG reduces a screenshot to 256 colours and compresses it hard, so
// the committed pictures stay small. The palette is the most common colours
// by 4-bit buckets (so a few shades of a page's background do not crowd out
// a photo's greens); each pixel takes the nearest, looked up once per 5-bit
// bucket. Pages are mostly flat colour, so little shows; photos get a little
// posterized.
func shrinkPNG(raw []byte) ([]byte, error) {
	src, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	b := src.Bounds()
	rgb := func(x, y int) (int, int, int) {
		r, g, bb, _ := src.At(x, y).RGBA()
		return int(r >> 8), int(g >> 8), int(bb >> 8)
	}
	type sum struct{ n, r, g, b int }
	coarse := make([]sum, 1<<12)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb := rgb(x, y)
			c := &coarse[(r>>4)<<8|(g>>4)<<4|bb>>4]
			c.n, c.r, c.g, c.b = c.n+1, c.r+r, c.g+g, c.b+bb
		}
	}
	var used []int
	for k := range coarse {
		if coarse[k].n > 0 {
			used = append(used, k)
		}
	}
	slices.SortFunc(used, func(a, b int) int { return coarse[b].n - coarse[a].n })
	pal := color.Palette{}
	for _, k := range used[:min(256, len(used))] {
		c := coarse[k]
		pal = append(pal, color.RGBA{uint8(c.r / c.n), uint8(c.g / c.n), uint8(c.b / c.n), 255})
	}
	nearest := make([]int16, 1<<15)
	for i := range nearest {
		nearest[i] = -1
	}
	dst := image.NewPaletted(b, pal)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb := rgb(x, y)
			k := (r>>3)<<10 | (g>>3)<<5 | bb>>3
			if nearest[k] < 0 {
				nearest[k] = int16(pal.Index(color.RGBA{uint8(r), uint8(g), uint8(bb), 255}))
			}
			dst.SetColorIndex(x, y, uint8(nearest[k]))
		}
	}
	var out bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&out, dst); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
