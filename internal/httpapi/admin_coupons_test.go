package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/httpapi"
)

// The staff API's coupons: create, read, list, replace, deactivate; clear
// problems for bad input and a taken code; another restaurant's coupon is
// 404; the staff role is 403. (validation_failed is a 400 in this API.)
func TestAdminCouponsAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, fix := seededSQLite(t)
	token := func(role ladle.Role) string {
		u := &ladle.User{Email: string(role) + "@staff.example", Name: string(role), PasswordHash: "x"}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := st.AddMembership(ctx, ladle.Membership{UserID: u.ID, RestaurantID: fix.Restaurant.ID, Role: role}); err != nil {
			t.Fatal(err)
		}
		tok, hash := auth.NewAPIToken()
		if err := st.CreateAPIToken(ctx, &ladle.APIToken{RestaurantID: fix.Restaurant.ID, UserID: u.ID, Name: "t"}, hash); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	mgr, staff := token(ladle.RoleManager), token(ladle.RoleStaff)
	mux := http.NewServeMux()
	httpapi.RegisterAdmin(mux, httpapi.AdminDeps{Store: st, Campaigns: campaign.NewService(st, nil)})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base := srv.URL + "/api/v1/admin/restaurants/" + fix.Restaurant.Slug + "/coupons"
	call := func(tok, method, url, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, res.StatusCode, raw)
		}
		return res.StatusCode, v
	}

	code, c := call(mgr, "POST", base, `{"code":"fall20","kind":"percent","value":20,"min_subtotal":1500,"max_uses":50,"per_customer_limit":1,"valid_until":"2031-01-01T00:00:00Z"}`)
	if code != 201 || c["code"] != "FALL20" || c["active"] != true || c["uses"] != 0.0 {
		t.Fatalf("create: %d %v", code, c)
	}
	id := jsonID(c["id"])
	code, p := call(mgr, "POST", base, `{"code":"fall20","kind":"percent","value":5}`)
	if code != 409 || p["code"] != "coupon_code_taken" {
		t.Fatalf("taken: %d %v", code, p)
	}
	code, p = call(mgr, "POST", base, `{"code":"x","kind":"percent","value":150}`)
	if code != 400 || p["code"] != "validation_failed" {
		t.Fatalf("bad value: %d %v", code, p)
	}
	code, p = call(mgr, "POST", base, `{"code":"x","kind":"percent","value":5,"bogus":1}`)
	if code != 400 || p["code"] != "invalid_json" {
		t.Fatalf("unknown field: %d %v", code, p)
	}
	code, c = call(mgr, "PUT", base+"/"+id, `{"code":"IGNORED","kind":"fixed","value":300,"max_uses":10}`)
	if code != 200 || c["code"] != "FALL20" || c["kind"] != "fixed" || c["value"] != 300.0 || c["max_uses"] != 10.0 {
		t.Fatalf("put: %d %v", code, c)
	}
	code, c = call(mgr, "POST", base+"/"+id+"/deactivate", "")
	if code != 200 || c["active"] != false {
		t.Fatalf("deactivate: %d %v", code, c)
	}
	code, c = call(mgr, "GET", base, "")
	if list, _ := c["coupons"].([]any); code != 200 || len(list) != 2 {
		t.Fatalf("list: %d %v", code, c)
	}
	// Another restaurant's coupon, through this restaurant's URL: 404.
	for _, m := range []string{"GET", "PUT", "POST"} {
		url := base + "/" + strconv.FormatInt(fix.OtherCoupon.ID, 10)
		if m == "POST" {
			url += "/activate"
		}
		if code, p := call(mgr, m, url, `{"kind":"percent","value":1}`); code != 404 {
			t.Fatalf("%s %s: %d %v", m, url, code, p)
		}
	}
	// Another restaurant's slug: 404; the staff role: 403.
	if code, _ := call(mgr, "GET", srv.URL+"/api/v1/admin/restaurants/"+fix.Other.Slug+"/coupons", ""); code != 404 {
		t.Fatalf("other slug: %d", code)
	}
	if code, _ := call(staff, "GET", base, ""); code != 403 {
		t.Fatalf("staff role: %d", code)
	}
}

// jsonID is a JSON number id as a path segment.
func jsonID(v any) string {
	f, _ := v.(float64)
	return strconv.FormatInt(int64(f), 10)
}
