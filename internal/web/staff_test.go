package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
)

func TestStaffPagesNeedALogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	c := e.client()
	res := c.get("/admin/")
	res.want(t, http.StatusSeeOther)
	if loc := res.header.Get("Location"); loc != "/admin/login?next=%2Fadmin%2F" {
		t.Fatalf("Location %q", loc)
	}
	board := "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders"
	res = c.get(board)
	if loc := res.header.Get("Location"); res.status != http.StatusSeeOther || loc != "/admin/login?next="+url.QueryEscape(board) {
		t.Fatalf("board without login: %d %q", res.status, loc)
	}
	o := e.place(e.fx.Restaurant, e.request("nologin@example.com"))
	res = c.post(board+"/"+o.ID+"/status", url.Values{"status": {"accepted"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/admin/login" {
		t.Fatalf("status post without login: %d %q", res.status, res.header.Get("Location"))
	}
	if got := e.order(e.fx.Restaurant.ID, o.ID); got.Status != ladle.StatusPlaced {
		t.Fatalf("order moved to %s without a login", got.Status)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		c.get("/admin/login").want(t, http.StatusOK, `<label for="l-email">Email</label>`, `<label for="l-password">Password</label>`)

		wrong := c.post("/admin/login", url.Values{"email": {e.staffA.Email}, "password": {"nope"}})
		wrong.want(t, http.StatusUnauthorized, "Email or password is incorrect.", `value="`+e.staffA.Email+`"`)
		unknown := c.post("/admin/login", url.Values{"email": {"ghost@staff.example"}, "password": {"nope"}})
		unknown.want(t, http.StatusUnauthorized, "Email or password is incorrect.")
		if len(wrong.header.Values("Set-Cookie")) != 0 {
			t.Fatal("a failed login set a cookie")
		}

		res := c.post("/admin/login", url.Values{"email": {strings.ToUpper(e.staffA.Email)}, "password": {staffPassword},
			"next": {"/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders"}})
		res.want(t, http.StatusSeeOther)
		if loc := res.header.Get("Location"); loc != "/admin/r/"+itoa(e.fx.Restaurant.ID)+"/orders" {
			t.Fatalf("after login to %q", loc)
		}
		ck := res.header.Get("Set-Cookie")
		for _, want := range []string{auth.CookieName + "=", "Path=/", "HttpOnly", "SameSite=Lax"} {
			if !strings.Contains(ck, want) {
				t.Errorf("Set-Cookie %q lacks %q", ck, want)
			}
		}
		// One restaurant: /admin/ goes straight to its board.
		home := c.get("/admin/")
		if home.status != http.StatusSeeOther || home.header.Get("Location") != "/admin/r/"+itoa(e.fx.Restaurant.ID)+"/orders" {
			t.Fatalf("/admin/: %d %q", home.status, home.header.Get("Location"))
		}
		c.get("/admin/r/"+itoa(e.fx.Restaurant.ID)+"/orders").want(t, http.StatusOK, e.fx.Restaurant.Name, "Sign out", "Staff a")
		// Signed in, the login page moves on.
		if res := c.get("/admin/login"); res.status != http.StatusSeeOther {
			t.Fatalf("login page when signed in: %d", res.status)
		}
	})
}

func TestLoginNextIsNotAnOpenRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	for _, next := range []string{"https://evil.example/", "//evil.example/admin/", "/elsewhere", "/admin/\\evil", "javascript:alert(1)"} {
		c := e.client()
		res := c.post("/admin/login", url.Values{"email": {e.staffA.Email}, "password": {staffPassword}, "next": {next}})
		if res.status != http.StatusSeeOther || res.header.Get("Location") != "/admin/" {
			t.Errorf("next=%q: %d to %q, want /admin/", next, res.status, res.header.Get("Location"))
		}
	}
}

func TestLoginRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	c := e.client()
	for range auth.DefaultMaxFailures {
		c.post("/admin/login", url.Values{"email": {e.staffA.Email}, "password": {"guess"}}).want(t, http.StatusUnauthorized)
	}
	res := c.post("/admin/login", url.Values{"email": {e.staffA.Email}, "password": {staffPassword}})
	res.want(t, http.StatusTooManyRequests, "Too many failed sign-in attempts")
	if res.header.Get("Retry-After") != "900" {
		t.Fatalf("Retry-After %q", res.header.Get("Retry-After"))
	}
	if len(res.header.Values("Set-Cookie")) != 0 {
		t.Fatal("a rate-limited login set a cookie")
	}
	e.clock.Add(auth.DefaultFailWindow)
	c.post("/admin/login", url.Values{"email": {e.staffA.Email}, "password": {staffPassword}}).want(t, http.StatusSeeOther)
}

func TestLogout(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		c := e.client()
		c.login(e.staffA)
		u, _ := url.Parse(e.srv.URL)
		stolen := ""
		for _, ck := range c.hc.Jar.Cookies(u) {
			if ck.Name == auth.CookieName {
				stolen = ck.Value
			}
		}
		if stolen == "" {
			t.Fatal("no session cookie")
		}

		c.post("/admin/logout", nil).want(t, http.StatusSeeOther)
		if res := c.get("/admin/"); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/admin/login") {
			t.Fatalf("after logout /admin/ is %d %q", res.status, res.header.Get("Location"))
		}
		// The session is deleted server-side, so a copy of the cookie is useless.
		other := e.client()
		res := other.get("/admin/", "Cookie", auth.CookieName+"="+stolen)
		if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/admin/login") {
			t.Fatalf("old cookie after logout: %d %q", res.status, res.header.Get("Location"))
		}
	})
}

func TestSessionExpiresAfter12Hours(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	e.clock.Set(time.Now())
	c := e.client()
	c.login(e.staffA)
	c.get("/admin/r/"+itoa(e.fx.Restaurant.ID)+"/orders").want(t, http.StatusOK)
	e.clock.Add(auth.DefaultSessionTTL + time.Second)
	if res := c.get("/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders"); res.status != http.StatusSeeOther {
		t.Fatalf("expired session: %d", res.status)
	}
}

func TestRestaurantPicker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	c := e.client()
	c.login(e.multi)
	res := c.get("/admin/")
	res.want(t, http.StatusOK, "Your restaurants",
		`href="/admin/r/`+itoa(e.fx.Restaurant.ID)+`/orders"`, e.fx.Restaurant.Name,
		`href="/admin/r/`+itoa(e.fx.Other.ID)+`/orders"`, e.fx.Other.Name)
	c.get("/admin/r/"+itoa(e.fx.Other.ID)+"/orders").want(t, http.StatusOK, e.fx.Other.Name, `aria-current="page">`+e.fx.Other.Name)
	c.get("/admin/r/"+itoa(e.fx.Other.ID)+"/").want(t, http.StatusSeeOther)

	nobody := e.user("nobody")
	c2 := e.client()
	c2.login(nobody)
	c2.get("/admin/").want(t, http.StatusOK, "not part of any restaurant")
}

func TestBoardShowsTodaysOrders(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		// 03:30 UTC on June 15 is still June 14 in New York (UTC-4).
		e.clock.Set(time.Date(2030, 6, 15, 3, 30, 0, 0, time.UTC))
		yesterday := e.place(e.fx.Restaurant, e.request("yesterday@example.com"))
		e.clock.Set(time.Date(2030, 6, 15, 14, 0, 0, 0, time.UTC)) // 10:00 in New York
		today := e.place(e.fx.Restaurant, e.request("today@example.com"))
		req := e.request("later@example.com")
		req.Fulfillment.Time = "2030-06-15T16:45:00Z"
		later := e.place(e.fx.Restaurant, req)
		other := e.place(e.fx.Other, e.otherRequest())

		c := e.client()
		c.login(e.staffA)
		res := c.get("/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders")
		res.want(t, http.StatusOK, "Saturday, June 15", "2 orders today",
			`id="order-`+today.ID+`"`, `id="order-`+later.ID+`"`,
			"#"+itoa(today.Number), "Ada Lovelace", "2×", "Large, Cheese", "Fries",
			formatMoney(today.Total, "USD"), "due at pickup",
			"Ordered 10:00 AM", "<strong>ASAP</strong>", "<strong>12:45 PM</strong>",
			">Accept</button>", `<input type="hidden" name="status" value="accepted">`,
			"Cancel order #"+itoa(today.Number), `name="reason" required`,
		)
		res.wantNot(t, `id="order-`+yesterday.ID+`"`, `id="order-`+other.ID+`"`, "Steak frites")
		if res.header.Get("Cache-Control") != "no-store" {
			t.Errorf("board Cache-Control %q", res.header.Get("Cache-Control"))
		}
	})
}

func TestOrderStatusTransitions(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		o := e.place(e.fx.Restaurant, e.request("moves@example.com"))
		c := e.client()
		c.login(e.staffA)
		path := "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders/" + o.ID + "/status"
		board := "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders"

		res := c.post(path, url.Values{"status": {"accepted"}})
		res.want(t, http.StatusSeeOther)
		if loc := res.header.Get("Location"); loc != board+"?updated="+o.ID+"#order-"+o.ID {
			t.Fatalf("Location %q", loc)
		}
		if got := e.order(e.fx.Restaurant.ID, o.ID); got.Status != ladle.StatusAccepted {
			t.Fatalf("status %s, want accepted", got.Status)
		}
		page := c.get(board + "?updated=" + o.ID)
		page.want(t, http.StatusOK, "ticket status-accepted updated", ">Start preparing</button>")
		page.wantNot(t, ">Accept</button>")

		// Skipping steps is refused with a message, and nothing changes.
		res = c.post(path, url.Values{"status": {"completed"}})
		res.want(t, http.StatusConflict, `role="alert" id="board-error"`, "is accepted and can’t be moved to “picked up”")
		if got := e.order(e.fx.Restaurant.ID, o.ID); got.Status != ladle.StatusAccepted {
			t.Fatalf("status %s after a refused move", got.Status)
		}
		c.post(path, url.Values{"status": {"bogus"}}).want(t, http.StatusUnprocessableEntity, "Unknown status")
		c.post(path, url.Values{"status": {"pending_payment"}}).want(t, http.StatusConflict)

		// Cancelling needs a reason.
		c.post(path, url.Values{"status": {"cancelled"}, "reason": {"   "}}).want(t, http.StatusUnprocessableEntity, "please give a reason")
		c.post(path, url.Values{"status": {"cancelled"}, "reason": {strings.Repeat("x", 201)}}).want(t, http.StatusUnprocessableEntity, "longer than 200")
		for _, bad := range []string{"Out of\x00buns", "Out of \xff buns", "Out of\r\nBcc: x", "\u202eOut of buns"} {
			c.post(path, url.Values{"status": {"cancelled"}, "reason": {bad}}).want(t, http.StatusUnprocessableEntity, "was not cancelled: the reason")
		}
		if got := e.order(e.fx.Restaurant.ID, o.ID); got.Status != ladle.StatusAccepted {
			t.Fatalf("status %s after refused cancels", got.Status)
		}
		c.post(path, url.Values{"status": {"cancelled"}, "reason": {"Out of buns"}}).want(t, http.StatusSeeOther)
		got := e.order(e.fx.Restaurant.ID, o.ID)
		if got.Status != ladle.StatusCancelled || got.CancelReason != "Out of buns" {
			t.Fatalf("after cancel: %s %q", got.Status, got.CancelReason)
		}
		// A finished order offers no more moves.
		c.post(path, url.Values{"status": {"accepted"}}).want(t, http.StatusConflict, "is cancelled")
		done := c.get(board)
		done.want(t, http.StatusOK, "Cancelled: “Out of buns”")
	})
}

func TestStaffCrossOriginRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	o := e.place(e.fx.Restaurant, e.request("csrf-staff@example.com"))
	c := e.client()
	c.login(e.staffA)
	path := "/admin/r/" + itoa(e.fx.Restaurant.ID) + "/orders/" + o.ID + "/status"
	c.post(path, url.Values{"status": {"accepted"}}, "Sec-Fetch-Site", "cross-site").want(t, http.StatusForbidden)
	c.post(path, url.Values{"status": {"cancelled"}, "reason": {"x"}}, "Origin", "https://evil.example").want(t, http.StatusForbidden)
	if got := e.order(e.fx.Restaurant.ID, o.ID); got.Status != ladle.StatusPlaced {
		t.Fatalf("cross-origin post moved the order to %s", got.Status)
	}
	// A forged logout does nothing either.
	c.post("/admin/logout", nil, "Sec-Fetch-Site", "cross-site").want(t, http.StatusForbidden)
	c.get("/admin/r/"+itoa(e.fx.Restaurant.ID)+"/orders").want(t, http.StatusOK)
	// Nor a login posted from another site (login CSRF).
	other := e.client()
	other.post("/admin/login", url.Values{"email": {e.staffA.Email}, "password": {staffPassword}}, "Sec-Fetch-Site", "cross-site").
		want(t, http.StatusForbidden)
	// The real form, same-origin, works.
	c.post(path, url.Values{"status": {"accepted"}}, "Sec-Fetch-Site", "same-origin").want(t, http.StatusSeeOther)
}

// TestStaffRoutesAreTenantScoped walks every restaurant-scoped staff route
// (staffRoutes, the same list routes() registers) as a staff member of
// restaurant A, with B's restaurant id, A's id with B's order id, and ids
// that do not exist. Every one must be the plain 404 and change nothing.
func TestStaffRoutesAreTenantScoped(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		ownOrder := e.place(e.fx.Restaurant, e.request("own@example.com"))
		foreign := e.place(e.fx.Other, e.otherRequest())
		c := e.client()
		c.login(e.staffA)
		notFound := c.get("/r/no-such-restaurant").body // the one 404 page

		A, B := itoa(e.fx.Restaurant.ID), itoa(e.fx.Other.ID)
		type ids struct{ rid, id string }
		cases := []ids{
			{B, foreign.ID},       // another restaurant's everything
			{B, ownOrder.ID},      // another restaurant, own order id
			{A, foreign.ID},       // own restaurant, another's order
			{"999999", newKey()},  // nothing
			{"abc", foreign.ID},   // not an id
			{"-" + B, foreign.ID}, // negative
		}
		forms := map[string]url.Values{
			"status": {"status": {"accepted"}},
			"cancel": {"status": {"cancelled"}, "reason": {"forged"}},
		}
		checked := 0
		for _, rt := range staffRoutes {
			method, pattern, _ := strings.Cut(rt.Pattern, " ")
			for _, tc := range cases {
				if !strings.Contains(pattern, "{id}") && tc.rid == A {
					continue // a route without an order id is fine for A
				}
				path := strings.NewReplacer("{rid}", tc.rid, "{id}", tc.id, "{$}", "").Replace(pattern)
				for name, form := range forms {
					var res *response
					if method == http.MethodGet {
						if name != "status" {
							continue
						}
						res = c.get(path)
					} else {
						res = c.post(path, form)
					}
					checked++
					if res.status != http.StatusNotFound {
						t.Errorf("%s %s (%s): status %d, want 404", method, path, name, res.status)
						continue
					}
					if res.body != notFound {
						t.Errorf("%s %s: the 404 differs from an unknown restaurant's, which would leak existence", method, path)
					}
					if strings.Contains(res.body, e.fx.Other.Name) || strings.Contains(res.body, "Steak frites") {
						t.Errorf("%s %s: the 404 shows the other restaurant's data", method, path)
					}
				}
			}
		}
		if checked < len(staffRoutes)*3 {
			t.Fatalf("only %d requests checked", checked)
		}
		if got := e.order(e.fx.Other.ID, foreign.ID); got.Status != ladle.StatusPlaced || got.UpdatedAt != foreign.UpdatedAt {
			t.Fatalf("the foreign order changed: %s, updated %v", got.Status, got.UpdatedAt)
		}
		if got := e.order(e.fx.Restaurant.ID, ownOrder.ID); got.Status != ladle.StatusPlaced {
			t.Fatalf("the own order changed through a foreign URL: %s", got.Status)
		}
		// Sanity: the same routes work for the restaurant's own staff.
		b := e.client()
		b.login(e.staffB)
		b.get("/admin/r/"+B+"/orders").want(t, http.StatusOK, "Steak frites")
		b.post("/admin/r/"+B+"/orders/"+foreign.ID+"/status", forms["status"]).want(t, http.StatusSeeOther)
	})
}

// order reads one order of a restaurant.
func (e *env) order(rid int64, id string) *ladle.Order {
	e.t.Helper()
	o, err := e.store.RestaurantOrder(context.Background(), rid, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}
