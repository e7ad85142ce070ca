package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func (b *bundle) send(t *testing.T, method, path, key string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, b.url(path), rd)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return do(t, req)
}

// do sends req and reads the whole response.
func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, rb}
}

// TestHoursSlotsQuoteAPI: on Friday 08:30 in New York, with Mon–Fri
// 11:00–14:00 and one order per 15-minute slot: ASAP orders and quotes are
// 422 restaurant_closed with next_open; the slots list starts at 11:00; a
// full slot is 409 slot_full naming the next one; a quote equals the
// order placed from the same body.
func TestHoursSlotsQuoteAPI(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		b.clock.mu.Lock()
		b.clock.t = time.Date(2030, 5, 17, 12, 30, 0, 0, time.UTC)
		b.clock.mu.Unlock()
		var weekly []ladle.OpenRange
		for d := time.Monday; d <= time.Friday; d++ {
			weekly = append(weekly, ladle.OpenRange{Day: d, Open: 11 * 60, Close: 14 * 60})
		}
		if err := b.store.SetHours(ctx, b.fix.Restaurant.ID, &ladle.Hours{Weekly: weekly, SlotMinutes: 15, SlotOrders: 1, PrepMinutes: 15}, b.clock.Now()); err != nil {
			t.Fatal(err)
		}
		base := "/api/v1/restaurants/" + b.fix.Restaurant.Slug

		r := b.send(t, "POST", base+"/orders", "k1", b.fix.Request())
		if r.status != 422 || r.code(t) != ladle.CodeRestaurantClosed || r.json(t)["next_open"] != "2030-05-17T15:00:00Z" {
			t.Fatalf("ASAP while closed: %d %s", r.status, r.body)
		}
		r = b.send(t, "POST", base+"/quote", "", b.fix.Request())
		if r.status != 422 || r.code(t) != ladle.CodeRestaurantClosed || r.json(t)["next_open"] != "2030-05-17T15:00:00Z" {
			t.Fatalf("quote while closed: %d %s", r.status, r.body)
		}

		r = b.send(t, "GET", base+"/pickup-slots", "", nil)
		var slots struct {
			Now struct {
				Open     bool   `json:"open"`
				NextOpen string `json:"next_open"`
			} `json:"now"`
			Slots []struct {
				Start           time.Time `json:"start"`
				RemainingOrders *int      `json:"remaining_orders"`
				Available       bool      `json:"available"`
			} `json:"slots"`
		}
		if err := json.Unmarshal(r.body, &slots); err != nil || r.status != 200 {
			t.Fatalf("slots: %d %s", r.status, r.body)
		}
		// 12 slots today (11:00–13:45), the same Monday to Thursday: 5 days.
		if slots.Now.Open || slots.Now.NextOpen != "2030-05-17T15:00:00Z" || len(slots.Slots) != 5*12 ||
			!slots.Slots[0].Start.Equal(time.Date(2030, 5, 17, 15, 0, 0, 0, time.UTC)) || *slots.Slots[0].RemainingOrders != 1 {
			t.Fatalf("slots: %s", r.body)
		}

		at := func(email string, pickup time.Time) *ladle.OrderRequest {
			req := b.fix.Request()
			req.Customer.Email = email
			req.Fulfillment.Time = pickup.Format(time.RFC3339)
			return req
		}
		eleven := time.Date(2030, 5, 17, 15, 0, 0, 0, time.UTC)
		req := at("a@example.com", eleven)
		req.CouponCode = b.fix.Coupon.Code
		req.Tip = 300
		q := b.send(t, "POST", base+"/quote", "", req)
		o := b.send(t, "POST", base+"/orders", "k2", req)
		if q.status != 200 || o.status != 201 {
			t.Fatalf("quote %d %s, order %d %s", q.status, q.body, o.status, o.body)
		}
		qm, om := q.json(t), o.json(t)
		for _, k := range []string{"subtotal", "discount", "tax", "tip", "total", "currency", "coupon_code", "pickup_slot"} {
			if qm[k] != om[k] || qm[k] == nil {
				t.Errorf("%s: quote %v, order %v", k, qm[k], om[k])
			}
		}
		r = b.send(t, "POST", base+"/orders", "k3", at("b@example.com", eleven.Add(10*time.Minute)))
		if r.status != 409 || r.code(t) != ladle.CodeSlotFull {
			t.Fatalf("full slot: %d %s", r.status, r.body)
		}
		if na, _ := r.json(t)["next_available"].([]any); len(na) == 0 || na[0] != "2030-05-17T15:15:00Z" {
			t.Fatalf("next_available: %s", r.body)
		}
		r = b.send(t, "GET", base+"/pickup-slots", "", nil)
		_ = json.Unmarshal(r.body, &slots)
		if slots.Slots[0].Available || *slots.Slots[0].RemainingOrders != 0 || !slots.Slots[1].Available {
			t.Fatalf("slots after one order: %s", r.body)
		}

		// A quote needs no payment or contact, and refuses a bad coupon as
		// the order would.
		bare := at("", eleven.Add(time.Hour))
		bare.Customer = ladle.CustomerInput{}
		bare.Payment = ladle.PaymentInput{}
		if r := b.send(t, "POST", base+"/quote", "", bare); r.status != 200 {
			t.Fatalf("bare quote: %d %s", r.status, r.body)
		}
		bare.CouponCode = "NOPE"
		if r := b.send(t, "POST", base+"/quote", "", bare); r.status != 409 || r.code(t) != ladle.CodeCouponInvalid {
			t.Fatalf("bad coupon quote: %d %s", r.status, r.body)
		}
	})
}

// TestPickupTooSoonAPI: with 30 minutes' preparation and one order per
// 15-minute slot, a pickup time 10 minutes ahead is 422 pickup_too_soon
// naming the earliest time and the next slots with room (the full one
// left out), as the slots list offers them; the earliest time itself is
// taken.
func TestPickupTooSoonAPI(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		b.clock.mu.Lock()
		b.clock.t = time.Date(2030, 5, 17, 16, 2, 0, 0, time.UTC) // 12:02 in New York
		b.clock.mu.Unlock()
		if err := b.store.SetHours(ctx, b.fix.Restaurant.ID, &ladle.Hours{SlotMinutes: 15, SlotOrders: 1, PrepMinutes: 30}, b.clock.Now()); err != nil {
			t.Fatal(err)
		}
		base := "/api/v1/restaurants/" + b.fix.Restaurant.Slug
		at := func(email string, pickup time.Time) *ladle.OrderRequest {
			req := b.fix.Request()
			req.Customer.Email = email
			req.Fulfillment.Time = pickup.Format(time.RFC3339)
			return req
		}
		// Fill the first slot the list offers (12:45), then ask for 12:12.
		if r := b.send(t, "POST", base+"/orders", "k1", at("a@example.com", time.Date(2030, 5, 17, 16, 45, 0, 0, time.UTC))); r.status != 201 {
			t.Fatalf("first slot: %d %s", r.status, r.body)
		}
		for _, path := range []string{"/orders", "/quote"} {
			r := b.send(t, "POST", base+path, "k2", at("b@example.com", b.clock.Now().Add(10*time.Minute)))
			if r.status != 422 || r.code(t) != ladle.CodePickupTooSoon {
				t.Fatalf("%s too soon: %d %s", path, r.status, r.body)
			}
			m := r.json(t)
			na, _ := m["next_available"].([]any)
			if m["earliest_pickup"] != "2030-05-17T16:32:00Z" || len(na) != 3 || na[0] != "2030-05-17T17:00:00Z" {
				t.Fatalf("%s too soon: %s", path, r.body)
			}
		}
		if r := b.send(t, "POST", base+"/orders", "k3", at("c@example.com", time.Date(2030, 5, 17, 16, 32, 0, 0, time.UTC))); r.status != 201 {
			t.Fatalf("at the earliest time: %d %s", r.status, r.body)
		}
	})
}
