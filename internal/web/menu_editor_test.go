package web

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/blob"
	"github.com/ladle-dev/ladle/internal/imaging"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// editorEnv is the web UI with what production wires in front of the menu:
// a menu cache (storefront reads through it, the editor invalidates it) and
// a local blob store for photos. manager may edit restaurant A's menu.
type editorEnv struct {
	*env
	cache   *menucache.Cache
	blobs   *blob.Local
	manager *ladle.User
}

func newEditorEnv(t *testing.T, backend string, bus menucache.Bus) *editorEnv {
	t.Helper()
	ee := &editorEnv{}
	var err error
	if ee.blobs, err = blob.NewLocal(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	ee.env = newEnv(t, backend, func(d *Deps) {
		ee.cache, err = menucache.New(menucache.Config{Source: d.Store, Bus: bus, VersionTTL: time.Hour,
			ImageURL: imaging.URLFunc(""), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ee.cache.Close() })
		d.Menus, d.MenuChanged, d.Images = ee.cache, ee.cache.Invalidate, ee.blobs
		d.ImageURL = imaging.URLFunc("")
	})
	ee.manager = ee.user("manager", ee.fx.Restaurant.ID)
	if err := ee.store.AddMembership(context.Background(), ladle.Membership{UserID: ee.manager.ID,
		RestaurantID: ee.fx.Restaurant.ID, Role: ladle.RoleManager}); err != nil {
		t.Fatal(err)
	}
	return ee
}

// editorBackends runs fn on SQLite, and on PostgreSQL when configured.
func editorBackends(t *testing.T, fn func(t *testing.T, e *editorEnv)) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			if backend == "postgres" {
				testenv.PostgresURL(t)
			}
			fn(t, newEditorEnv(t, backend, nil))
		})
	}
}

func (e *editorEnv) menu(rid int64) *ladle.Menu {
	e.t.Helper()
	m, err := e.store.Menu(context.Background(), rid)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *editorEnv) item(id int64) *ladle.Item {
	e.t.Helper()
	it := e.menu(e.fx.Restaurant.ID).ItemByID(id)
	if it == nil {
		e.t.Fatalf("item %d is gone", id)
	}
	return it
}

// ver is the item's current version, as the item page's forms carry it.
func (e *editorEnv) ver(id int64) string { return strconv.FormatInt(e.item(id).Version, 10) }

func (e *editorEnv) base() string { return "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/menu" }

// wantRedirect checks a 303 back into the editor with "saved" and returns
// its target.
func wantRedirect(t *testing.T, r *response) string {
	t.Helper()
	if r.status != http.StatusSeeOther {
		t.Fatalf("status %d, want 303\n%s", r.status, r.body)
	}
	loc := r.header.Get("Location")
	if !strings.Contains(loc, "saved=1") {
		t.Fatalf("redirect to %q, want saved=1", loc)
	}
	return loc
}

// The whole editor, as a manager uses it: every change is on the editor's
// next page load, and on the storefront (which reads through the cache) at
// once.
func TestMenuEditor(t *testing.T) {
	t.Parallel()
	editorBackends(t, func(t *testing.T, e *editorEnv) {
		c := e.client()
		c.login(e.manager)
		base, slug, rid := e.base(), "/r/"+e.fx.Restaurant.Slug, e.fx.Restaurant.ID

		c.get(base).want(t, http.StatusOK, "Burger", "$10.99", "Veggie Burger", "Sold out", "Size", "Avocado")
		guest := e.client()
		store := guest.get(slug)
		store.want(t, http.StatusOK, "$3.99")
		etag := store.header.Get("ETag")

		// Price of an item, on its page.
		fries := e.fx.Fries
		page := c.get(base + "/items/" + itoa(fries.ID))
		page.want(t, http.StatusOK, `value="3.99"`)
		form := url.Values{"name": {"Fries"}, "description": {"Hand-cut, sea salt"}, "price": {"4.25"},
			"category_id": {itoa(fries.CategoryID)}, "available": {"1"}, "version": {e.ver(fries.ID)}}
		wantRedirect(t, c.post(base+"/items/"+itoa(fries.ID), form))
		if it := e.item(fries.ID); it.Price != 425 || it.Description != "Hand-cut, sea salt" || !it.Available {
			t.Fatalf("after saving: %+v", it)
		}
		c.get(base+"/items/"+itoa(fries.ID)+"?saved=1").want(t, http.StatusOK, `value="4.25"`, "Saved.")
		// The guest sees it on the next load: the revalidation is a 200 now.
		res := guest.get(slug, "If-None-Match", etag)
		res.want(t, http.StatusOK, "$4.25")
		res.wantNot(t, "$3.99")

		// Sold-out toggle, both ways.
		wantRedirect(t, c.post(base+"/items/"+itoa(fries.ID)+"/available", url.Values{"available": {"false"}}))
		if e.item(fries.ID).Available {
			t.Fatal("still available after marking sold out")
		}
		c.get(base).want(t, http.StatusOK, "Mark available")
		wantRedirect(t, c.post(base+"/items/"+itoa(fries.ID)+"/available", url.Values{"available": {"true"}}))
		if !e.item(fries.ID).Available {
			t.Fatal("still sold out after marking available")
		}

		// A category with an item, a group with choices, attached.
		loc := wantRedirect(t, c.post(base+"/categories", url.Values{"name": {"Soups"}}))
		m := e.menu(rid)
		soups := m.Categories[len(m.Categories)-1]
		if soups.Name != "Soups" || !strings.Contains(loc, "#category-"+itoa(soups.ID)) {
			t.Fatalf("new category: %+v, redirect %s", soups, loc)
		}
		loc = wantRedirect(t, c.post(base+"/items", url.Values{"category_id": {itoa(soups.ID)}, "name": {"Tomato soup"}, "price": {"6.5"}}))
		soupID := e.menu(rid).Categories[len(m.Categories)-1].Items[0].ID
		if !strings.HasPrefix(loc, base+"/items/"+itoa(soupID)) || e.item(soupID).Price != 650 {
			t.Fatalf("new item: redirect %s, %+v", loc, e.item(soupID))
		}
		extras := e.fx.Extras
		gbase := base + "/groups/" + itoa(extras.ID)
		wantRedirect(t, c.post(gbase+"/modifiers", url.Values{"name": {"Hot sauce"}, "price": {"0.50"}}))
		ex := findGroupNamed(t, e.menu(rid), "Extras")
		if len(ex.Modifiers) != 4 || ex.Modifiers[3].Name != "Hot sauce" || ex.Modifiers[3].Price != 50 {
			t.Fatalf("Extras = %+v", ex)
		}
		wantRedirect(t, c.post(base+"/items/"+itoa(soupID), url.Values{"name": {"Tomato soup"}, "price": {"6.50"},
			"version": {e.ver(soupID)}, "category_id": {itoa(soups.ID)}, "available": {"1"}, "group": {itoa(extras.ID)}}))
		if g := e.item(soupID).ModifierGroups; len(g) != 1 || g[0].ID != extras.ID {
			t.Fatalf("soup groups = %+v", g)
		}
		guest.get(slug).want(t, http.StatusOK, "Tomato soup", "$6.50", "Hot sauce")

		// Modifier price and name; group name and limits.
		hot := ex.Modifiers[3]
		wantRedirect(t, c.post(base+"/modifiers/"+itoa(hot.ID), url.Values{"name": {"Extra hot sauce"}, "price": {"0.75"}}))
		wantRedirect(t, c.post(gbase, url.Values{"name": {"Toppings"}, "min": {"0"}, "max": {"2"}}))
		heat := findGroupNamed(t, e.menu(rid), "Toppings")
		if heat.Max != 2 || heat.Modifiers[3].Name != "Extra hot sauce" || heat.Modifiers[3].Price != 75 {
			t.Fatalf("Toppings = %+v", heat)
		}

		// Ordering: the sauce up one, Soups up one, Burger down one.
		wantRedirect(t, c.post(base+"/modifiers/"+itoa(hot.ID)+"/move", url.Values{"direction": {"up"}}))
		if h := findGroupNamed(t, e.menu(rid), "Toppings"); h.Modifiers[2].Name != "Extra hot sauce" || h.Modifiers[3].Name != "Avocado" {
			t.Fatalf("after moving the sauce up: %+v", h.Modifiers)
		}
		wantRedirect(t, c.post(base+"/categories/"+itoa(soups.ID)+"/move", url.Values{"direction": {"up"}}))
		names := func() []string {
			var out []string
			for _, c := range e.menu(rid).Categories {
				out = append(out, c.Name)
			}
			return out
		}
		if got := strings.Join(names(), ","); got != "Mains,Sides,Soups,Drinks" {
			t.Fatalf("categories after moving Soups up: %s", got)
		}
		wantRedirect(t, c.post(base+"/categories/"+itoa(soups.ID)+"/move", url.Values{"direction": {"down"}}))
		wantRedirect(t, c.post(base+"/categories/"+itoa(soups.ID)+"/move", url.Values{"direction": {"down"}})) // already last
		if got := strings.Join(names(), ","); got != "Mains,Sides,Drinks,Soups" {
			t.Fatalf("categories after moving Soups down twice: %s", got)
		}
		burger, veggie := e.fx.Burger.ID, e.fx.VeggieBurger.ID
		wantRedirect(t, c.post(base+"/items/"+itoa(burger)+"/move", url.Values{"direction": {"down"}}))
		if mains := e.menu(rid).Categories[0]; mains.Items[0].ID != veggie || mains.Items[1].ID != burger {
			t.Fatalf("Mains after moving Burger down: %v, %v", mains.Items[0].Name, mains.Items[1].Name)
		}
		// The storefront lists them in the new order at once.
		sf := guest.get(slug).body
		if strings.Index(sf, "Veggie Burger") > strings.Index(sf, ">Burger<") {
			t.Error("the storefront still shows the old order")
		}

		// Refusals: the editor re-renders with the reason, nothing changes.
		before := e.menu(rid).Version
		c.post(base+"/items/"+itoa(fries.ID), url.Values{"name": {"Fries"}, "price": {"four"}, "category_id": {itoa(fries.CategoryID)}, "version": {e.ver(fries.ID)}}).
			want(t, http.StatusUnprocessableEntity, "Not saved: Price must be an amount like 12.50.")
		c.post(base+"/items/"+itoa(fries.ID), url.Values{"name": {"Fries"}, "price": {"-1"}, "category_id": {itoa(fries.CategoryID)}, "version": {e.ver(fries.ID)}}).
			want(t, http.StatusUnprocessableEntity, "Not saved")
		c.post(base+"/items/"+itoa(fries.ID), url.Values{"name": {"  "}, "price": {"1"}, "category_id": {itoa(fries.CategoryID)}, "version": {e.ver(fries.ID)}}).
			want(t, http.StatusUnprocessableEntity, "Name is required")
		c.post(base+"/groups/"+itoa(heat.ID), url.Values{"name": {"Heat"}, "min": {"3"}, "max": {"1"}}).
			want(t, http.StatusUnprocessableEntity, "Max must be 0 (no limit) or at least min.")
		c.post(base+"/categories/"+itoa(soups.ID)+"/delete", nil).want(t, http.StatusConflict, "still has 1 items")
		c.post(base+"/items/"+itoa(fries.ID)+"/move", url.Values{"direction": {"sideways"}}).want(t, http.StatusUnprocessableEntity)
		if e.menu(rid).Version != before || e.item(fries.ID).Price != 425 {
			t.Fatal("a refused edit changed the menu")
		}

		// Deletes.
		wantRedirect(t, c.post(base+"/modifiers/"+itoa(hot.ID)+"/delete", nil))
		wantRedirect(t, c.post(base+"/items/"+itoa(soupID)+"/delete", nil))
		wantRedirect(t, c.post(base+"/categories/"+itoa(soups.ID)+"/delete", nil))
		wantRedirect(t, c.post(base+"/groups/"+itoa(heat.ID)+"/delete", nil))
		m = e.menu(rid)
		if m.ItemByID(soupID) != nil || len(m.Categories) != 3 {
			t.Fatalf("after deletes: %d categories", len(m.Categories))
		}
		if len(m.ItemByID(burger).ModifierGroups) != 1 {
			t.Fatal("the deleted group is still attached to the burger")
		}
		guest.get(slug).wantNot(t, "Tomato soup", "Toppings", "Extra hot sauce")
	})
}

// A new group is listed in the editor before any item uses it, and gets its
// choices there.
func TestMenuEditorNewGroup(t *testing.T) {
	t.Parallel()
	e := newEditorEnv(t, "sqlite", nil)
	if e.menu(e.fx.Restaurant.ID).Groups == nil {
		t.Fatal("the store does not fill ladle.Menu.Groups, so an unattached group cannot be listed")
	}
	c := e.client()
	c.login(e.manager)
	base, rid := e.base(), e.fx.Restaurant.ID
	loc := wantRedirect(t, c.post(base+"/groups", url.Values{"name": {"Spice"}, "min": {"0"}, "max": {"1"}}))
	spice := findGroupNamed(t, e.menu(rid), "Spice")
	if !strings.HasSuffix(loc, "#group-"+itoa(spice.ID)) || spice.Position != 2 {
		t.Fatalf("new group %+v, redirect %s", spice, loc)
	}
	wantRedirect(t, c.post(base+"/groups/"+itoa(spice.ID)+"/modifiers", url.Values{"name": {"Hot"}, "price": {"0.50"}}))
	wantRedirect(t, c.post(base+"/groups/"+itoa(spice.ID)+"/move", url.Values{"direction": {"up"}}))
	c.get(base).want(t, http.StatusOK, `id="group-`+itoa(spice.ID)+`"`, `value="Hot"`, `value="0.50"`)
	if g := allGroups(e.menu(rid)); g[1].Name != "Spice" || g[1].Modifiers[0].Name != "Hot" {
		t.Fatalf("groups after moving Spice up: %+v", g)
	}
}

func findGroupNamed(t *testing.T, m *ladle.Menu, name string) ladle.ModifierGroup {
	t.Helper()
	for _, g := range allGroups(m) {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no group %q (groups: %+v)", name, allGroups(m))
	return ladle.ModifierGroup{}
}

// Only owners and managers edit; staff get 403 and change nothing. Ids of
// another restaurant — in the path or in a form — are 404 and change
// nothing there or here.
func TestMenuEditorRolesAndTenants(t *testing.T) {
	t.Parallel()
	e := newEditorEnv(t, "sqlite", nil)
	rid, oid := e.fx.Restaurant.ID, e.fx.Other.ID
	base := e.base()
	before, otherBefore := e.menu(rid).Version, e.menu(oid).Version

	staff := e.client()
	staff.login(e.staffA) // role staff in A
	staff.get(base).want(t, http.StatusForbidden, "owners and managers")
	staff.post(base+"/items/"+itoa(e.fx.Fries.ID), url.Values{"name": {"Fries"}, "price": {"0.01"},
		"category_id": {itoa(e.fx.Fries.CategoryID)}}).want(t, http.StatusForbidden)
	staff.post(base+"/items/"+itoa(e.fx.Fries.ID)+"/available", url.Values{"available": {"false"}}).want(t, http.StatusForbidden)
	staff.post(base+"/categories", url.Values{"name": {"Hacked"}}).want(t, http.StatusForbidden)

	c := e.client()
	c.login(e.manager)
	notFound := c.get("/r/no-such-restaurant").body
	otherBase := "/admin/r/" + itoa(oid) + "/menu"
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		// Another restaurant's editor, and its ids through our editor.
		{otherBase + "/categories", url.Values{"name": {"Hacked"}}},
		{otherBase + "/items/" + itoa(e.fx.OtherItem.ID) + "/available", url.Values{"available": {"false"}}},
		{base + "/items/" + itoa(e.fx.OtherItem.ID), url.Values{"name": {"x"}, "price": {"0.01"}, "category_id": {itoa(e.fx.OtherCategory.ID)}}},
		{base + "/items/" + itoa(e.fx.OtherItem.ID) + "/available", url.Values{"available": {"false"}}},
		{base + "/items/" + itoa(e.fx.OtherItem.ID) + "/move", url.Values{"direction": {"up"}}},
		{base + "/items/" + itoa(e.fx.OtherItem.ID) + "/delete", nil},
		{base + "/categories/" + itoa(e.fx.OtherCategory.ID), url.Values{"name": {"x"}}},
		{base + "/categories/" + itoa(e.fx.OtherCategory.ID) + "/delete", nil},
		{base + "/groups/" + itoa(e.fx.OtherGroup.ID), url.Values{"name": {"x"}, "min": {"0"}, "max": {"1"}}},
		{base + "/groups/" + itoa(e.fx.OtherGroup.ID) + "/modifiers", url.Values{"name": {"x"}, "price": {"1"}}},
		{base + "/groups/" + itoa(e.fx.OtherGroup.ID) + "/delete", nil},
		{base + "/modifiers/" + itoa(e.fx.OtherModifier.ID), url.Values{"name": {"x"}, "price": {"1"}}},
		{base + "/modifiers/" + itoa(e.fx.OtherModifier.ID) + "/delete", nil},
		// Our item, but moved into their category or given their group.
		{base + "/items/" + itoa(e.fx.Fries.ID), url.Values{"name": {"Fries"}, "price": {"1"}, "category_id": {itoa(e.fx.OtherCategory.ID)},
			"version": {e.ver(e.fx.Fries.ID)}}},
		{base + "/items/" + itoa(e.fx.Fries.ID), url.Values{"name": {"Fries"}, "price": {"0.01"}, "category_id": {itoa(e.fx.Fries.CategoryID)},
			"group": {itoa(e.fx.OtherGroup.ID)}, "version": {e.ver(e.fx.Fries.ID)}}},
		{base + "/items", url.Values{"category_id": {itoa(e.fx.OtherCategory.ID)}, "name": {"x"}, "price": {"1"}}},
	} {
		res := c.post(tc.path, tc.form)
		if res.status != http.StatusNotFound || res.body != notFound {
			t.Errorf("POST %s: %d, want the plain 404", tc.path, res.status)
		}
	}
	c.get(otherBase).want(t, http.StatusNotFound)
	c.get(base+"/items/"+itoa(e.fx.OtherItem.ID)).want(t, http.StatusNotFound)
	if e.menu(rid).Version != before || e.menu(oid).Version != otherBefore {
		t.Fatal("a refused request changed a menu")
	}
	if it := e.item(e.fx.Fries.ID); it.Price != 399 || len(it.ModifierGroups) != 0 {
		t.Fatalf("fries changed: %+v", it)
	}
}

// pngBytes is a small real PNG.
func pngBytes(t *testing.T) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 32, 24))
	for y := range 24 {
		for x := range 32 {
			img.Set(x, y, color.NRGBA{uint8(x * 8), 90, uint8(y * 10), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (c *client) upload(path, filename string, data []byte, fields ...string) *response {
	c.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for i := 0; i+1 < len(fields); i += 2 {
		mw.WriteField(fields[i], fields[i+1])
	}
	if data != nil {
		fw, _ := mw.CreateFormFile("image", filename)
		fw.Write(data)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, c.base+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return c.do(req)
}

// A photo upload is checked, re-encoded and stored under its hash; the item
// and the storefront point at it. Bad files are refused and change nothing.
func TestMenuEditorImageUpload(t *testing.T) {
	t.Parallel()
	e := newEditorEnv(t, "sqlite", nil)
	c := e.client()
	c.login(e.manager)
	path := e.base() + "/items/" + itoa(e.fx.Fries.ID) + "/image"

	v := func() string { return e.ver(e.fx.Fries.ID) }
	wantRedirect(t, c.upload(path, "fries.png", pngBytes(t), "version", v()))
	key := e.item(e.fx.Fries.ID).ImageKey
	if !imaging.ValidKey(key) || !strings.HasSuffix(key, ".png") {
		t.Fatalf("image key %q", key)
	}
	info, err := e.blobs.Stat(context.Background(), key)
	if err != nil || info.Size == 0 {
		t.Fatalf("stored image: %+v, %v", info, err)
	}
	c.get(e.base()+"/items/"+itoa(e.fx.Fries.ID)).want(t, http.StatusOK, `src="/media/`+key+`"`)
	e.client().get("/r/"+e.fx.Restaurant.Slug).want(t, http.StatusOK, "/media/"+key)

	c.upload(path, "notes.png", []byte("this is text, whatever the name says"), "version", v()).
		want(t, http.StatusUnprocessableEntity, "not a JPEG, PNG, WebP or GIF image")
	c.upload(path, "huge.png", append(pngBytes(t), make([]byte, 5<<20)...), "version", v()).
		want(t, http.StatusRequestEntityTooLarge, "larger than 5 MB")
	c.upload(path, "", nil, "version", v()).want(t, http.StatusUnprocessableEntity, "choose a file")
	if got := e.item(e.fx.Fries.ID).ImageKey; got != key {
		t.Fatalf("a refused upload changed the image to %q", got)
	}

	wantRedirect(t, c.upload(path, "", nil, "action", "remove", "version", v()))
	if got := e.item(e.fx.Fries.ID).ImageKey; got != "" {
		t.Fatalf("after remove the image is %q", got)
	}
	// Another restaurant's item cannot get a photo through this editor.
	c.upload(e.base()+"/items/"+itoa(e.fx.OtherItem.ID)+"/image", "x.png", pngBytes(t), "version", "1").want(t, http.StatusNotFound)
}

// Two processes, each with its own cache, over one database and one NATS:
// an edit in process A's editor is on process B's storefront within one
// second, and checkout charges the new price.
func TestMenuEditorTwoProcesses(t *testing.T) {
	t.Parallel()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	conn := func() *nats.Conn {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	subject := "test.menu." + randHex(4)
	a := newEditorEnv(t, "sqlite", menucache.NewNATSBus(conn(), subject))

	cacheB, err := menucache.New(menucache.Config{Source: a.store, Bus: menucache.NewNATSBus(conn(), subject),
		VersionTTL: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cacheB.Close() })
	b := httptest.NewServer(New(Deps{Store: a.store, Menus: cacheB, MenuChanged: cacheB.Invalidate, Ordering: a.svc,
		Auth: a.auth, Logger: quiet, Now: a.clock.Now}))
	t.Cleanup(b.Close)
	guestB := &client{t: t, base: b.URL, hc: &http.Client{Timeout: 10 * time.Second}}

	slug := "/r/" + a.fx.Restaurant.Slug
	guestB.get(slug).want(t, http.StatusOK, "$3.99") // B has the menu cached

	c := a.client()
	c.login(a.manager)
	fries := a.fx.Fries
	wantRedirect(t, c.post(a.base()+"/items/"+itoa(fries.ID), url.Values{"name": {"Fries"}, "price": {"5.10"},
		"category_id": {itoa(fries.CategoryID)}, "available": {"1"}, "version": {a.ver(fries.ID)}}))
	edited := time.Now()
	a.client().get(slug).want(t, http.StatusOK, "$5.10") // the editor's process, at once
	for !strings.Contains(guestB.get(slug).body, "$5.10") {
		if time.Since(edited) > time.Second {
			t.Fatal("process B's storefront still shows the old price a second after the edit")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("process B showed the edit %v after it", time.Since(edited).Round(time.Millisecond))

	// Checkout on B's storefront charges the new price.
	res := guestB.post(slug+"/checkout", url.Values{
		"name": {"Ada"}, "email": {"two-processes@example.com"}, "pickup": {"asap"}, "payment": {"pay_at_pickup"},
		"cart":            {`[{"item_id":` + itoa(fries.ID) + `,"quantity":2,"modifier_ids":[]}]`},
		"idempotency_key": {newKey()}, "confirm_duplicate": {"0"},
	}, "Origin", b.URL)
	if res.status != http.StatusSeeOther && res.status != http.StatusOK {
		t.Fatalf("checkout on B: %d\n%s", res.status, res.body)
	}
	orders := a.orders(a.fx.Restaurant.ID)
	if len(orders) != 1 || orders[0].Lines[0].UnitPrice != 510 || orders[0].Subtotal != 1020 {
		t.Fatalf("orders = %+v, want one charged at 5.10 each", orders)
	}
}

var formVersionRE = regexp.MustCompile(`<form method="post" action="[^"]*/items/\d+" class="panel me-item-form" id="item-form">\s*<input type="hidden" name="version" value="(\d+)">`)

// pageVersion is the item version the item page's form carries.
func pageVersion(t *testing.T, page string) string {
	t.Helper()
	m := formVersionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no version in the item form:\n%s", page)
	}
	return m[1]
}

// Two managers edit the same item from pages opened at the same version:
// the second save is refused with 409 and a clear message, the form keeps
// what they typed, nothing of the first save is lost, and saving again from
// the refused page goes through. An image upload made from an older page
// is refused the same way instead of writing the item back from a stale read.
func TestMenuEditorConcurrentEdits(t *testing.T) {
	t.Parallel()
	editorBackends(t, func(t *testing.T, e *editorEnv) {
		a, b := e.client(), e.client()
		a.login(e.manager)
		b.login(e.manager)
		fries := e.fx.Fries
		itemPath := e.base() + "/items/" + itoa(fries.ID)
		pageA, pageB := a.get(itemPath).body, b.get(itemPath).body
		va, vb := pageVersion(t, pageA), pageVersion(t, pageB)
		if va != vb {
			t.Fatalf("two reads of one item: versions %s and %s", va, vb)
		}
		form := func(name, desc, price, version string) url.Values {
			return url.Values{"name": {name}, "description": {desc}, "price": {price},
				"category_id": {itoa(fries.CategoryID)}, "available": {"1"}, "version": {version}}
		}

		wantRedirect(t, a.post(itemPath, form("Fries", "Saved by A", "4.10", va)))
		res := b.post(itemPath, form("Chips", "Typed by B", "9.99", vb))
		res.want(t, http.StatusConflict, "someone else changed this item after you opened it",
			`value="Chips"`, "Typed by B", `value="9.99"`)
		if it := e.item(fries.ID); it.Description != "Saved by A" || it.Price != 410 || it.Name != "Fries" {
			t.Fatalf("the refused save changed the item: %+v", it)
		}
		// The refused page carries the current version: saving it again is
		// a deliberate overwrite, and works.
		again := pageVersion(t, res.body)
		if again != e.ver(fries.ID) {
			t.Fatalf("the refused form carries version %s, the item is at %s", again, e.ver(fries.ID))
		}
		wantRedirect(t, b.post(itemPath, form("Chips", "Typed by B", "9.99", again)))
		if it := e.item(fries.ID); it.Name != "Chips" || it.Price != 999 {
			t.Fatalf("the second save did not apply: %+v", it)
		}

		// An upload from a page opened before a save: refused, the save
		// stays, no image.
		stale := e.ver(fries.ID)
		wantRedirect(t, a.post(itemPath, form("Chips", "Newer", "5.00", stale)))
		a.upload(itemPath+"/image", "fries.png", pngBytes(t), "version", stale).
			want(t, http.StatusConflict, "someone else changed this item")
		if it := e.item(fries.ID); it.Description != "Newer" || it.Price != 500 || it.ImageKey != "" {
			t.Fatalf("a stale upload changed the item: %+v", it)
		}
		// From the current page it goes through and writes the image only.
		wantRedirect(t, a.upload(itemPath+"/image", "fries.png", pngBytes(t), "version", e.ver(fries.ID)))
		if it := e.item(fries.ID); it.Description != "Newer" || it.Price != 500 || it.ImageKey == "" {
			t.Fatalf("after the upload: %+v", it)
		}
		// A form opened before the upload cannot clear the photo.
		a.post(itemPath, form("Chips", "Older page", "5.00", stale)).want(t, http.StatusConflict)
		if it := e.item(fries.ID); it.ImageKey == "" || it.Description != "Newer" {
			t.Fatalf("a stale form undid the upload: %+v", it)
		}
	})
}
