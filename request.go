package ladle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds on an order request. The HTTP layer also caps the body size.
const (
	MaxLines               = 50
	MaxQuantity            = 99
	MaxModifiersLine       = 20
	MaxNoteLen             = 200
	MaxNameLen             = 100
	MaxTip           Money = 100_000_00 // a tip over this is surely a typo
	MaxPickupAhead         = 7 * 24 * time.Hour
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
	r.Customer.Email = strings.ToLower(strings.TrimSpace(r.Customer.Email))
	r.Customer.Phone = normalizePhone(r.Customer.Phone)
	r.Fulfillment.Type = strings.TrimSpace(r.Fulfillment.Type)
	r.Fulfillment.Time = strings.TrimSpace(r.Fulfillment.Time)
	if r.Fulfillment.Time == "" {
		r.Fulfillment.Time = "asap"
	}
	r.CouponCode = strings.ToUpper(strings.TrimSpace(r.CouponCode))
	for i := range r.Lines {
		r.Lines[i].Note = strings.TrimSpace(r.Lines[i].Note)
		slices.Sort(r.Lines[i].ModifierIDs)
	}
}

func normalizePhone(p string) string {
	var b strings.Builder
	for i, c := range strings.TrimSpace(p) {
		if c >= '0' && c <= '9' || (c == '+' && i == 0) {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Validate checks everything that can be checked without the database and
// returns field → message, empty when valid. Call Normalize first.
func (r *OrderRequest) Validate(now time.Time) map[string]string {
	errs := map[string]string{}
	if r.Customer.Name == "" {
		errs["customer.name"] = "is required"
	} else if utf8.RuneCountInString(r.Customer.Name) > MaxNameLen {
		errs["customer.name"] = fmt.Sprintf("must be at most %d characters", MaxNameLen)
	}
	if r.Customer.Email == "" {
		errs["customer.email"] = "is required"
	} else if a, err := mail.ParseAddress(r.Customer.Email); err != nil || a.Address != r.Customer.Email || len(r.Customer.Email) > 254 {
		errs["customer.email"] = "is not a valid email address"
	}
	if r.Customer.Phone != "" && (len(r.Customer.Phone) < 7 || len(r.Customer.Phone) > 16) {
		errs["customer.phone"] = "is not a valid phone number"
	}
	if r.Fulfillment.Type != "pickup" {
		errs["fulfillment.type"] = `must be "pickup"`
	}
	if r.Fulfillment.Time != "asap" {
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
		if utf8.RuneCountInString(l.Note) > MaxNoteLen {
			errs[p+".note"] = fmt.Sprintf("must be at most %d characters", MaxNoteLen)
		}
	}
	if len(r.CouponCode) > 40 {
		errs["coupon_code"] = "is too long"
	}
	if r.Tip < 0 || r.Tip > MaxTip {
		errs["tip"] = "must be between 0 and 100000.00"
	}
	switch r.Payment.Method {
	case "card":
		if r.Payment.Token == "" || len(r.Payment.Token) > 200 {
			errs["payment.token"] = "is required for card payments"
		}
	case "pay_at_pickup":
		if r.Payment.Token != "" {
			errs["payment.token"] = "must be empty for pay_at_pickup"
		}
	default:
		errs["payment.method"] = `must be "card" or "pay_at_pickup"`
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
