package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ladle-dev/ladle"
)

// maxReasonLen bounds a cancellation reason.
const maxReasonLen = 200

// handleStatusPost moves one order of the member's restaurant to the posted
// status. The order is looked up scoped to the restaurant, so another
// restaurant's order id is a 404 and nothing changes. Refused moves re-render
// the board with the reason: 409 for a transition the order's current status
// does not allow (e.g. another device moved it first), 422 for a
// cancellation without a reason.
func (s *server) handleStatusPost(w http.ResponseWriter, r *http.Request, st *staffView) {
	rid := st.Restaurant.ID
	o, err := s.Store.RestaurantOrder(r.Context(), rid, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	to := ladle.OrderStatus(r.PostFormValue("status"))
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	num := "#" + strconv.FormatInt(o.Number, 10)
	if _, known := statusLabels[to]; !known {
		s.renderBoard(w, r, st, http.StatusUnprocessableEntity, "Unknown status for order "+num+".", o.ID)
		return
	}
	if to == ladle.StatusCancelled {
		switch {
		case reason == "":
			s.renderBoard(w, r, st, http.StatusUnprocessableEntity,
				"Order "+num+" was not cancelled: please give a reason (the guest sees it).", o.ID)
			return
		case utf8.RuneCountInString(reason) > maxReasonLen:
			s.renderBoard(w, r, st, http.StatusUnprocessableEntity,
				"Order "+num+" was not cancelled: the reason is longer than "+strconv.Itoa(maxReasonLen)+" characters.", o.ID)
			return
		case ladle.CheckText(reason, ladle.NoteText) != "": // the input policy: the guest sees it in an email
			s.renderBoard(w, r, st, http.StatusUnprocessableEntity,
				"Order "+num+" was not cancelled: the reason "+ladle.CheckText(reason, ladle.NoteText)+".", o.ID)
			return
		}
	} else {
		reason = ""
	}
	if !ladle.CanTransition(o.Status, to) {
		s.renderBoard(w, r, st, http.StatusConflict, refusedMove(num, o.Status, to), o.ID)
		return
	}
	if _, err := s.Store.SetOrderStatus(r.Context(), rid, o.ID, to, reason, st.User.ID, s.Now()); err != nil {
		switch ladle.ErrorCode(err) {
		case ladle.CodeInvalidTransition:
			// Someone else moved it between our read and our write.
			cur := o.Status
			if fresh, ferr := s.Store.RestaurantOrder(r.Context(), rid, o.ID); ferr == nil {
				cur = fresh.Status
			}
			s.renderBoard(w, r, st, http.StatusConflict, refusedMove(num, cur, to), o.ID)
		case ladle.CodeValidation:
			var e *ladle.Error
			errors.As(err, &e)
			s.renderBoard(w, r, st, http.StatusUnprocessableEntity, "Order "+num+": "+e.Message+".", o.ID)
		default:
			s.fail(w, r, err)
		}
		return
	}
	if to == ladle.StatusCancelled {
		// The cancellation recorded the card's full refund; this request,
		// the one that cancelled, asks the processor for it (a second click
		// was refused above). Its outcome shows on the order page; an
		// unknown one is finished by the recovery loop.
		if _, err := s.Ordering.RefundCancelled(r.Context(), rid, o.ID); err != nil {
			s.Logger.Error("web: refund after cancel", "order", o.ID, "err", err)
		}
	}
	http.Redirect(w, r, boardURL(rid)+"?updated="+url.QueryEscape(o.ID)+"#order-"+url.PathEscape(o.ID), http.StatusSeeOther)
}

func refusedMove(num string, from, to ladle.OrderStatus) string {
	return "Order " + num + " is " + strings.ToLower(statusLabel(from)) + " and can’t be moved to “" +
		strings.ToLower(statusLabel(to)) + "”. The board below shows where it is now."
}
