package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/campaign"
	"github.com/ladle-dev/ladle/internal/httpapi"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// apiToken makes a member of the restaurant with role and a staff API
// token for them.
func apiToken(t *testing.T, st *sqlstore.Store, restaurantID int64, role ladle.Role) string {
	t.Helper()
	ctx := context.Background()
	u := &ladle.User{Email: string(role) + "-" + itoa(restaurantID) + "@staff.example", Name: string(role), PasswordHash: "x"}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := st.AddMembership(ctx, ladle.Membership{UserID: u.ID, RestaurantID: restaurantID, Role: role}); err != nil {
		t.Fatal(err)
	}
	tok, hash := auth.NewAPIToken()
	if err := st.CreateAPIToken(ctx, &ladle.APIToken{RestaurantID: restaurantID, UserID: u.ID, Name: "t"}, hash); err != nil {
		t.Fatal(err)
	}
	return tok
}

func itoa(n int64) string { return jsonID(float64(n)) }

// TestAdminRefundsAPI: a manager refunds part of a card order by amount
// (the request sent four times at once, then again: one refund, one
// processor call), then by line; more than is left is 422
// refund_exceeds_captured with what remains; the list shows both refunds
// and the totals. A missing key, a key reused for another amount, bad
// bodies, an unpaid order, another restaurant's order and the staff role
// are refused with problems.
func TestAdminRefundsAPI(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		st := b.store.(*sqlstore.Store)
		refunder := payment.NewTestRefunder(st)
		svc := ordering.New(b.store, b.payments, []byte("test-secret-test-secret"), ordering.WithClock(b.clock.Now),
			ordering.WithRefunder(refunder))
		mux := http.NewServeMux()
		httpapi.RegisterAdmin(mux, httpapi.AdminDeps{Store: st,
			Campaigns: campaign.NewService(st, nil), Ordering: svc})
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		mgr, staff := apiToken(t, st, b.fix.Restaurant.ID, ladle.RoleManager), apiToken(t, st, b.fix.Restaurant.ID, ladle.RoleStaff)

		place := func(r *ladle.Restaurant, key string, req *ladle.OrderRequest) *ladle.Order {
			t.Helper()
			res, err := svc.Place(ctx, r, key, req)
			if err != nil || res.Order == nil {
				t.Fatalf("place: %v", err)
			}
			return res.Order
		}
		o := place(b.fix.Restaurant, "card", cardRequest(b.fix))
		cashReq := b.fix.Request()
		cashReq.Customer.Email = "cash@example.com"
		cash := place(b.fix.Restaurant, "cash", cashReq)
		other := &ladle.OrderRequest{Customer: ladle.CustomerInput{Name: "Eve", Email: "eve@example.com"},
			Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
			Lines:       []ladle.LineRequest{{ItemID: b.fix.OtherItem.ID, Quantity: 1}},
			Payment:     ladle.PaymentInput{Method: "card", Token: payment.TokenVisa}}
		otherOrder := place(b.fix.Other, "other", other)

		url := func(orderID string) string {
			return srv.URL + "/api/v1/admin/restaurants/" + b.fix.Restaurant.Slug + "/orders/" + orderID + "/refunds"
		}
		call := func(tok, method, url, key, body string) response {
			t.Helper()
			req, _ := http.NewRequest(method, url, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			if key != "" {
				req.Header.Set("Idempotency-Key", key)
			}
			return do(t, req)
		}

		// Four at once and a retry, one key: one refund, one processor call.
		var wg sync.WaitGroup
		ids := make([]string, 4)
		for i := range ids {
			wg.Go(func() {
				r := call(mgr, "POST", url(o.ID), "refund-1", `{"amount_cents":500,"reason":"cold fries"}`)
				if r.status != 201 {
					t.Errorf("refund: %d %s", r.status, r.body)
					return
				}
				ids[i], _ = r.json(t)["id"].(string)
			})
		}
		wg.Wait()
		r := call(mgr, "POST", url(o.ID), "refund-1", `{"amount_cents":500,"reason":"cold fries"}`)
		m := r.json(t)
		if r.status != 201 || m["id"] != ids[0] || m["status"] != "succeeded" || m["amount"] != 500.0 || m["source"] != "api" {
			t.Fatalf("retried refund: %d %s", r.status, r.body)
		}
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("one key, several refunds: %v", ids)
			}
		}
		if made, _ := refunder.Refunds(ctx); refunder.Calls() != 1 || len(made) != 1 || made[0].Amount != 500 {
			t.Fatalf("processor calls %d, refunds %+v; want one of 500", refunder.Calls(), made)
		}
		// The same key for another amount.
		if r := call(mgr, "POST", url(o.ID), "refund-1", `{"amount_cents":700}`); r.status != 422 || r.code(t) != ladle.CodeIdempotencyKeyReused {
			t.Fatalf("key reused: %d %s", r.status, r.body)
		}
		// By line: one fries.
		r = call(mgr, "POST", url(o.ID), "refund-2", `{"lines":[{"position":1,"quantity":1}]}`)
		fries := ladle.LineRefundAmount(o, o.Lines[1], 1)
		if m := r.json(t); r.status != 201 || m["amount"] != float64(fries) || m["status"] != "succeeded" {
			t.Fatalf("line refund: %d %s", r.status, r.body)
		}
		left := o.Total - 500 - fries
		r = call(mgr, "POST", url(o.ID), "refund-3", `{"amount_cents":`+itoa(int64(left)+1)+`}`)
		if r.status != 422 || r.code(t) != ladle.CodeRefundExceeds || r.json(t)["remaining"] != float64(left) {
			t.Fatalf("too much: %d %s", r.status, r.body)
		}
		if refunder.Calls() != 2 {
			t.Fatalf("processor calls = %d, want 2", refunder.Calls())
		}

		r = call(mgr, "GET", url(o.ID), "", "")
		var list struct {
			Refunds []ladle.Refund `json:"refunds"`
			Totals  struct {
				Captured, Refunded, Pending, Remaining ladle.Money
				Currency                               string
			} `json:"totals"`
		}
		if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 || len(list.Refunds) != 2 ||
			list.Totals.Captured != o.Total || list.Totals.Refunded != 500+fries || list.Totals.Remaining != left ||
			list.Refunds[1].Lines[0].Position != 1 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		if got, _ := b.store.Order(ctx, o.ID); got.Refunded != 500+fries {
			t.Fatalf("order refunded %d", got.Refunded)
		}

		for _, tc := range []struct {
			name, tok, method, url, key, body string
			status                            int
			code                              string
		}{
			{"no key", mgr, "POST", url(o.ID), "", `{"amount_cents":100}`, 400, ladle.CodeIdempotencyKeyMissing},
			{"reserved key", mgr, "POST", url(o.ID), "cancel", `{"amount_cents":100}`, 400, ladle.CodeValidation},
			{"both", mgr, "POST", url(o.ID), "k-both", `{"amount_cents":100,"lines":[{"position":0,"quantity":1}]}`, 400, ladle.CodeValidation},
			{"neither", mgr, "POST", url(o.ID), "k-none", `{}`, 400, ladle.CodeValidation},
			{"bad line", mgr, "POST", url(o.ID), "k-line", `{"lines":[{"position":9,"quantity":1}]}`, 400, ladle.CodeValidation},
			{"unknown field", mgr, "POST", url(o.ID), "k-field", `{"amount":100}`, 400, ladle.CodeInvalidJSON},
			{"unpaid", mgr, "POST", url(cash.ID), "k-cash", `{"amount_cents":100}`, 409, ladle.CodeRefundNotRefundable},
			{"other's order", mgr, "POST", url(otherOrder.ID), "k-other", `{"amount_cents":100}`, 404, ladle.CodeNotFound},
			{"other's order list", mgr, "GET", url(otherOrder.ID), "", "", 404, ladle.CodeNotFound},
			{"staff role", staff, "POST", url(o.ID), "k-staff", `{"amount_cents":100}`, 403, ladle.CodeForbidden},
			{"staff role list", staff, "GET", url(o.ID), "", "", 403, ladle.CodeForbidden},
		} {
			if r := call(tc.tok, tc.method, tc.url, tc.key, tc.body); r.status != tc.status || r.code(t) != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.body, tc.status, tc.code)
			}
		}
		if refunder.Calls() != 2 {
			t.Fatalf("processor calls = %d after refusals, want 2", refunder.Calls())
		}
	})
}
