package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

// couponRoutes are the coupon pages: list and create, edit, and the
// activate/deactivate switch. They need the owner or manager role
// (ladle.Role.CanEditMenu); every coupon is looked up in the member's
// restaurant, so another restaurant's coupon id is a 404.
var couponRoutes = []staffRoute{
	{"GET /admin/r/{rid}/coupons", func(s *server) staffHandler { return s.handleCoupons }},
	{"POST /admin/r/{rid}/coupons", func(s *server) staffHandler { return s.handleCouponCreate }},
	{"GET /admin/r/{rid}/coupons/{id}", func(s *server) staffHandler { return s.handleCouponEdit }},
	{"POST /admin/r/{rid}/coupons/{id}", func(s *server) staffHandler { return s.handleCouponUpdate }},
	{"POST /admin/r/{rid}/coupons/{id}/active", func(s *server) staffHandler { return s.handleCouponActive }},
}

func init() { staffRoutes = append(staffRoutes, couponRoutes...) }

// couponForm is a coupon as typed: on an error the page shows exactly
// this again. Amounts are in major units ("5.00"), times are local to the
// restaurant (datetime-local inputs).
type couponForm struct {
	Code, Kind, Value, MinSubtotal, ValidFrom, ValidUntil, MaxUses, PerCustomerLimit string
	Active                                                                           bool
}

type couponsPage struct {
	page
	Restaurant *ladle.Restaurant
	Loc        *time.Location
	Coupons    []ladle.Coupon
	Coupon     *ladle.Coupon // the coupon edited; nil on the list
	Form       couponForm
	Errors     map[string]string
	Notice     string
}

const localInput = "2006-01-02T15:04" // datetime-local

// couponFormOf fills a form from a stored coupon.
func couponFormOf(c *ladle.Coupon, loc *time.Location, currency string) couponForm {
	f := couponForm{Code: c.Code, Kind: c.Kind, Active: c.Active,
		MinSubtotal: decimal(c.MinSubtotal, currency), MaxUses: strconv.Itoa(c.MaxUses),
		PerCustomerLimit: strconv.Itoa(c.PerCustomerLimit)}
	if c.Kind == "fixed" {
		f.Value = decimal(ladle.Money(c.Value), currency)
	} else {
		f.Value = strconv.FormatInt(c.Value, 10)
	}
	if c.MinSubtotal == 0 {
		f.MinSubtotal = ""
	}
	if c.ValidFrom != nil {
		f.ValidFrom = c.ValidFrom.In(loc).Format(localInput)
	}
	if c.ValidUntil != nil {
		f.ValidUntil = c.ValidUntil.In(loc).Format(localInput)
	}
	return f
}

// readCouponForm reads the posted form; errs names each bad field.
func readCouponForm(r *http.Request) couponForm {
	return couponForm{
		Code: strings.TrimSpace(r.PostFormValue("code")), Kind: r.PostFormValue("kind"),
		Value: strings.TrimSpace(r.PostFormValue("value")), MinSubtotal: strings.TrimSpace(r.PostFormValue("min_subtotal")),
		ValidFrom: strings.TrimSpace(r.PostFormValue("valid_from")), ValidUntil: strings.TrimSpace(r.PostFormValue("valid_until")),
		MaxUses: strings.TrimSpace(r.PostFormValue("max_uses")), PerCustomerLimit: strings.TrimSpace(r.PostFormValue("per_customer_limit")),
		Active: r.PostFormValue("active") != "",
	}
}

// coupon turns the form into a coupon of the restaurant, or field errors.
func (f couponForm) coupon(rest *ladle.Restaurant) (*ladle.Coupon, map[string]string) {
	loc := rest.Location()
	errs := map[string]string{}
	c := &ladle.Coupon{RestaurantID: rest.ID, Code: f.Code, Kind: f.Kind, Active: f.Active}
	switch f.Kind {
	case "percent":
		n, err := strconv.ParseInt(f.Value, 10, 64)
		if err != nil || n < 1 || n > 100 {
			errs["value"] = "Enter a whole percent from 1 to 100."
		}
		c.Value = n
	case "fixed":
		m, ok := parseMoney(f.Value, rest.Currency)
		if !ok || m < 1 {
			errs["value"] = "Enter an amount, like 5.00."
		}
		c.Value = int64(m)
	default:
		errs["kind"] = "Choose percent or fixed amount."
	}
	if m, ok := parseMoney(f.MinSubtotal, rest.Currency); ok {
		c.MinSubtotal = m
	} else {
		errs["min_subtotal"] = "Enter an amount, like 20.00, or leave it empty."
	}
	count := func(field, v string) int {
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000_000 {
			errs[field] = "Enter a whole number (0 or empty: no limit)."
		}
		return n
	}
	c.MaxUses = count("max_uses", f.MaxUses)
	c.PerCustomerLimit = count("per_customer_limit", f.PerCustomerLimit)
	when := func(field, v string) *time.Time {
		if v == "" {
			return nil
		}
		t, err := time.ParseInLocation(localInput, v, loc)
		if err != nil {
			errs[field] = "Enter a date and time, or leave it empty."
			return nil
		}
		return &t
	}
	c.ValidFrom, c.ValidUntil = when("valid_from", f.ValidFrom), when("valid_until", f.ValidUntil)
	if c.ValidFrom != nil && c.ValidUntil != nil && !c.ValidUntil.After(*c.ValidFrom) && errs["valid_until"] == "" {
		errs["valid_until"] = "The end must be after the start."
	}
	if len(f.Code) > 40 {
		errs["code"] = "Use at most 40 characters."
	}
	return c, errs
}

// couponAccess answers 403 for a role that may not run coupons.
func (s *server) couponAccess(w http.ResponseWriter, r *http.Request, st *staffView) bool {
	if st.Role.CanEditMenu() {
		return true
	}
	s.errorPage(w, r, http.StatusForbidden, "Not allowed", "Coupons need the owner or manager role.")
	return false
}

// couponOf loads the coupon {id} of the member's restaurant (404 for any
// other, or a bad id).
func (s *server) couponOf(w http.ResponseWriter, r *http.Request, st *staffView) *ladle.Coupon {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(w, r)
		return nil
	}
	c, err := s.Store.CouponByID(r.Context(), st.Restaurant.ID, id)
	if err != nil {
		s.fail(w, r, err)
		return nil
	}
	return c
}

func (s *server) handleCoupons(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !s.couponAccess(w, r, st) {
		return
	}
	s.renderCoupons(w, r, st, http.StatusOK, couponForm{Kind: "percent", Active: true}, nil, r.URL.Query().Get("saved"))
}

func (s *server) renderCoupons(w http.ResponseWriter, r *http.Request, st *staffView, status int, f couponForm, errs map[string]string, notice string) {
	list, err := s.Store.Coupons(r.Context(), st.Restaurant.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if notice != "" {
		notice = "Saved coupon " + notice + "."
	}
	s.render(w, r, status, "admin_coupons.html", couponsPage{page: page{Title: "Coupons · " + st.Restaurant.Name, Staff: st},
		Restaurant: st.Restaurant, Loc: st.Restaurant.Location(), Coupons: list, Form: f, Errors: errs, Notice: notice})
}

func (s *server) handleCouponCreate(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !s.couponAccess(w, r, st) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	f := readCouponForm(r)
	c, errs := f.coupon(st.Restaurant)
	if len(errs) == 0 {
		var err error
		if errs, err = fieldErrors(s.Store.CreateCoupon(r.Context(), c)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if len(errs) == 0 {
		http.Redirect(w, r, "/admin/r/"+itoa(st.Restaurant.ID)+"/coupons?saved="+urlQueryEscape(c.Code), http.StatusSeeOther)
		return
	}
	s.renderCoupons(w, r, st, http.StatusUnprocessableEntity, f, errs, "")
}

func (s *server) handleCouponEdit(w http.ResponseWriter, r *http.Request, st *staffView) {
	c := s.couponOf(w, r, st)
	if c == nil || !s.couponAccess(w, r, st) {
		return
	}
	s.renderCoupon(w, r, st, http.StatusOK, c, couponFormOf(c, st.Restaurant.Location(), st.Restaurant.Currency), nil)
}

func (s *server) renderCoupon(w http.ResponseWriter, r *http.Request, st *staffView, status int, c *ladle.Coupon, f couponForm, errs map[string]string) {
	s.render(w, r, status, "admin_coupon.html", couponsPage{page: page{Title: c.Code + " · Coupons", Staff: st},
		Restaurant: st.Restaurant, Loc: st.Restaurant.Location(), Coupon: c, Form: f, Errors: errs})
}

func (s *server) handleCouponUpdate(w http.ResponseWriter, r *http.Request, st *staffView) {
	old := s.couponOf(w, r, st)
	if old == nil || !s.couponAccess(w, r, st) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	f := readCouponForm(r)
	f.Code = old.Code // the code does not change: orders and reports name it
	c, errs := f.coupon(st.Restaurant)
	c.ID = old.ID
	if len(errs) == 0 {
		var err error
		if errs, err = fieldErrors(s.Store.UpdateCoupon(r.Context(), c)); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if len(errs) == 0 {
		http.Redirect(w, r, "/admin/r/"+itoa(st.Restaurant.ID)+"/coupons?saved="+urlQueryEscape(c.Code), http.StatusSeeOther)
		return
	}
	s.renderCoupon(w, r, st, http.StatusUnprocessableEntity, old, f, errs)
}

// handleCouponActive switches a coupon on or off (active=1 / active=0):
// off, checkout refuses the code; its uses and limits stay.
func (s *server) handleCouponActive(w http.ResponseWriter, r *http.Request, st *staffView) {
	c := s.couponOf(w, r, st)
	if c == nil || !s.couponAccess(w, r, st) {
		return
	}
	c.Active = r.PostFormValue("active") == "1"
	if err := s.Store.UpdateCoupon(r.Context(), c); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/r/"+itoa(st.Restaurant.ID)+"/coupons?saved="+urlQueryEscape(c.Code), http.StatusSeeOther)
}

// fieldErrors maps a store error to form errors: the fields of a
// validation error or a taken code; any other error comes back as rest.
func fieldErrors(err error) (errs map[string]string, rest error) {
	var e *ladle.Error
	if err == nil || !asLadleError(err, &e) {
		return nil, err
	}
	switch {
	case e.Code == "coupon_code_taken":
		return map[string]string{"code": "This code is taken: choose another."}, nil
	case e.Kind == ladle.KindInvalid && len(e.Fields) > 0:
		errs = map[string]string{}
		for k, v := range e.Fields {
			errs[k] = sentence(v) + "."
		}
		return errs, nil
	}
	return nil, err
}
