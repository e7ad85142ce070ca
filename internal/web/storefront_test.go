package web

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestIndexListsRestaurants(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		res := e.client().get("/")
		res.want(t, http.StatusOK,
			`href="/r/`+e.fx.Restaurant.Slug+`"`, e.fx.Restaurant.Name,
			`href="/r/`+e.fx.Other.Slug+`"`, e.fx.Other.Name)
		if cc := res.header.Get("Cache-Control"); !strings.HasPrefix(cc, "public") {
			t.Errorf("Cache-Control %q", cc)
		}
	})
}

func TestMenuPage(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		path := "/r/" + e.fx.Restaurant.Slug
		res := c.get(path)
		res.want(t, http.StatusOK,
			"<h2 id=\"cat-"+itoa(e.fx.Mains.ID)+"-h\">Mains</h2>", "Sides", "Drinks",
			"Burger", "Beef, brioche", "$10.99", "$3.99", "$1.99",
			"+$1.50", "+$1.00", "+$2.50", // modifier prices
			`src="/media/images/burger.jpg"`,
		)

		// Size (min 1, max 1) is a required radio group with the first
		// choice preselected; Extras (0–3) are checkboxes.
		sizeName := `i` + itoa(e.fx.Burger.ID) + `-g` + itoa(e.fx.Size.ID)
		if !regexp.MustCompile(`type="radio" name="` + sizeName + `" value="` + itoa(e.fx.Small.ID) + `" checked required`).MatchString(res.body) {
			t.Errorf("Size is not a required radio group with Small preselected:\n%s", res.body)
		}
		extrasName := `i` + itoa(e.fx.Burger.ID) + `-g` + itoa(e.fx.Extras.ID)
		if !strings.Contains(res.body, `type="checkbox" name="`+extrasName+`" value="`+itoa(e.fx.Bacon.ID)+`"`) {
			t.Errorf("Extras are not checkboxes")
		}
		if !strings.Contains(res.body, `data-min="0" data-max="3"`) || !strings.Contains(res.body, "optional, up to 3") {
			t.Errorf("Extras group does not carry its limits")
		}

		// The sold-out item is listed, greyed, and cannot be added.
		veggie := section(t, res.body, `<li class="item soldout" id="item-`+itoa(e.fx.VeggieBurger.ID)+`"`, "</li>")
		if !strings.Contains(veggie, "Sold out") {
			t.Errorf("sold-out item not marked:\n%s", veggie)
		}
		if strings.Contains(veggie, "add-form") || strings.Contains(veggie, "Add to cart") {
			t.Errorf("sold-out item can be added:\n%s", veggie)
		}

		// The JSON data block the cart prices from.
		data := section(t, res.body, `<script type="application/json" id="menu-data">`, "</script>")
		data = strings.TrimPrefix(data, `<script type="application/json" id="menu-data">`)
		var cm clientMenu
		if err := json.Unmarshal([]byte(data), &cm); err != nil {
			t.Fatalf("menu data is not JSON: %v\n%s", err, data)
		}
		burger := cm.Items[itoa(e.fx.Burger.ID)]
		if burger.Price != 1099 || !burger.Available || len(burger.Groups) != 2 || burger.Groups[0].Min != 1 {
			t.Errorf("burger in menu data: %+v", burger)
		}
		if cm.Items[itoa(e.fx.VeggieBurger.ID)].Available {
			t.Error("veggie burger available in menu data")
		}
		if cm.Currency.Symbol != "$" || cm.Currency.Digits != 2 || cm.TaxRateBP != 825 {
			t.Errorf("currency/tax in menu data: %+v %d", cm.Currency, cm.TaxRateBP)
		}

		// Versioned: a conditional GET is a 304 until the menu changes.
		etag := res.header.Get("ETag")
		if etag == "" || !strings.Contains(res.header.Get("Cache-Control"), "stale-while-revalidate") {
			t.Fatalf("ETag %q Cache-Control %q", etag, res.header.Get("Cache-Control"))
		}
		c.get(path, "If-None-Match", etag).want(t, http.StatusNotModified)
		if err := e.store.SetItemAvailable(t.Context(), e.fx.Restaurant.ID, e.fx.Fries.ID, false); err != nil {
			t.Fatal(err)
		}
		again := c.get(path, "If-None-Match", etag)
		again.want(t, http.StatusOK)
		if again.header.Get("ETag") == etag {
			t.Error("ETag did not change with the menu")
		}
		if !strings.Contains(again.body, `<li class="item soldout" id="item-`+itoa(e.fx.Fries.ID)+`"`) {
			t.Error("fries not sold out after the edit")
		}
	})
}

func TestMenuOtherCurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	res := e.client().get("/r/" + e.fx.Other.Slug)
	res.want(t, http.StatusOK, "Steak frites", "€22.00")
}

func TestUnknownPagesAre404(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	c := e.client()
	for _, p := range []string{"/r/no-such-place", "/r/no-such-place/checkout", "/nope", "/static/app.css", "/static/app.0000000000.css"} {
		res := c.get(p)
		if res.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, res.status)
		}
	}
	c.get("/r/no-such-place").want(t, http.StatusNotFound, "Page not found")
}

func TestStaticAssetsAreFingerprinted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	c := e.client()
	page := c.get("/")
	for _, name := range []string{"app.css", "app.js"} {
		m := regexp.MustCompile(`/static/app\.[0-9a-f]{10}\.` + strings.TrimPrefix(name, "app.")).FindString(page.body)
		if m == "" {
			t.Fatalf("no fingerprinted %s in page", name)
		}
		res := c.get(m)
		res.want(t, http.StatusOK)
		if got := res.header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("%s Cache-Control %q", m, got)
		}
		want := map[string]string{"app.css": "text/css", "app.js": "text/javascript"}[name]
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("%s Content-Type %q", m, ct)
		}
		c.get(m, "If-None-Match", res.header.Get("ETag")).want(t, http.StatusNotModified)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	res := e.client().get("/r/" + e.fx.Restaurant.Slug)
	for h, want := range map[string]string{
		"Content-Security-Policy": "script-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
	} {
		if got := res.header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to contain %q", h, got, want)
		}
	}
	// No inline script may be needed: every <script> is external or data.
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(res.body, -1) {
		if !strings.Contains(m, "src=") && !strings.Contains(m, `type="application/json"`) {
			t.Errorf("inline script %s would be blocked by the CSP", m)
		}
	}
}

// section returns body from the first start to the next end after it.
func section(t *testing.T, body, start, end string) string {
	t.Helper()
	i := strings.Index(body, start)
	if i < 0 {
		t.Fatalf("%q not found in\n%s", start, body)
	}
	j := strings.Index(body[i:], end)
	if j < 0 {
		return body[i:]
	}
	return body[i : i+j]
}

// TestWrongMethodPage: a page asked with a method it does not take is a
// 405 naming the ones it does (Allow), a path that is no page a 404.
func TestWrongMethodPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	slug := e.fx.Restaurant.Slug
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"PUT", "/", 405, "GET, HEAD"},
		{"DELETE", "/r/" + slug, 405, "GET, HEAD"},
		{"PUT", "/r/" + slug + "/checkout", 405, "GET, HEAD, POST"},
		{"POST", "/admin/login/", 404, ""},
		{"GET", "/no/such/page", 404, ""},
		{"DELETE", "/no/such/page", 404, ""},
	} {
		req, _ := http.NewRequest(c.method, e.srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s %s: %d, Allow %q, %s; want %d, Allow %q, an HTML page", c.method, c.path,
				resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"), c.status, c.allow)
		}
		if c.status == 405 && !strings.Contains(string(body), "Not allowed here") {
			t.Errorf("%s %s: the 405 page says %.200s", c.method, c.path, body)
		}
	}
}
