package web

import (
	"errors"
	"net/http"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/problem"
)

// checkoutQuote answers the checkout form's "Apply" button (action=quote):
// the form priced by ordering.Service.Quote, the order's own path, and
// shown in the summary with the coupon's result, or the errors the order
// would get, beside the fields. Nothing is placed, and the attempt's key is
// kept (it was not used). With JavaScript the page asks the same of the
// JSON API (POST …/quote) as the guest types.
func (s *server) checkoutQuote(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, p *checkoutPage) {
	if ladle.CheckIdempotencyKey(p.Key) != nil {
		p.Key = newKey()
	}
	req, fields := p.Form.orderRequest(rest.Currency)
	if len(fields) > 0 {
		p.Errors = fields
		s.renderCheckout(w, r, http.StatusUnprocessableEntity, rest, p)
		return
	}
	q, err := s.Ordering.Quote(r.Context(), rest, req)
	if err != nil {
		err = problem.Classify(err)
		var e *ladle.Error
		if !errors.As(err, &e) || e.Kind == ladle.KindInternal || e.Kind == ladle.KindUnavailable {
			s.fail(w, r, err)
			return
		}
		p.Errors = formFields(e.Fields)
		if len(p.Errors) == 0 {
			p.Notice = sentence(e.Message) + "."
		}
		s.renderCheckout(w, r, problem.Status(e), rest, p)
		return
	}
	p.Quote = q
	s.renderCheckout(w, r, http.StatusOK, rest, p)
}
