package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/ordering"
)

// paymentRoutes are the owners' payment settings: the restaurant's Stripe
// Connect account, on which its card payments are made. Owners only:
// managers and staff get 403.
var paymentRoutes = []staffRoute{
	{"GET /admin/r/{rid}/payments", func(s *server) staffHandler { return s.handlePayments }},
	{"POST /admin/r/{rid}/payments", func(s *server) staffHandler { return s.handlePaymentsPost }},
}

// paymentActionPage is the checkout's answer when the card needs the
// guest's action (payment_action.html).
type paymentActionPage struct {
	page
	Action    *ordering.PaymentAction
	StatusURL string
}

type paymentsPage struct {
	page
	Restaurant *ladle.Restaurant
	Account    string
	Error      string
	Saved      bool
}

func (s *server) paymentsAllowed(w http.ResponseWriter, r *http.Request, st *staffView) bool {
	if st.Role != ladle.RoleOwner {
		s.errorPage(w, r, http.StatusForbidden, "Owners only", "Payment settings are for the restaurant's owners.")
		return false
	}
	return true
}

func (s *server) handlePayments(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !s.paymentsAllowed(w, r, st) {
		return
	}
	a, err := s.Store.PaymentAccount(r.Context(), st.Restaurant.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "admin_payments.html", paymentsPage{page: page{Title: "Payments", Staff: st},
		Restaurant: st.Restaurant, Account: a.StripeAccount, Saved: r.URL.Query().Get("saved") == "1"})
}

func (s *server) handlePaymentsPost(w http.ResponseWriter, r *http.Request, st *staffView) {
	if !s.paymentsAllowed(w, r, st) {
		return
	}
	acct := strings.TrimSpace(r.PostFormValue("stripe_account"))
	err := s.Store.SetPaymentAccount(r.Context(), st.Restaurant.ID, ladle.PaymentAccount{StripeAccount: acct}, s.Now())
	if ladle.ErrorCode(err) == ladle.CodeValidation {
		s.render(w, r, http.StatusUnprocessableEntity, "admin_payments.html", paymentsPage{page: page{Title: "Payments", Staff: st},
			Restaurant: st.Restaurant, Account: acct,
			Error: "That is not a Stripe account id: it looks like acct_1A2b3C4d (letters and digits after acct_)."})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin/r/"+strconv.FormatInt(st.Restaurant.ID, 10)+"/payments?saved=1", http.StatusSeeOther)
}
