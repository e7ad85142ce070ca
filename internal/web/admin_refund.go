package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/ordering"
)

// Refunds on the staff order page (admin_order.go): the panel
// (partial_order_refunds.html) shows what was captured, refunded, pending and
// left, every refund with its state, a form for a partial refund (by lines
// or by amount) and a Retry button on failed ones. Refunding needs the owner
// or manager role (Role.CanRefund); any staff member may cancel, and a
// cancellation refunds the rest in full (admin_status.go).
//
// The form carries a nonce made when the page was rendered: it is the
// refund's request key, so a double click or a re-sent form finds the
// refund the first one made (ordering.Service.Refund).
var refundRoutes = []staffRoute{
	{"POST /admin/r/{rid}/orders/{id}/refunds", func(s *server) staffHandler { return s.handleRefundPost }},
	{"POST /admin/r/{rid}/orders/{id}/refunds/{refund}/retry", func(s *server) staffHandler { return s.handleRefundRetry }},
}

func init() {
	staffRoutes = append(staffRoutes, refundRoutes...)
	loadOrderRefunds = (*server).refundPanel
}

// refundPanelView is what partial_order_refunds.html shows.
type refundPanelView struct {
	Refunds   []refundRow
	Totals    ladle.RefundTotals
	Currency  string
	CanRefund bool // the member may refund, and there is something left
	CanRetry  bool // the member may retry a failed refund
	Key       string
	Lines     []refundableLine
	// Error is a refused refund, shown above the form with the input kept.
	Error  string
	Amount string
	Reason string
}

// refundableLine is an order line with what is left of it to refund.
type refundableLine struct {
	Position int
	Name     string
	Left     int
	Chosen   int
	Choices  []int // 0..Left
}

// refundRow is one refund as the panel lists it.
type refundRow struct {
	ladle.Refund
	StatusLabel string
	What        string // where it came from, and its lines
}

var refundStatusLabels = map[ladle.RefundStatus]string{
	ladle.RefundPending: "Pending", ladle.RefundSucceeded: "Refunded", ladle.RefundFailed: "Failed",
}

var refundSourceLabels = map[string]string{
	ladle.RefundSourceCancel: "Order cancelled", ladle.RefundSourceStaff: "Staff",
	ladle.RefundSourceAPI: "Staff API", ladle.RefundSourceProvider: "Made at the card processor",
}

func newRefundRow(rf ladle.Refund, o *ladle.Order) refundRow {
	what := refundSourceLabels[rf.Source]
	for i, l := range rf.Lines {
		if i == 0 {
			what += ": "
		} else {
			what += ", "
		}
		name := "line " + strconv.Itoa(l.Position+1)
		if l.Position < len(o.Lines) {
			name = o.Lines[l.Position].Name
		}
		what += strconv.Itoa(l.Quantity) + "× " + name
	}
	return refundRow{Refund: rf, StatusLabel: refundStatusLabels[rf.Status], What: what}
}

type refundFormKey struct{}

// refundForm is a refused form, handed to the panel through the request's
// context so the order page re-renders with it.
type refundForm struct {
	err, amount, reason string
	lines               map[int]int
}

func (s *server) refundPanel(r *http.Request, st *staffView, o *ladle.Order) (any, error) {
	refunds, tot, err := s.Store.Refunds(r.Context(), st.Restaurant.ID, o.ID)
	if err != nil {
		return nil, err
	}
	v := &refundPanelView{Totals: tot, Currency: o.Currency, CanRetry: st.Role.CanRefund(),
		CanRefund: st.Role.CanRefund() && tot.Remaining > 0, Key: newNonce()}
	for _, rf := range refunds {
		v.Refunds = append(v.Refunds, newRefundRow(rf, o))
	}
	form, _ := r.Context().Value(refundFormKey{}).(*refundForm)
	if form != nil {
		v.Error, v.Amount, v.Reason = form.err, form.amount, form.reason
	}
	used := map[int]int{}
	for _, rf := range refunds {
		if rf.Status != ladle.RefundFailed {
			for _, l := range rf.Lines {
				used[l.Position] += l.Quantity
			}
		}
	}
	for i, l := range o.Lines {
		rl := refundableLine{Position: i, Name: l.Name, Left: l.Quantity - used[i]}
		if form != nil {
			rl.Chosen = form.lines[i]
		}
		for q := 0; q <= rl.Left; q++ {
			rl.Choices = append(rl.Choices, q)
		}
		v.Lines = append(v.Lines, rl)
	}
	return v, nil
}

func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handleRefundPost makes a partial refund of the member's restaurant's
// order: the chosen lines, or an amount. A refused refund (more than is
// left: 422; bad input: 422) re-renders the order page with the reason and
// the input kept; otherwise it redirects to the order's refunds, where the
// refund shows as succeeded, failed (with Retry) or pending.
func (s *server) handleRefundPost(w http.ResponseWriter, r *http.Request, st *staffView) {
	o, ok := s.refundOrder(w, r, st)
	if !ok {
		return
	}
	form := &refundForm{amount: strings.TrimSpace(r.PostFormValue("amount")),
		reason: strings.TrimSpace(r.PostFormValue("reason")), lines: map[int]int{}}
	in := ordering.RefundInput{Key: r.PostFormValue("key"), Reason: form.reason, Source: ladle.RefundSourceStaff, By: st.User.ID}
	for i := range o.Lines {
		raw := strings.TrimSpace(r.PostFormValue("line-" + strconv.Itoa(i)))
		if raw == "" || raw == "0" {
			continue
		}
		q, err := strconv.Atoi(raw)
		if err != nil || q < 0 || q > 99 {
			s.refundRefused(w, r, st, form, "Line "+strconv.Itoa(i+1)+": the quantity must be a whole number.")
			return
		}
		form.lines[i] = q
		in.Lines = append(in.Lines, ladle.RefundLine{Position: i, Quantity: q})
	}
	amount, valid := parseMoney(form.amount, o.Currency)
	switch {
	case in.Key == "" || len(in.Key) > ordering.MaxKeyLen:
		s.refundRefused(w, r, st, form, "The form expired: reload the page and try again.")
		return
	case !valid:
		s.refundRefused(w, r, st, form, "The amount must look like "+formatMoney(1250, o.Currency)+".")
		return
	case amount > 0 && len(in.Lines) > 0:
		s.refundRefused(w, r, st, form, "Choose lines or type an amount, not both.")
		return
	case amount <= 0 && len(in.Lines) == 0:
		s.refundRefused(w, r, st, form, "Choose the lines to refund or type an amount.")
		return
	case utf8.RuneCountInString(form.reason) > maxReasonLen:
		s.refundRefused(w, r, st, form, "The reason is longer than "+strconv.Itoa(maxReasonLen)+" characters.")
		return
	case ladle.CheckText(form.reason, ladle.NoteText) != "": // the guest sees it in an email
		s.refundRefused(w, r, st, form, "The reason "+ladle.CheckText(form.reason, ladle.NoteText)+".")
		return
	}
	in.Amount = amount
	if _, err := s.Ordering.Refund(r.Context(), st.Restaurant.ID, o.ID, in); err != nil {
		if msg := refundErrorText(err, o.Currency); msg != "" {
			s.refundRefused(w, r, st, form, msg)
			return
		}
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, orderURL(st.Restaurant.ID, o.ID)+"#refunds", http.StatusSeeOther)
}

// handleRefundRetry retries a failed refund (the attempt the page showed):
// a second click for the same attempt changes nothing.
func (s *server) handleRefundRetry(w http.ResponseWriter, r *http.Request, st *staffView) {
	o, ok := s.refundOrder(w, r, st)
	if !ok {
		return
	}
	attempt, err := strconv.Atoi(r.PostFormValue("attempt"))
	if err != nil || attempt < 1 {
		s.refundRefused(w, r, st, &refundForm{}, "The form expired: reload the page and try again.")
		return
	}
	rf, err := s.Store.Refund(r.Context(), st.Restaurant.ID, r.PathValue("refund"))
	if err == nil && rf.OrderID != o.ID {
		err = ladle.NotFound("refund")
	}
	if err == nil {
		_, err = s.Ordering.RetryRefund(r.Context(), st.Restaurant.ID, rf.ID, attempt)
	}
	if err != nil {
		if msg := refundErrorText(err, o.Currency); msg != "" {
			s.refundRefused(w, r, st, &refundForm{}, msg)
			return
		}
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, orderURL(st.Restaurant.ID, o.ID)+"#refunds", http.StatusSeeOther)
}

// refundOrder reads the form and the order (scoped to the member's
// restaurant: another's is a 404), and refuses members who may not refund.
func (s *server) refundOrder(w http.ResponseWriter, r *http.Request, st *staffView) (*ladle.Order, bool) {
	o, err := s.Store.RestaurantOrder(r.Context(), st.Restaurant.ID, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	if !st.Role.CanRefund() {
		s.errorPage(w, r, http.StatusForbidden, "Not allowed", "Refunds need the owner or manager role.")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return nil, false
	}
	return o, true
}

// refundErrorText words the refusals staff can act on; "" for the rest.
func refundErrorText(err error, cur string) string {
	var e *ladle.Error
	if !asLadleError(err, &e) {
		return ""
	}
	switch e.Code {
	case ladle.CodeRefundExceeds:
		left, _ := e.Extra["remaining"].(int64)
		return "Not refunded: " + e.Message + ". At most " + formatMoney(ladle.Money(left), cur) + " is left to refund."
	case ladle.CodeValidation, ladle.CodeRefundNotRefundable:
		return "Not refunded: " + e.Message + "."
	}
	return ""
}

// refundRefused re-renders the order page with the refusal (422).
func (s *server) refundRefused(w http.ResponseWriter, r *http.Request, st *staffView, form *refundForm, msg string) {
	form.err = msg
	r = r.WithContext(context.WithValue(r.Context(), refundFormKey{}, form))
	s.renderOrderDetail(w, r, st, http.StatusUnprocessableEntity)
}

// guestRefunds sums the order's card refunds on their way (pending) and
// refused (failed), for the guest's status page; what was refunded is on
// the order itself (Order.Refunded).
func (s *server) guestRefunds(r *http.Request, o *ladle.Order) (pending, failed ladle.Money, err error) {
	if o.PaymentMethod != "card" || o.PaymentStatus != ladle.PaymentCaptured {
		return 0, 0, nil
	}
	refunds, tot, err := s.Store.Refunds(r.Context(), o.RestaurantID, o.ID)
	if err != nil {
		return 0, 0, err
	}
	for _, rf := range refunds {
		if rf.Status == ladle.RefundFailed {
			failed += rf.Amount
		}
	}
	return tot.Pending, failed, nil
}
