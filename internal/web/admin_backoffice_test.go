package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/ordering"
)

// manager makes a user with the manager role in rid.
func (e *env) manager(name string, rid int64) *ladle.User {
	e.t.Helper()
	u := e.user(name, rid)
	if err := e.store.AddMembership(context.Background(), ladle.Membership{UserID: u.ID, RestaurantID: rid, Role: ladle.RoleManager}); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// TestCouponPages: a manager creates, edits and deactivates a coupon; a
// refused form comes back with what was typed; the staff role may not; a
// coupon of another restaurant is a 404 for every coupon route.
func TestCouponPages(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		rid := e.fx.Restaurant.ID
		base := "/admin/r/" + itoa(rid) + "/coupons"
		c := e.client()
		c.login(e.manager("m", rid))

		bad := url.Values{"code": {"spring5"}, "kind": {"fixed"}, "value": {"five"}, "min_subtotal": {"20,00.5"},
			"max_uses": {"100"}, "per_customer_limit": {"-1"}, "valid_from": {"2030-06-01T09:00"}, "valid_until": {"2030-05-01T09:00"}, "active": {"1"}}
		res := c.post(base, bad)
		res.want(t, http.StatusUnprocessableEntity, `value="spring5"`, `value="five"`, `value="20,00.5"`, `value="-1"`,
			`value="2030-06-01T09:00"`, `value="2030-05-01T09:00"`, "Enter an amount, like 5.00.", "The end must be after the start.",
			`<option value="fixed" selected>`, `aria-invalid="true"`)
		good := url.Values{"code": {"spring5"}, "kind": {"fixed"}, "value": {"5.00"}, "min_subtotal": {"20"},
			"max_uses": {"100"}, "per_customer_limit": {"1"}, "valid_from": {"2030-06-01T09:00"}, "valid_until": {"2030-07-01T09:00"}, "active": {"1"}}
		c.post(base, good).want(t, http.StatusSeeOther)
		c.post(base, good).want(t, http.StatusUnprocessableEntity, "This code is taken", `value="spring5"`)
		list := c.get(base)
		list.want(t, http.StatusOK, `data-coupon="SPRING5"`, "$5.00 off", "from $20.00", "1 per customer", "0 / 100")
		cp, err := e.store.CouponByCode(t.Context(), rid, "SPRING5")
		if err != nil {
			t.Fatal(err)
		}
		nyc := e.fx.Restaurant.Location()
		if cp.Value != 500 || cp.MinSubtotal != 2000 || cp.MaxUses != 100 || cp.PerCustomerLimit != 1 || !cp.Active ||
			!cp.ValidFrom.Equal(time.Date(2030, 6, 1, 9, 0, 0, 0, nyc)) {
			t.Fatalf("stored coupon = %+v", cp)
		}
		edit := base + "/" + itoa(cp.ID)
		c.get(edit).want(t, http.StatusOK, `value="5.00"`, `value="2030-06-01T09:00"`)
		upd := url.Values{"kind": {"percent"}, "value": {"150"}, "max_uses": {"abc"}}
		c.post(edit, upd).want(t, http.StatusUnprocessableEntity, `value="150"`, `value="abc"`, "whole percent")
		upd = url.Values{"kind": {"percent"}, "value": {"15"}, "active": {"1"}}
		c.post(edit, upd).want(t, http.StatusSeeOther)
		c.post(edit+"/active", url.Values{"active": {"0"}}).want(t, http.StatusSeeOther)
		c.get(base).want(t, http.StatusOK, "15% off", "inactive", "Activate")
		if cp, _ = e.store.CouponByID(t.Context(), rid, cp.ID); cp.Active || cp.Value != 15 || cp.Kind != "percent" || cp.Code != "SPRING5" {
			t.Fatalf("after edit and deactivate: %+v", cp)
		}

		// The staff role: forbidden.
		s := e.client()
		s.login(e.staffA)
		s.get(base).want(t, http.StatusForbidden)
		s.post(base, good).want(t, http.StatusForbidden)
		s.post(edit+"/active", url.Values{"active": {"1"}}).want(t, http.StatusForbidden)

		// Another restaurant's manager, with its own restaurant id and A's
		// coupon id: 404 for every coupon route, and nothing changes.
		o := e.client()
		o.login(e.manager("mb", e.fx.Other.ID))
		other := "/admin/r/" + itoa(e.fx.Other.ID) + "/coupons/" + itoa(cp.ID)
		o.get(other).want(t, http.StatusNotFound)
		o.post(other, upd).want(t, http.StatusNotFound)
		o.post(other+"/active", url.Values{"active": {"1"}}).want(t, http.StatusNotFound)
		o.get("/admin/r/"+itoa(e.fx.Other.ID)+"/coupons").wantNot(t, "SPRING5")
		if again, _ := e.store.CouponByID(t.Context(), rid, cp.ID); again.Active {
			t.Fatal("another restaurant's manager activated the coupon")
		}
	})
}

// TestHistoryRangeSearchAndExport: the history's days are the
// restaurant's (New York) days; search finds by name; the export has the
// same orders, with formula-like cells defused and quoting intact; the
// staff role sees the history but neither the export nor the reports.
func TestHistoryRangeSearchAndExport(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		rid := e.fx.Restaurant.ID
		// 23:30 on May 16 and 00:30 on May 17 in New York (EDT, UTC-4).
		e.clock.Set(time.Date(2030, 5, 17, 3, 30, 0, 0, time.UTC))
		late := e.request("late@example.com")
		late.Customer.Name = "Late Larry"
		lateOrder := e.place(e.fx.Restaurant, late)
		e.clock.Set(time.Date(2030, 5, 17, 4, 30, 0, 0, time.UTC))
		early := e.request("early@example.com")
		early.Customer.Name = `=HYPERLINK("http://evil.example","x")`
		early.Customer.Phone = "+12125550100"
		early.Lines[1].Note = "extra salt, \"crispy\"\nplease"
		earlyOrder := e.place(e.fx.Restaurant, early)
		e.clock.Set(time.Date(2030, 5, 17, 16, 0, 0, 0, time.UTC))

		m := e.client()
		m.login(e.manager("m", rid))
		hist := "/admin/r/" + itoa(rid) + "/history"
		day17 := m.get(hist + "?from=2030-05-17&to=2030-05-17")
		day17.want(t, http.StatusOK, `data-order-id="`+earlyOrder.ID+`"`, "HYPERLINK")
		day17.wantNot(t, lateOrder.ID)
		m.get(hist+"?from=2030-05-16&to=2030-05-16").want(t, http.StatusOK, lateOrder.ID)
		m.get(hist+"?from=2030-05-16&to=2030-05-17&q=larry").want(t, http.StatusOK, lateOrder.ID)
		m.get(hist+"?from=2030-05-16&to=2030-05-17&q=larry").wantNot(t, earlyOrder.ID)
		m.get(hist+"?from=2030-05-16&to=2030-05-17&q=%23"+itoa(earlyOrder.Number)).wantNot(t, lateOrder.ID)
		m.get(hist+"?from=2030-05-32&to=2030-05-17&q=kept").want(t, http.StatusBadRequest, `value="2030-05-32"`, `value="kept"`, "YYYY-MM-DD")
		m.get(hist+"?from=2030-05-18&to=2030-05-17").want(t, http.StatusBadRequest, "must not be before")

		res := m.get(hist + ".csv?from=2030-05-16&to=2030-05-17")
		res.want(t, http.StatusOK)
		if ct := res.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Fatalf("Content-Type = %q", ct)
		}
		rows, err := csv.NewReader(strings.NewReader(res.body)).ReadAll()
		if err != nil {
			t.Fatalf("the export is not valid CSV: %v\n%s", err, res.body)
		}
		if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") {
			t.Fatalf("rows = %q", rows)
		}
		first := rows[1] // newest first: the early one
		if first[0] != itoa(earlyOrder.Number) || first[1] != "2030-05-17 00:30:00" || first[3] != `'=HYPERLINK("http://evil.example","x")` ||
			first[5] != "'+12125550100" || !strings.Contains(first[7], "[note: extra salt, \"crispy\"\nplease]") ||
			first[12] != decimal(earlyOrder.Total, "USD") || first[17] != earlyOrder.ID {
			t.Fatalf("first row = %q", first)
		}
		if rows[2][1] != "2030-05-16 23:30:00" || rows[2][3] != "Late Larry" {
			t.Fatalf("second row = %q", rows[2])
		}

		s := e.client()
		s.login(e.staffA)
		s.get(hist+"?from=2030-05-16&to=2030-05-17").want(t, http.StatusOK, lateOrder.ID)
		s.get(hist+".csv?from=2030-05-16&to=2030-05-17").want(t, http.StatusForbidden)
		s.get("/admin/r/"+itoa(rid)+"/reports").want(t, http.StatusForbidden)
	})
}

func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{"=1+2": "'=1+2", "+1": "'+1", "-3": "'-3", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "\rx": "'\rx", "plain": "plain", "": "", "a=b": "a=b"} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
	for m, want := range map[ladle.Money]string{0: "0.00", 5: "0.05", 1234: "12.34", 100000: "1000.00"} {
		if got := decimal(m, "USD"); got != want {
			t.Errorf("decimal(%d) = %q", m, got)
		}
	}
	if got := decimal(1250, "JPY"); got != "1250" {
		t.Errorf("decimal(1250 JPY) = %q", got)
	}
}

// TestReportsPage: the report's numbers are those of the orders placed in
// the test, and its charts are inline SVG.
func TestReportsPage(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, e *env) {
		rid := e.fx.Restaurant.ID
		e.clock.Set(time.Date(2030, 5, 17, 16, 0, 0, 0, time.UTC)) // noon in New York
		a := e.place(e.fx.Restaurant, e.request("a@example.com"))
		req := e.request("b@example.com")
		req.CouponCode = "SAVE10"
		b := e.place(e.fx.Restaurant, req)
		c := e.place(e.fx.Restaurant, e.request("c@example.com"))
		if _, err := e.store.SetOrderStatus(t.Context(), rid, c.ID, ladle.StatusCancelled, "test", 0, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		e.place(e.fx.Other, e.otherRequest())
		m := e.client()
		m.login(e.manager("m", rid))
		page := m.get("/admin/r/" + itoa(rid) + "/reports?from=2030-05-11&to=2030-05-17")
		page.want(t, http.StatusOK,
			`data-kpi="orders">2<`, `data-kpi="revenue">`+formatMoney(a.Total+b.Total, "USD")+`<`,
			`data-kpi="average">`+formatMoney((a.Total+b.Total)/2, "USD")+`<`, `data-kpi="discounts">`+formatMoney(b.Discount, "USD")+`<`,
			"1 cancelled order is not counted", `<svg class="chart"`, "<rect", "2030-05-17: "+formatMoney(a.Total+b.Total, "USD"),
			"12:00: 2", "Burger", ">SAVE10<")
		page.wantNot(t, "Steak frites")
		m.get("/admin/r/"+itoa(rid)+"/reports?from=nope").want(t, http.StatusBadRequest, `value="nope"`)

		// A card order refunded in part the next day: gross on the 17th,
		// the refund on the 18th, net of both over the two days; the
		// export shows the order's refunded and net.
		d := e.paidOrder("d@example.com")
		e.clock.Set(time.Date(2030, 5, 18, 15, 0, 0, 0, time.UTC))
		if r, err := e.svc.Refund(t.Context(), rid, d.ID, ordering.RefundInput{Key: "k1", Amount: 400}); err != nil || r.Status != ladle.RefundSucceeded {
			t.Fatalf("refund: %+v %v", r, err)
		}
		m = e.client() // a day later: a new session
		m.login(e.manager("m2", rid))
		gross := a.Total + b.Total + d.Total
		m.get("/admin/r/"+itoa(rid)+"/reports?from=2030-05-11&to=2030-05-17").want(t, http.StatusOK,
			`data-kpi="revenue">`+formatMoney(gross, "USD")+`<`, `data-kpi="refunded">`+formatMoney(0, "USD")+`<`,
			`data-kpi="net">`+formatMoney(gross, "USD")+`<`)
		m.get("/admin/r/"+itoa(rid)+"/reports?from=2030-05-11&to=2030-05-18").want(t, http.StatusOK,
			`data-kpi="orders">3<`, `data-kpi="revenue">`+formatMoney(gross, "USD")+`<`,
			`data-kpi="refunded">`+formatMoney(400, "USD")+`<`, `data-kpi="net">`+formatMoney(gross-400, "USD")+`<`,
			`<tr data-bucket="2030-05-18"><td>2030-05-18</td><td class="num">0</td><td class="num">`+formatMoney(0, "USD")+
				`</td><td class="num">`+formatMoney(400, "USD")+`</td><td class="num">`+formatMoney(-400, "USD")+`</td></tr>`)
		res := m.get("/admin/r/" + itoa(rid) + "/history.csv?from=2030-05-17&to=2030-05-17&q=d%40example.com")
		rows, err := csv.NewReader(strings.NewReader(res.body)).ReadAll()
		if err != nil || len(rows) != 2 || rows[1][len(csvHeader)-2] != decimal(400, "USD") || rows[1][len(csvHeader)-1] != decimal(d.Total-400, "USD") {
			t.Fatalf("export = %q, %v", rows, err)
		}
	})
}

// flushRecorder records what a handler wrote by each Flush.
type flushRecorder struct {
	header  http.Header
	status  int
	body    bytes.Buffer
	flushes []int // body length at each Flush
}

func (r *flushRecorder) Header() http.Header { return r.header }
func (r *flushRecorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *flushRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
func (r *flushRecorder) Flush() { r.flushes = append(r.flushes, r.body.Len()) }

// TestHistoryCSVStreams: an export of 1,234 orders is read in keyset
// batches and flushed batch by batch, so the client gets the first rows
// before the last are read, and the server holds one batch at a time.
func TestHistoryCSVStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite")
	rid := e.fx.Restaurant.ID
	start := time.Date(2030, 5, 17, 12, 0, 0, 0, time.UTC)
	const n = 1234
	for i := range n {
		req := e.request("bulk@example.com")
		req.ConfirmDuplicate = true
		if _, err := e.store.CreateOrder(t.Context(), ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(), RestaurantID: rid, Request: req,
			Now: start.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Set(start.Add(2 * time.Hour))
	m := e.client()
	mgr := e.manager("m", rid)
	m.login(mgr)
	u, _ := url.Parse(e.srv.URL)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/admin/r/"+itoa(rid)+"/history.csv?from=2030-05-17&to=2030-05-17", nil)
	for _, ck := range m.hc.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	h := New(Deps{Store: e.store, Ordering: e.svc, Auth: e.auth, Logger: quiet, Now: e.clock.Now})
	rec := &flushRecorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.status != http.StatusOK {
		t.Fatalf("status %d: %s", rec.status, rec.body.String())
	}
	rows, err := csv.NewReader(&rec.body).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n+1 {
		t.Fatalf("%d rows, want %d", len(rows), n+1)
	}
	wantFlushes := n/exportBatch + 1 // 500, 500, 234
	if len(rec.flushes) != wantFlushes {
		t.Fatalf("%d flushes (%v), want %d", len(rec.flushes), rec.flushes, wantFlushes)
	}
	total := rec.flushes[len(rec.flushes)-1]
	if rec.flushes[0] >= total/2 || rec.flushes[1] <= rec.flushes[0] {
		t.Fatalf("flushes at %v of %d bytes: not incremental", rec.flushes, total)
	}
	if rows[1][1] != "2030-05-17 08:20:33" || rows[n][1] != "2030-05-17 08:00:00" {
		t.Fatalf("first and last rows: %q … %q", rows[1], rows[n])
	}
}
