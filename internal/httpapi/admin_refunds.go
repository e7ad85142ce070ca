package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/ordering"
)

// refundRoutes are the staff API's refunds of an order's card payment, as
// the staff order page makes them (ordering.Service.Refund), for owners and
// managers (Role.CanRefund):
//
//	POST …/orders/{id}/refunds   refundInput, Idempotency-Key required → 201 refund
//	GET  …/orders/{id}/refunds   {"refunds": [refund…], "totals": {…}}
//
// The Idempotency-Key makes a retried request the same refund: the first
// request with a key asks the processor, every later one answers the
// refund as it stands (201 again), without asking; the same key with
// another amount or other lines is 422 idempotency_key_reused. The
// refund's "status" says how it went: succeeded; failed, with
// failure_reason (the processor refused: retry from the staff page); or
// pending, when the processor's answer is not known yet (the recovery loop
// asks again with the same processor key; GET shows the outcome).
//
// Errors: another restaurant's order is 404; an order without a captured
// card payment (unpaid, cash) is 409 not_refundable; more than is left to
// refund is 422 refund_exceeds_captured with "remaining" (minor units);
// a bad body is 400 validation_failed or invalid_json.
func refundRoutes(d AdminDeps) []adminRoute {
	const base = "/api/v1/admin/restaurants/{slug}/orders/{id}/refunds"
	return []adminRoute{
		{"POST " + base, d.handleRefundCreate},
		{"GET " + base, d.handleRefundList},
	}
}

// refundInput is a refund as the API takes it: an amount in minor units,
// or lines (position in the order from 0, and quantity), not both; the
// reason is optional (the guest sees it in an email).
type refundInput struct {
	AmountCents int64              `json:"amount_cents"`
	Lines       []ladle.RefundLine `json:"lines"`
	Reason      string             `json:"reason"`
}

// MaxRefundReasonLen bounds a refund's reason, as on the staff page.
const MaxRefundReasonLen = 200

func (in *refundInput) check(o *ladle.Order) error {
	fields := map[string]string{}
	switch {
	case in.AmountCents != 0 && len(in.Lines) > 0:
		fields["amount_cents"] = "give an amount or lines, not both"
	case in.AmountCents < 0:
		fields["amount_cents"] = "must be positive"
	case in.AmountCents == 0 && len(in.Lines) == 0:
		fields["amount_cents"] = "give an amount or lines to refund"
	}
	seen := map[int]bool{}
	for i, l := range in.Lines {
		at := "lines[" + strconv.Itoa(i) + "]"
		switch {
		case l.Position < 0 || l.Position >= len(o.Lines):
			fields[at] = fmt.Sprintf("position must be between 0 and %d", len(o.Lines)-1)
		case seen[l.Position]:
			fields[at] = "names a line twice"
		case l.Quantity < 1 || l.Quantity > o.Lines[l.Position].Quantity:
			fields[at] = fmt.Sprintf("quantity must be between 1 and %d", o.Lines[l.Position].Quantity)
		case l.Amount != 0:
			fields[at] = "amount is computed from the line; leave it out"
		}
		seen[l.Position] = true
	}
	if utf8.RuneCountInString(in.Reason) > MaxRefundReasonLen {
		fields["reason"] = fmt.Sprintf("must be at most %d characters", MaxRefundReasonLen)
	} else if msg := ladle.CheckText(in.Reason, ladle.NoteText); msg != "" {
		fields["reason"] = msg
	}
	if len(fields) > 0 {
		return &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation, Message: "the refund is invalid", Fields: fields}
	}
	return nil
}

// same reports whether r is what in asks for (a retried request).
func (in *refundInput) same(r *ladle.Refund) bool {
	if len(in.Lines) == 0 {
		return len(r.Lines) == 0 && int64(r.Amount) == in.AmountCents
	}
	want := map[int]int{}
	for _, l := range in.Lines {
		want[l.Position] = l.Quantity
	}
	return len(r.Lines) == len(want) && !slices.ContainsFunc(r.Lines, func(l ladle.RefundLine) bool { return want[l.Position] != l.Quantity })
}

func (d AdminDeps) refundOrder(r *http.Request, rest *ladle.Restaurant, tok *ladle.APIToken) (*ladle.Order, error) {
	if !tok.Role.CanRefund() {
		return nil, ladle.Errorf(ladle.KindForbidden, ladle.CodeForbidden, "refunds need the owner or manager role")
	}
	return d.Store.RestaurantOrder(r.Context(), rest.ID, r.PathValue("id"))
}

func (d AdminDeps) handleRefundCreate(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, tok *ladle.APIToken) error {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return ladle.Errorf(ladle.KindInvalid, ladle.CodeIdempotencyKeyMissing, "an Idempotency-Key header is required to refund")
	}
	if err := ladle.CheckIdempotencyKey(key); err != nil {
		return err
	}
	if key == ladle.RefundCancelKey { // the cancellation's refund
		return &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation, Message: "the Idempotency-Key is reserved",
			Fields: map[string]string{"Idempotency-Key": "must not be \"" + ladle.RefundCancelKey + "\""}}
	}
	o, err := d.refundOrder(r, rest, tok)
	if err != nil {
		return err
	}
	var in refundInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := in.check(o); err != nil {
		return err
	}
	rf, err := d.Ordering.Refund(r.Context(), rest.ID, o.ID, ordering.RefundInput{Key: key, Amount: ladle.Money(in.AmountCents),
		Lines: in.Lines, Reason: in.Reason, Source: ladle.RefundSourceAPI, By: tok.UserID})
	if err != nil {
		return err
	}
	if !in.same(rf) {
		return ladle.Errorf(ladle.KindUnprocessable, ladle.CodeIdempotencyKeyReused,
			"this Idempotency-Key was used for refund %s of another amount or other lines", rf.ID)
	}
	w.Header().Set("Location", r.URL.Path+"/"+rf.ID)
	writeJSON(w, http.StatusCreated, rf)
	return nil
}

// refundTotals is ladle.RefundTotals in minor units.
type refundTotals struct {
	Captured  ladle.Money `json:"captured"`
	Refunded  ladle.Money `json:"refunded"`
	Pending   ladle.Money `json:"pending"`
	Remaining ladle.Money `json:"remaining"`
	Currency  string      `json:"currency"`
}

func (d AdminDeps) handleRefundList(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, tok *ladle.APIToken) error {
	o, err := d.refundOrder(r, rest, tok)
	if err != nil {
		return err
	}
	list, tot, err := d.Store.Refunds(r.Context(), rest.ID, o.ID)
	if err != nil {
		return err
	}
	if list == nil {
		list = []ladle.Refund{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"refunds": list, "totals": refundTotals{Captured: tot.Captured,
		Refunded: tot.Refunded, Pending: tot.Pending, Remaining: tot.Remaining, Currency: o.Currency}})
	return nil
}
