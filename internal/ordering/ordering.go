// Package ordering places orders: it owns the Idempotency-Key protocol
// (draft-ietf-httpapi-idempotency-key-header, as Stripe behaves), the payment
// call and its recovery, and the guest's access tokens. Storage is
// ladle.Store; money is ladle.PaymentProvider.
//
// One POST goes through phases, each committed before the next starts, so a
// crash anywhere leaves a state a retry (or the recovery loop) can finish:
//
//  1. claim the key (store: idempotency row, locked);
//  2. create the order (store: one transaction writes the order, its lines,
//     its payment row, the coupon redemption, the fingerprint, the outbox
//     events and the key's recovery point);
//  3. charge the card (provider, with a key derived from the order, so a
//     repeated call is the same charge);
//  4. settle (store: payment captured or declined, order placed or failed);
//  5. store the response under the key and unlock it.
package ordering

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/problem"
)

// Service places orders. Build one with New.
type Service struct {
	store    ladle.Store
	payments ladle.PaymentProvider
	secret   []byte
	now      ladle.Clock
	log      *slog.Logger
	// staleLock is how long a claimed key may stay locked before another
	// request may take it over (its holder is presumed dead).
	staleLock time.Duration
	// chargeTimeout bounds one call to the payment provider.
	chargeTimeout time.Duration
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock (tests move time).
func WithClock(c ladle.Clock) Option { return func(s *Service) { s.now = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithChargeTimeout bounds one payment provider call (default 10s).
func WithChargeTimeout(d time.Duration) Option { return func(s *Service) { s.chargeTimeout = d } }

// WithStaleLock sets after how long a locked key is presumed abandoned
// (default 1 minute: longer than any healthy request takes).
func WithStaleLock(d time.Duration) Option { return func(s *Service) { s.staleLock = d } }

// New returns a Service. secret keys the guests' access tokens: every process
// that serves or mails order links must share it.
func New(store ladle.Store, payments ladle.PaymentProvider, secret []byte, opts ...Option) *Service {
	s := &Service{store: store, payments: payments, secret: secret, now: ladle.Now,
		log: slog.Default(), staleLock: time.Minute, chargeTimeout: 10 * time.Second}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Result is the final response to an order POST: the same status and bytes
// that are stored under the Idempotency-Key and replayed for it.
type Result struct {
	Status   int    // 201 created, or 402 declined
	Body     []byte // the order JSON, or a problem+json document
	Replayed bool   // true when Status and Body came from the store
	// Order is the order for a 201 (access token filled), nil otherwise.
	Order *ladle.Order
}

// MaxKeyLen bounds an Idempotency-Key.
const MaxKeyLen = 255

// Place runs the whole Idempotency-Key protocol for one order POST to
// restaurant r. Outcomes:
//   - a *Result: 201 with the order, or 402 for a declined card; both stored
//     under the key and replayed (Replayed true) for the same key and body;
//   - *ladle.Error, not stored: idempotency_key_missing (no key),
//     validation_failed, idempotency_key_in_use (the first request with the
//     key is still in flight), idempotency_key_reused (the key was used with
//     another body), possible_duplicate (Extra: order_id, status,
//     status_url), item_unavailable, coupon_invalid, coupon_exhausted;
//   - payment_pending (KindUnavailable) when the charge's outcome is not
//     known yet: the key is kept, and a retry with it (or the recovery loop)
//     finishes the order without charging twice.
//
// Once the key is claimed, the work runs to the end even if ctx is cancelled
// (the guest closed the tab): an order half-placed helps nobody.
func (s *Service) Place(ctx context.Context, r *ladle.Restaurant, key string, req *ladle.OrderRequest) (*Result, error) {
	if key == "" {
		return nil, ladle.Errorf(ladle.KindInvalid, ladle.CodeIdempotencyKeyMissing,
			"an Idempotency-Key header is required to place an order")
	}
	if len(key) > MaxKeyLen {
		return nil, ladle.Errorf(ladle.KindInvalid, ladle.CodeValidation, "the Idempotency-Key is longer than %d characters", MaxKeyLen)
	}
	now := s.now()
	req.Normalize()
	if fields := req.Validate(now); len(fields) > 0 {
		return nil, &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation,
			Message: "the order has invalid fields", Fields: fields}
	}
	hash := req.Hash()
	rec, claimed, err := s.store.ClaimIdempotencyKey(ctx, r.ID, key, hash, now, s.staleLock)
	if err != nil {
		return nil, err
	}
	if !claimed {
		switch {
		case rec.RequestHash != hash:
			return nil, ladle.Errorf(ladle.KindUnprocessable, ladle.CodeIdempotencyKeyReused,
				"this Idempotency-Key was already used for a different order")
		case rec.ResponseStatus != 0:
			return s.replay(rec)
		default:
			return nil, ladle.Errorf(ladle.KindConflict, ladle.CodeIdempotencyKeyInUse,
				"an order with this Idempotency-Key is still being placed; retry shortly")
		}
	}
	return s.run(context.WithoutCancel(ctx), r, key, req, rec)
}

// run does phases 2–5 while holding the key's lock.
func (s *Service) run(ctx context.Context, r *ladle.Restaurant, key string, req *ladle.OrderRequest, rec *ladle.IdempotencyRecord) (*Result, error) {
	var order *ladle.Order
	var err error
	if rec.OrderID == "" {
		order, err = s.store.CreateOrder(ctx, ladle.NewOrder{
			ID: uuid.Must(uuid.NewV7()).String(), RestaurantID: r.ID, IdempotencyKey: key, Request: req, Now: s.now(),
		})
		if err != nil {
			if ladle.ErrorKind(err) == ladle.KindInternal {
				// We cannot tell whether anything committed: keep the key
				// (with whatever recovery point it has) for a retry.
				s.unlock(ctx, r.ID, key)
				return nil, err
			}
			// A 4xx: nothing was written, so the key is forgotten and
			// works again once the request is fixed.
			if derr := s.store.DeleteIdempotencyKey(ctx, r.ID, key); derr != nil {
				s.log.Error("forget idempotency key", "restaurant", r.ID, "err", derr)
			}
			return nil, s.decorate(err)
		}
	} else {
		// Resuming a request that died or timed out after creating the order.
		if order, err = s.store.Order(ctx, rec.OrderID); err != nil {
			s.unlock(ctx, r.ID, key)
			return nil, err
		}
	}

	if order.Status == ladle.StatusPendingPayment {
		if order, err = s.charge(ctx, order); err != nil {
			s.unlock(ctx, r.ID, key)
			return nil, err
		}
	}

	res := s.response(order)
	if err := s.store.FinishIdempotencyKey(ctx, r.ID, key, res.Status, res.Body); err != nil {
		// The order stands; only the stored response is missing, and a
		// retry will rebuild it from the order (recovery point).
		s.log.Error("store idempotent response", "order", order.ID, "err", err)
	}
	return res, nil
}

// charge calls the provider for the order's pending payment and settles it.
// It returns payment_pending when the outcome is unknown.
func (s *Service) charge(ctx context.Context, order *ladle.Order) (*ladle.Order, error) {
	pays, err := s.store.Payments(ctx, order.ID)
	if err != nil {
		return nil, err
	}
	var pay *ladle.Payment
	for i := range pays {
		if pays[i].Status == ladle.PaymentPending {
			pay = &pays[i]
		}
	}
	if pay == nil { // settled meanwhile by the recovery loop
		return s.store.Order(ctx, order.ID)
	}
	return s.chargePayment(ctx, pay, order.ID)
}

func (s *Service) chargePayment(ctx context.Context, pay *ladle.Payment, orderID string) (*ladle.Order, error) {
	cctx, cancel := context.WithTimeout(ctx, s.chargeTimeout)
	res, err := s.payments.Charge(cctx, ladle.ChargeRequest{
		Key: pay.IdempotencyKey, Amount: pay.Amount, Currency: pay.Currency, Token: pay.Token,
		Description: "Order " + orderID,
	})
	cancel()
	var result ladle.PaymentResult
	switch {
	case err == nil:
		result = ladle.PaymentResult{Captured: true, ChargeID: res.ChargeID}
	case ladle.ErrorCode(err) == ladle.CodePaymentDeclined:
		var e *ladle.Error
		errors.As(err, &e)
		result = ladle.PaymentResult{FailureReason: e.Message}
	default:
		s.log.Warn("payment outcome unknown", "order", orderID, "err", err)
		return nil, &ladle.Error{Kind: ladle.KindUnavailable, Code: ladle.CodePaymentPending,
			Message: "We could not confirm your payment yet. Retry in a moment: you will not be charged twice.",
			Extra:   map[string]any{"order_id": orderID, "retry_after": 5}}
	}
	return s.store.SettlePayment(ctx, orderID, result, s.now())
}

func (s *Service) unlock(ctx context.Context, restaurantID int64, key string) {
	if err := s.store.UnlockIdempotencyKey(ctx, restaurantID, key); err != nil {
		s.log.Error("unlock idempotency key", "restaurant", restaurantID, "err", err)
	}
}

// decorate adds the status link to a possible_duplicate error, so the guest
// can open the order that already exists.
func (s *Service) decorate(err error) error {
	var e *ladle.Error
	if errors.As(err, &e) && e.Code == ladle.CodePossibleDuplicate {
		if id, ok := e.Extra["order_id"].(string); ok {
			e.Extra["status_url"] = StatusURL(id, s.AccessToken(id))
			if e.Message == "" {
				e.Message = "An order with the same items and contact was just placed."
			}
		}
	}
	return err
}

// response builds the final response for an order: 201 with the order, or
// 402 when its payment was declined.
func (s *Service) response(order *ladle.Order) *Result {
	if order.Status == ladle.StatusPaymentFailed {
		body, _ := json.Marshal(problem.From(&ladle.Error{Kind: ladle.KindPaymentRequired, Code: ladle.CodePaymentDeclined,
			Message: "Your card was declined. Nothing was charged; try another card.",
			Extra:   map[string]any{"order_id": order.ID}}))
		return &Result{Status: http.StatusPaymentRequired, Body: body}
	}
	order.AccessToken = s.AccessToken(order.ID)
	body, _ := json.Marshal(orderResponse{Order: order, StatusURL: StatusURL(order.ID, order.AccessToken)})
	return &Result{Status: http.StatusCreated, Body: body, Order: order}
}

// orderResponse is the JSON of a created order.
type orderResponse struct {
	*ladle.Order
	StatusURL string `json:"status_url"`
}

func (s *Service) replay(rec *ladle.IdempotencyRecord) (*Result, error) {
	res := &Result{Status: rec.ResponseStatus, Body: rec.ResponseBody, Replayed: true}
	if res.Status == http.StatusCreated {
		var o ladle.Order
		if err := json.Unmarshal(rec.ResponseBody, &o); err != nil {
			return nil, err
		}
		res.Order = &o
	}
	return res, nil
}

// AccessToken returns the guest's capability for an order: HMAC-SHA256 of
// the id under the server secret. Nothing is stored, and any process with the
// secret (the receipt worker) can mint the link.
func (s *Service) AccessToken(orderID string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte("order-access:"))
	m.Write([]byte(orderID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// GuestOrder returns the order if token is its access token; otherwise (or if
// there is no such order) not_found, so a guessed id reveals nothing.
func (s *Service) GuestOrder(ctx context.Context, orderID, token string) (*ladle.Order, error) {
	if !hmac.Equal([]byte(token), []byte(s.AccessToken(orderID))) {
		return nil, ladle.NotFound("order")
	}
	o, err := s.store.Order(ctx, orderID)
	if err != nil {
		return nil, err
	}
	o.AccessToken = token
	return o, nil
}

// StatusURL is the guest's order status page.
func StatusURL(orderID, token string) string {
	return "/orders/" + url.PathEscape(orderID) + "?token=" + url.QueryEscape(token)
}
