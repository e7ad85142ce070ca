package ladle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on an order request. The HTTP layer also caps the body size.
const (
	MaxLines         = 50
	MaxQuantity      = 99
	MaxModifiersLine = 20
	MaxNoteLen       = 200
	MaxNameLen       = 100
	MaxCouponLen     = 40
	MaxTokenLen      = 200 // a payment provider's token
	MaxPickupAhead   = 7 * 24 * time.Hour
	// MaxTip is the absolute cap on one order's tip, in minor units:
	// 500.00 in a two-decimal currency (USD, EUR), ¥50,000, 50.000 KWD.
	// Price also caps the tip at the order's subtotal (100 %), which is the
	// binding limit for nearly every order: a bigger tip is a typo, or a
	// card being tested with someone else's money.
	MaxTip Money = 50_000
)

// OrderRequest is the body of POST /api/v1/restaurants/{slug}/orders.
type OrderRequest struct {
	Customer         CustomerInput    `json:"customer"`
	Fulfillment      FulfillmentInput `json:"fulfillment"`
	Lines            []LineRequest    `json:"lines"`
	CouponCode       string           `json:"coupon_code,omitempty"`
	Tip              Money            `json:"tip,omitempty"`
	MarketingOptIn   bool             `json:"marketing_opt_in,omitempty"`
	Payment          PaymentInput     `json:"payment"`
	ConfirmDuplicate bool             `json:"confirm_duplicate,omitempty"`
}

// CustomerInput is the guest's contact details.
type CustomerInput struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone"`
}

// FulfillmentInput says how and when: type "pickup", time "asap" or RFC 3339.
type FulfillmentInput struct {
	Type string `json:"type"`
	Time string `json:"time"`
}

// LineRequest is one requested line.
type LineRequest struct {
	ItemID      int64   `json:"item_id"`
	Quantity    int     `json:"quantity"`
	ModifierIDs []int64 `json:"modifier_ids"`
	Note        string  `json:"note,omitempty"`
}

// PaymentInput is how the guest pays: {"method":"card","token":"tok_…"} or
// {"method":"pay_at_pickup"}.
type PaymentInput struct {
	Method string `json:"method"`
	Token  string `json:"token,omitempty"`
}

// Normalize trims and canonicalizes the request in place (emails lower-cased,
// coupon codes upper-cased, modifier ids sorted) so that equal intents
// compare equal in Hash and Fingerprint.
func (r *OrderRequest) Normalize() {
	r.Customer.Name = strings.TrimSpace(r.Customer.Name)
	r.Customer.Email = NormalizeEmail(r.Customer.Email)
	r.Customer.Phone = normalizePhone(r.Customer.Phone)
	r.Fulfillment.Type = strings.TrimSpace(r.Fulfillment.Type)
	r.Fulfillment.Time = strings.TrimSpace(r.Fulfillment.Time)
	if r.Fulfillment.Time == "" {
		r.Fulfillment.Time = "asap"
	}
	r.CouponCode = strings.TrimSpace(r.CouponCode)
	if utf8.ValidString(r.CouponCode) { // ToUpper would turn invalid bytes into U+FFFD
		r.CouponCode = strings.ToUpper(r.CouponCode)
	}
	for i := range r.Lines {
		r.Lines[i].Note = strings.TrimSpace(r.Lines[i].Note)
		slices.Sort(r.Lines[i].ModifierIDs)
	}
}

// normalizePhone drops the punctuation people write numbers with (spaces,
// parentheses, dashes, dots) and keeps everything else, so that Validate
// refuses letters and control characters instead of their vanishing.
func normalizePhone(p string) string {
	var b strings.Builder
	for _, c := range strings.TrimSpace(p) {
		switch c {
		case ' ', '(', ')', '-', '.':
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// validPhone: an optional leading +, then 7–15 digits (E.164 allows 15).
func validPhone(p string) bool {
	p = strings.TrimPrefix(p, "+")
	if len(p) < 7 || len(p) > 15 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// Validate checks everything that can be checked without the database and
// returns field → message, empty when valid. Call Normalize first.
func (r *OrderRequest) Validate(now time.Time) map[string]string {
	errs := map[string]string{}
	text := func(field, s string, rule TextRule) {
		if msg := CheckText(s, rule); msg != "" {
			errs[field] = msg
		}
	}
	if r.Customer.Name == "" {
		errs["customer.name"] = "is required"
	} else {
		text("customer.name", r.Customer.Name, NameText)
	}
	if r.Customer.Email == "" {
		errs["customer.email"] = "is required"
	} else if msg := CheckEmail(r.Customer.Email); msg != "" {
		errs["customer.email"] = msg
	}
	if r.Customer.Phone != "" {
		if msg := CheckText(r.Customer.Phone, TextRule{}); msg != "" {
			errs["customer.phone"] = msg
		} else if !validPhone(r.Customer.Phone) {
			errs["customer.phone"] = "is not a valid phone number"
		}
	}
	text("fulfillment.type", r.Fulfillment.Type, TextRule{Max: 20})
	text("fulfillment.time", r.Fulfillment.Time, TextRule{Max: 40})
	if _, bad := errs["fulfillment.type"]; !bad && r.Fulfillment.Type != "pickup" {
		errs["fulfillment.type"] = `must be "pickup"`
	}
	if _, bad := errs["fulfillment.time"]; !bad && r.Fulfillment.Time != "asap" {
		t, err := time.Parse(time.RFC3339, r.Fulfillment.Time)
		switch {
		case err != nil:
			errs["fulfillment.time"] = `must be "asap" or an RFC 3339 time`
		case t.Before(now.Add(-time.Minute)):
			errs["fulfillment.time"] = "is in the past"
		case t.After(now.Add(MaxPickupAhead)):
			errs["fulfillment.time"] = "is more than a week ahead"
		}
	}
	if len(r.Lines) == 0 {
		errs["lines"] = "must have at least one line"
	} else if len(r.Lines) > MaxLines {
		errs["lines"] = fmt.Sprintf("must have at most %d lines", MaxLines)
	}
	for i, l := range r.Lines {
		p := "lines[" + strconv.Itoa(i) + "]"
		if l.ItemID <= 0 {
			errs[p+".item_id"] = "is required"
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			errs[p+".quantity"] = fmt.Sprintf("must be between 1 and %d", MaxQuantity)
		}
		if len(l.ModifierIDs) > MaxModifiersLine {
			errs[p+".modifier_ids"] = fmt.Sprintf("must have at most %d modifiers", MaxModifiersLine)
		}
		for j := 1; j < len(l.ModifierIDs); j++ {
			if l.ModifierIDs[j] == l.ModifierIDs[j-1] {
				errs[p+".modifier_ids"] = "must not repeat a modifier"
			}
		}
		text(p+".note", l.Note, NoteText)
	}
	text("coupon_code", r.CouponCode, CodeText)
	if r.Tip < 0 || r.Tip > MaxTip {
		errs["tip"] = fmt.Sprintf("must be between 0 and %d (minor units; 500.00 in USD)", MaxTip)
	}
	text("payment.method", r.Payment.Method, TextRule{Max: 20})
	switch r.Payment.Method {
	case "card":
		if r.Payment.Token == "" {
			errs["payment.token"] = "is required for card payments"
		} else {
			text("payment.token", r.Payment.Token, TokenText)
		}
	case "pay_at_pickup":
		if r.Payment.Token != "" {
			errs["payment.token"] = "must be empty for pay_at_pickup"
		}
	default:
		if errs["payment.method"] == "" {
			errs["payment.method"] = `must be "card" or "pay_at_pickup"`
		}
	}
	return errs
}

// PickupTime returns the requested pickup time, nil for ASAP. Call after Validate.
func (r *OrderRequest) PickupTime() *time.Time {
	if r.Fulfillment.Time == "asap" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, r.Fulfillment.Time)
	if err != nil {
		return nil
	}
	t = t.UTC()
	return &t
}

// Hash identifies the request body for idempotency: the same key with a
// different Hash is a reused key (422). It covers every field of the
// normalized request, so it ignores JSON key order and white space.
func (r *OrderRequest) Hash() string {
	b, _ := json.Marshal(r) // cannot fail: plain structs
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Fingerprint identifies the order's content (restaurant, contact, lines,
// fulfillment) regardless of idempotency key, payment token, tip or
// coupon. Two orders with the same fingerprint within DuplicateWindow are
// probably one intent submitted twice.
func (r *OrderRequest) Fingerprint(restaurantID int64) string {
	type line struct {
		I int64   `json:"i"`
		Q int     `json:"q"`
		M []int64 `json:"m"`
		N string  `json:"n"`
	}
	lines := make([]line, len(r.Lines))
	for i, l := range r.Lines {
		lines[i] = line{l.ItemID, l.Quantity, l.ModifierIDs, l.Note}
	}
	slices.SortFunc(lines, func(a, b line) int {
		if a.I != b.I {
			return int(a.I - b.I)
		}
		if a.Q != b.Q {
			return a.Q - b.Q
		}
		if c := slices.Compare(a.M, b.M); c != 0 {
			return c
		}
		return strings.Compare(a.N, b.N)
	})
	b, _ := json.Marshal(struct {
		R int64            `json:"r"`
		C CustomerInput    `json:"c"`
		F FulfillmentInput `json:"f"`
		L []line           `json:"l"`
	}{restaurantID, CustomerInput{Email: r.Customer.Email, Phone: r.Customer.Phone}, r.Fulfillment, lines})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// DuplicateWindow is how long an order's fingerprint blocks a look-alike.
const DuplicateWindow = 10 * time.Minute

// IdempotencyKeyTTL is how long an idempotency key and its stored response
// are kept before they are reaped.
const IdempotencyKeyTTL = 24 * time.Hour

// ValidateQuote is Validate for a quote (POST …/quote): the contact and the
// payment do not change the price, so a quote needs neither, but whatever
// of them is given is checked as the order would check it.
func (r *OrderRequest) ValidateQuote(now time.Time) map[string]string {
	errs := r.Validate(now)
	if r.Customer.Name == "" {
		delete(errs, "customer.name")
	}
	if r.Customer.Email == "" {
		delete(errs, "customer.email")
	}
	if r.Payment.Method == "" && r.Payment.Token == "" {
		delete(errs, "payment.method")
		delete(errs, "payment.token")
	}
	return errs
}
