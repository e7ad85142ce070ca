package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

func init() {
	register(
		testCase{name: "Coupon/RoundTrip", fn: testCouponRoundTrip},
		testCase{name: "Coupon/CodeTakenAndInvalid", fn: testCouponInvalid},
	)
}

func testCouponRoundTrip(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	from, until := now.Add(-time.Hour), now.Add(30*24*time.Hour)
	c := &ladle.Coupon{RestaurantID: rid, Code: " spring5 ", Kind: "fixed", Value: 500, MinSubtotal: 2000,
		ValidFrom: &from, ValidUntil: &until, MaxUses: 100, PerCustomerLimit: 1, Active: true, Uses: 42}
	ok(t, s.CreateCoupon(ctx, c))
	if c.ID == 0 || c.Code != "SPRING5" || c.Uses != 0 || c.CreatedAt.IsZero() {
		t.Fatalf("CreateCoupon = %+v", c)
	}
	got, err := s.CouponByCode(ctx, rid, "Spring5")
	ok(t, err)
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("CouponByCode = %+v\nwant %+v", got, c)
	}
	if !got.ValidFrom.Equal(from) || !got.ValidUntil.Equal(until) {
		t.Fatalf("validity lost precision: %v %v", got.ValidFrom, got.ValidUntil)
	}
	list, err := s.Coupons(ctx, rid)
	ok(t, err)
	if len(list) != 2 || list[0].Code != "SAVE10" || list[1].Code != "SPRING5" {
		t.Fatalf("Coupons = %+v", list)
	}
	if list[0].Kind != "percent" || list[0].Value != 10 || list[0].ValidFrom != nil || !list[0].Active {
		t.Fatalf("SAVE10 = %+v", list[0])
	}
	// Codes are per restaurant.
	ok(t, s.CreateCoupon(ctx, &ladle.Coupon{RestaurantID: f.Other.ID, Code: "SPRING5", Kind: "percent", Value: 5, Active: true}))
	_, err = s.CouponByCode(ctx, f.Other.ID, "SAVE10")
	wantNotFound(t, err)
	_, err = s.CouponByCode(ctx, rid, f.OtherCoupon.Code)
	wantNotFound(t, err)
	other, err := s.Coupons(ctx, f.Other.ID)
	ok(t, err)
	if len(other) != 2 {
		t.Fatalf("other's coupons = %+v", other)
	}
	rs, err := s.Redemptions(ctx, rid, c.ID)
	ok(t, err)
	if rs == nil || len(rs) != 0 {
		t.Fatalf("Redemptions of an unused coupon = %#v, want empty", rs)
	}
	_, err = s.Redemptions(ctx, rid, f.OtherCoupon.ID)
	wantNotFound(t, err)
}

func testCouponInvalid(t *testing.T, e *env) {
	s, f := e.seed()
	rid := f.Restaurant.ID
	wantCode(t, s.CreateCoupon(ctx, &ladle.Coupon{RestaurantID: rid, Code: "save10", Kind: "fixed", Value: 1, Active: true}), "coupon_code_taken")
	for name, c := range map[string]ladle.Coupon{
		"no code":       {Code: " ", Kind: "fixed", Value: 1},
		"kind":          {Code: "A", Kind: "bogo", Value: 1},
		"percent 0":     {Code: "B", Kind: "percent", Value: 0},
		"percent 101":   {Code: "C", Kind: "percent", Value: 101},
		"negative min":  {Code: "D", Kind: "fixed", Value: 1, MinSubtotal: -1},
		"negative uses": {Code: "E", Kind: "fixed", Value: 1, MaxUses: -1},
		"window":        {Code: "F", Kind: "fixed", Value: 1, ValidFrom: ptr(now), ValidUntil: ptr(now.Add(-time.Hour))},
	} {
		c.RestaurantID = rid
		if err := s.CreateCoupon(ctx, &c); ladle.ErrorCode(err) != ladle.CodeValidation {
			t.Errorf("%s: got %v, want validation_failed", name, err)
		}
	}
	wantNotFound(t, s.CreateCoupon(ctx, &ladle.Coupon{RestaurantID: f.Other.ID + 1000, Code: "X", Kind: "fixed", Value: 1}))
	list, err := s.Coupons(ctx, rid)
	ok(t, err)
	if len(list) != 1 {
		t.Fatalf("refused coupons were written: %+v", list)
	}
}
