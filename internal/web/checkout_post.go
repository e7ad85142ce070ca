package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/problem"
)

// maxCheckoutBody bounds the checkout form (50 lines of JSON fit easily).
const maxCheckoutBody = 64 << 10

// maxAutoRetries bounds how often the "still placing" page re-submits by
// itself before it leaves it to the guest's button.
const maxAutoRetries = 60

// handleCheckoutPost places the order from the checkout form through the
// ordering service (the whole Idempotency-Key protocol), and turns each
// outcome into a page:
//
//   - created, or a replay of it: 303 to the order status page;
//   - the key's first request still in flight: 409 "still placing" page that
//     re-posts the same form (same key) after a second;
//   - payment outcome unknown: 503 page that re-posts after a few seconds;
//   - possible duplicate: 409 checkout with the duplicate dialog;
//   - declined card: 402 checkout with the message and a new key;
//   - invalid fields, sold-out item, bad coupon: checkout with per-field
//     messages (422, 409) and everything the guest typed.
//
// The whole form is read before any database work, so a slow database can
// never make the server's read timeout cut it short; then the order takes a
// slot of the order limiter (shared with the JSON API; a 503 page with
// Retry-After when the server is busy) and a request deadline.
func (s *server) handleCheckoutPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxCheckoutBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.errorPage(w, r, http.StatusRequestEntityTooLarge, "Order too large", "This order is too large to place online. Please call the restaurant.")
			return
		}
		s.errorPage(w, r, http.StatusBadRequest, "Bad request", "The checkout form could not be read.")
		return
	}
	release, err := s.Limits.Orders.Acquire(r.Context())
	if err != nil {
		s.retryLater(w, r, &ladle.Restaurant{Slug: r.PathValue("slug")}, err)
		return
	}
	defer release()
	if s.Limits.RequestTimeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), s.Limits.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	rest, err := s.Store.RestaurantBySlug(r.Context(), r.PathValue("slug"))
	if err != nil {
		if ladle.ErrorKind(problem.Classify(err)) == ladle.KindUnavailable {
			s.retryLater(w, r, &ladle.Restaurant{Slug: r.PathValue("slug")}, problem.Classify(err))
			return
		}
		s.fail(w, r, err)
		return
	}
	form := readCheckoutForm(r)
	key := strings.TrimSpace(r.PostFormValue("idempotency_key"))
	if r.PostFormValue("action") == "quote" {
		s.checkoutQuote(w, r, rest, &checkoutPage{Form: form, Key: key, Errors: map[string]string{}})
		return
	}
	confirm := false
	for _, v := range r.PostForm["confirm_duplicate"] {
		confirm = confirm || v == "1"
	}
	p := &checkoutPage{Form: form, Key: key, Errors: map[string]string{}}
	if ladle.CheckIdempotencyKey(key) != nil {
		// Only a hand-made post has no key (or one that is not printable
		// ASCII, as the API requires): give it one and ask again.
		p.Key, p.RotateKey = newKey(), true
		p.Notice = "Something interrupted your checkout. Please check your order and place it again."
		s.renderCheckout(w, r, http.StatusBadRequest, rest, p)
		return
	}

	req, fields := form.orderRequest(rest.Currency)
	req.ConfirmDuplicate = confirm
	if len(fields) > 0 {
		// Refused before the key was used: the same key stays valid.
		p.Errors = fields
		p.Notice = "Please check the highlighted fields."
		s.renderCheckout(w, r, http.StatusUnprocessableEntity, rest, p)
		return
	}

	res, err := s.Ordering.Place(r.Context(), rest, key, req)
	if err == nil {
		s.placed(w, r, rest, res, p)
		return
	}
	err = problem.Classify(err)
	if ladle.ErrorCode(err) == ladle.CodeUnavailable {
		// Busy or a dependency down: the key is kept, and the page posts
		// the same form again after Retry-After, which resumes the same
		// order if anything was written.
		s.retryLater(w, r, rest, err)
		return
	}

	var e *ladle.Error
	if !errors.As(err, &e) || e.Kind == ladle.KindInternal {
		// Whatever happened may have committed: keep the key, so that
		// trying again resumes the same order instead of making another.
		s.Logger.Error("web: placing order", "restaurant", rest.ID, "err", err)
		s.renderPlacing(w, r, http.StatusInternalServerError, rest, placingView{
			Heading: "We couldn't finish placing your order",
			Message: "Something went wrong on our side. Try again: if your order went through, you will see it, and you will not be charged twice.",
		})
		return
	}
	switch e.Code {
	case ladle.CodeIdempotencyKeyInUse:
		s.renderPlacing(w, r, http.StatusConflict, rest, placingView{
			Heading: "Still placing your order…",
			Message: "Your order is being placed. This page will check again in a moment; there is no need to submit it again.",
			Retry:   1,
		})
	case ladle.CodePaymentPending:
		secs := 3
		if v, ok := e.Extra["retry_after"].(int); ok && v > 0 {
			secs = v
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.renderPlacing(w, r, http.StatusServiceUnavailable, rest, placingView{
			Heading: "Confirming your payment…",
			Message: "We are waiting for the card processor to confirm your payment. This page will check again in a few seconds; you will not be charged twice.",
			Retry:   secs,
		})
	case ladle.CodePossibleDuplicate:
		// The similar order may be someone else's: the page names nothing
		// of it (no link, token or status). A browser that placed it keeps
		// its link (app.js) and offers it from the dialog.
		p.Key, p.RotateKey = newKey(), true
		p.Duplicate = &duplicateView{}
		s.renderCheckout(w, r, http.StatusConflict, rest, p)
	case ladle.CodeValidation:
		p.Key, p.RotateKey = newKey(), true
		p.Errors = formFields(e.Fields)
		p.Notice = "Please check the highlighted fields."
		s.renderCheckout(w, r, http.StatusUnprocessableEntity, rest, p)
	case ladle.CodeItemUnavailable:
		p.Key, p.RotateKey = newKey(), true
		if id, ok := toInt64(e.Extra["item_id"]); ok {
			p.SoldOut = []int64{id}
		}
		p.Notice = sentence(e.Message) + ". We took it out of your cart: check your order and place it again."
		p.Errors["cart"] = sentence(e.Message) + "."
		s.renderCheckout(w, r, http.StatusConflict, rest, p)
	case ladle.CodeCouponInvalid, ladle.CodeCouponExhausted:
		p.Key, p.RotateKey = newKey(), true
		msg := e.Message
		if e.Code == ladle.CodeCouponExhausted && msg == "" {
			msg = "this coupon has been used up"
		}
		p.Errors["coupon"] = sentence(msg) + "."
		p.Notice = "Your coupon could not be applied. Remove it or try another code."
		s.renderCheckout(w, r, http.StatusConflict, rest, p)
	case ladle.CodeRestaurantClosed, ladle.CodeSlotFull, ladle.CodePickupTooSoon:
		p.Key, p.RotateKey = newKey(), true
		p.Errors = formFields(e.Fields)
		p.Notice = e.Message
		s.renderCheckout(w, r, problem.Status(e), rest, p)
	case ladle.CodeIdempotencyKeyReused:
		p.Key, p.RotateKey = newKey(), true
		p.Notice = "Your order changed while an earlier attempt was still being placed. Check your order and place it again."
		s.renderCheckout(w, r, http.StatusUnprocessableEntity, rest, p)
	default:
		p.Key, p.RotateKey = newKey(), true
		p.Notice = sentence(e.Message) + "."
		s.renderCheckout(w, r, problem.Status(e), rest, p)
	}
}

// retryLater answers 503 with Retry-After and the "still placing" page,
// which re-posts the same form (same key) after that many seconds.
func (s *server) retryLater(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, err error) {
	secs := max(ladle.RetryAfter(err), 1)
	if errors.Unwrap(err) != nil { // a dependency's failure; a shed request (no cause) is only counted
		s.Logger.Warn("web: checkout unavailable", "restaurant", rest.Slug, "err", err)
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.renderPlacing(w, r, http.StatusServiceUnavailable, rest, placingView{
		Heading: "Busy placing orders…",
		Message: "We are placing a lot of orders right now. This page will try again in a moment; your order will not be placed twice.",
		Retry:   secs,
	})
}

// placed handles a final response from the ordering service.
func (s *server) placed(w http.ResponseWriter, r *http.Request, rest *ladle.Restaurant, res *ordering.Result, p *checkoutPage) {
	switch res.Status {
	case http.StatusCreated:
		o := res.Order
		if o == nil {
			o = &ladle.Order{}
			if err := json.Unmarshal(res.Body, o); err != nil || o.ID == "" {
				s.fail(w, r, errors.Join(errors.New("web: unreadable order response"), err))
				return
			}
		}
		token := o.AccessToken
		if token == "" {
			token = s.Ordering.AccessToken(o.ID)
		}
		// placed=1 tells the status page it was reached from checkout, so
		// its JS empties the cart (a status link opened later must not).
		http.Redirect(w, r, ordering.StatusURL(o.ID, token)+"&placed=1", http.StatusSeeOther)
	case http.StatusAccepted:
		// The card needs the guest's bank (3-D Secure): the order waits,
		// pending payment, and the page finishes it with Stripe.js.
		s.render(w, r, http.StatusAccepted, "payment_action.html", paymentActionPage{
			page: page{Title: "Confirm your payment"}, Action: res.Action,
			StatusURL: ordering.StatusURL(res.Order.ID, s.Ordering.AccessToken(res.Order.ID))})
	case http.StatusPaymentRequired:
		var doc struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(res.Body, &doc)
		if doc.Detail == "" {
			doc.Detail = "Your card was declined. Nothing was charged; try another card."
		}
		p.Key, p.RotateKey = newKey(), true
		p.Notice = doc.Detail
		p.Errors["card_token"] = "This card was declined."
		s.renderCheckout(w, r, http.StatusPaymentRequired, rest, p)
	default:
		s.fail(w, r, errors.New("web: unexpected order response status "+strconv.Itoa(res.Status)))
	}
}

// readCheckoutForm reads the posted fields as typed.
func readCheckoutForm(r *http.Request) checkoutForm {
	v := r.PostFormValue
	return checkoutForm{
		Name: v("name"), Email: v("email"), Phone: v("phone"),
		Pickup: v("pickup"), Coupon: v("coupon"), Tip: v("tip"),
		Marketing: v("marketing") == "1",
		Payment:   v("payment"), CardToken: v("card_token"),
		Cart: v("cart"),
	}
}

// orderRequest builds the order request. It checks only what the form adds
// to the domain's rules (the cart's JSON, the tip's format); the rest is
// validated by the ordering service, whose field names formFields maps
// back.
func (f checkoutForm) orderRequest(currency string) (*ladle.OrderRequest, map[string]string) {
	errs := map[string]string{}
	req := &ladle.OrderRequest{
		Customer:       ladle.CustomerInput{Name: f.Name, Email: f.Email, Phone: f.Phone},
		Fulfillment:    ladle.FulfillmentInput{Type: "pickup", Time: f.Pickup},
		CouponCode:     f.Coupon,
		MarketingOptIn: f.Marketing,
		Payment:        ladle.PaymentInput{Method: f.Payment},
	}
	if f.Payment == "card" {
		req.Payment.Token = strings.TrimSpace(f.CardToken)
	}
	if tip, ok := parseMoney(f.Tip, currency); ok {
		req.Tip = tip
	} else {
		errs["tip"] = "Enter the tip as an amount, like 2.50."
	}
	cart := strings.TrimSpace(f.Cart)
	if cart == "" {
		cart = "[]"
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(cart)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req.Lines); err != nil {
		errs["cart"] = "Your cart could not be read. Go back to the menu and add your items again."
	} else if _, ok := ladle.CheckJSONText([]byte(cart)); !ok {
		// A note with invalid UTF-8 or a lone surrogate: the decoder made it
		// U+FFFD; the input policy refuses it, as the API does.
		errs["cart"] = "Your cart could not be read. Go back to the menu and add your items again."
	} else if len(req.Lines) == 0 {
		errs["cart"] = "Your cart is empty. Add something from the menu first."
	}
	return req, errs
}

// formFields maps the domain's field names to the form's.
func formFields(fields map[string]string) map[string]string {
	out := map[string]string{}
	for k, msg := range fields {
		var name, label string
		switch {
		case k == "customer.name":
			name, label = "name", "Name"
		case k == "customer.email":
			name, label = "email", "Email"
		case k == "customer.phone":
			name, label = "phone", "Phone"
		case strings.HasPrefix(k, "fulfillment"):
			name, label = "pickup", "Pickup time"
		case k == "coupon_code":
			name, label = "coupon", "Coupon code"
		case k == "tip":
			name, label = "tip", "Tip"
		case k == "payment.method":
			name, label = "payment", "Payment"
		case k == "payment.token":
			name, label = "card_token", "Card"
		default: // lines, lines[i].…
			out["cart"] = "Your cart: " + msg + "."
			continue
		}
		out[name] = label + " " + msg + "."
	}
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case ladle.OrderStatus:
		return string(x)
	}
	return ""
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	}
	return 0, false
}
