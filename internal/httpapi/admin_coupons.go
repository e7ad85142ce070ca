package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ladle-dev/ladle"
)

type adminRoute struct {
	pattern string
	fn      adminHandler
}

// couponRoutes are the staff API's coupons, under the restaurant of the
// token (another restaurant's coupon id is 404):
//
//	GET  …/coupons                    {"coupons": [coupon…]} by code
//	POST …/coupons                    couponInput → 201 coupon
//	GET  …/coupons/{id}               coupon
//	PUT  …/coupons/{id}               couponInput (code ignored: it never changes) → coupon
//	POST …/coupons/{id}/deactivate    → coupon (and /activate)
//
// Validation errors are 400 validation_failed naming the field; a taken
// code is 409 coupon_code_taken.
func couponRoutes(d AdminDeps) []adminRoute {
	const base = "/api/v1/admin/restaurants/{slug}/coupons"
	return []adminRoute{
		{"GET " + base, d.handleCouponList},
		{"POST " + base, d.handleCouponCreate},
		{"GET " + base + "/{id}", d.handleCouponGet},
		{"PUT " + base + "/{id}", d.handleCouponPut},
		{"POST " + base + "/{id}/deactivate", d.handleCouponActive(false)},
		{"POST " + base + "/{id}/activate", d.handleCouponActive(true)},
	}
}

// couponInput is a coupon as the API takes it. Amounts are minor units;
// Value is a whole percent for "percent". Active defaults to true.
type couponInput struct {
	Code             string      `json:"code"`
	Kind             string      `json:"kind"`
	Value            int64       `json:"value"`
	MinSubtotal      ladle.Money `json:"min_subtotal"`
	ValidFrom        *time.Time  `json:"valid_from"`
	ValidUntil       *time.Time  `json:"valid_until"`
	MaxUses          int         `json:"max_uses"`
	PerCustomerLimit int         `json:"per_customer_limit"`
	Active           *bool       `json:"active"`
}

func (in couponInput) coupon(restaurantID int64) *ladle.Coupon {
	c := &ladle.Coupon{RestaurantID: restaurantID, Code: in.Code, Kind: in.Kind, Value: in.Value,
		MinSubtotal: in.MinSubtotal, ValidFrom: in.ValidFrom, ValidUntil: in.ValidUntil, MaxUses: in.MaxUses,
		PerCustomerLimit: in.PerCustomerLimit, Active: in.Active == nil || *in.Active}
	return c
}

func (d AdminDeps) handleCouponList(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
	cs, err := d.Store.Coupons(r.Context(), rest.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"coupons": cs})
	return nil
}

func (d AdminDeps) handleCouponCreate(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
	var in couponInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c := in.coupon(rest.ID)
	if err := d.Store.CreateCoupon(r.Context(), c); err != nil {
		return err
	}
	w.Header().Set("Location", r.URL.Path+"/"+strconv.FormatInt(c.ID, 10))
	writeJSON(w, http.StatusCreated, c)
	return nil
}

// couponOf reads the path's coupon of the restaurant; a bad id is 404.
func (d AdminDeps) couponOf(r *http.Request, rest *ladle.Restaurant) (*ladle.Coupon, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, ladle.NotFound("coupon")
	}
	return d.Store.CouponByID(r.Context(), rest.ID, id)
}

func (d AdminDeps) handleCouponGet(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
	c, err := d.couponOf(r, rest)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (d AdminDeps) handleCouponPut(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
	old, err := d.couponOf(r, rest)
	if err != nil {
		return err
	}
	var in couponInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c := in.coupon(rest.ID)
	c.ID, c.Code = old.ID, old.Code
	if err := d.Store.UpdateCoupon(r.Context(), c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (d AdminDeps) handleCouponActive(active bool) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, _ *ladle.APIToken) error {
		c, err := d.couponOf(r, rest)
		if err != nil {
			return err
		}
		c.Active = active
		if err := d.Store.UpdateCoupon(r.Context(), c); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, c)
		return nil
	}
}
