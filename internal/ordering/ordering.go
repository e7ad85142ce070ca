// Package ordering places orders: it owns the Idempotency-Key protocol
// (draft-ietf-httpapi-idempotency-key-header, as Stripe behaves), the payment
// call and its recovery, and the guest's access tokens. Storage is
// ladle.Store; money is ladle.PaymentProvider.
//
// One POST goes through phases, each committed before the next starts, so a
// crash anywhere leaves a state a retry (or the recovery loop) can finish:
//
//	1–2. claim the key and create the order (store: one transaction locks
//	   the key, fence incremented, and writes its recovery point, the order,
//	   its lines, its payment row, the coupon redemption, the fingerprint
//	   and the outbox events; for pay at pickup also the stored response,
//	   and the placement ends here);
//	3. re-check the fence, then charge the card (provider, with a key
//	   derived from the order, so a repeated call is the same charge);
//	4. settle (store: one transaction checks the fence, moves the payment
//	   and the order, and stores the response under the key, unlocked).
//
// Every write under the key checks its fence, so a holder whose key was
// taken over (it stalled past the stale-lock time) cannot create a second
// order, settle, or store a response; the order deadline keeps a healthy
// holder well inside the stale-lock time.
package ordering

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/priority"
	"github.com/ladle-dev/ladle/internal/problem"
)

// Service places orders. Build one with New.
type Service struct {
	store    ladle.Store
	payments ladle.PaymentProvider
	// refunder gives money back (refund.go); accountOf names a
	// restaurant's connected account at the processor ("" for none).
	refunder  ladle.Refunder
	accountOf func(ctx context.Context, restaurantID int64) string
	secret    []byte
	now       ladle.Clock
	log       *slog.Logger
	// orderTimeout bounds one placement, from the claim to the stored
	// response, whatever the guest does meanwhile.
	orderTimeout time.Duration
	// staleLock is how long a claimed key may stay locked before another
	// request may take it over (its holder is presumed dead or stalled);
	// 0 means 2×orderTimeout.
	staleLock time.Duration
	// chargeTimeout bounds one call to the payment provider.
	chargeTimeout time.Duration
	// holder and boot are recorded on every claim (ladle.KeyClaim): holder
	// names this process across restarts ("" disables the release at
	// start), boot this run of it.
	holder, boot string
	released     atomic.Bool

	// connect: look up the restaurant's connected account before a charge
	// (WithConnect); feeBP is the platform fee on such charges.
	connect bool
	feeBP   int

	// urgent is held while an order is placed (WithUrgent); nil: none.
	urgent *priority.Gate

	// beforeCharge, when set (tests), runs after the order exists and
	// before the fence re-check and the charge: a test stalls a holder
	// there.
	beforeCharge func(orderID string)
}

// Option configures a Service.
type Option func(*Service)

// WithClock sets the clock (tests move time).
func WithClock(c ladle.Clock) Option { return func(s *Service) { s.now = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithChargeTimeout bounds one payment provider call (default 10s; never
// past the order's deadline).
func WithChargeTimeout(d time.Duration) Option { return func(s *Service) { s.chargeTimeout = d } }

// WithConnect makes every charge name the restaurant's connected account
// (ladle.PaymentAccount, set by its owner) and take a platform fee of feeBP
// basis points of the amount on charges made on one (0: no fee). Only a
// provider with connected accounts (Stripe) needs it; without it no
// account is looked up.
func WithConnect(feeBP int) Option {
	return func(s *Service) { s.connect, s.feeBP = true, feeBP }
}

// DefaultOrderTimeout is the default of WithOrderTimeout.
const DefaultOrderTimeout = 10 * time.Second

// WithOrderTimeout bounds every placement (default DefaultOrderTimeout):
// claim, create, charge, settle and the stored response together. Past it
// the request gets 503 unavailable (or payment_pending once the card may
// have been charged) and its key is released for a retry. The stale-lock
// time is twice this, so a healthy holder is never taken over.
func WithOrderTimeout(d time.Duration) Option { return func(s *Service) { s.orderTimeout = d } }

// WithStaleLock sets after how long a locked key is presumed abandoned
// (default 2× the order timeout). Tests shorten it.
func WithStaleLock(d time.Duration) Option { return func(s *Service) { s.staleLock = d } }

// WithHolder names this process for the keys it claims, stably across its
// restarts and uniquely among the processes sharing the database (e.g.
// host name, listen address and data directory). Before its first
// placement (and when Run starts) the service releases the keys an earlier
// run of the same holder left locked when it died, so a client retrying
// them is served at once instead of after the stale-lock time. Two live
// processes given one name stay correct (the release fences the other's
// keys; its writes then fail rather than race), but lose work. Default ""
// (no release).
func WithHolder(h string) Option { return func(s *Service) { s.holder = h } }

// WithUrgent makes placing an order urgent work on g (internal/priority):
// campaign sends in this process yield while an order is being placed, so
// on SQLite's one writer a guest's order does not queue behind them.
func WithUrgent(g *priority.Gate) Option { return func(s *Service) { s.urgent = g } }

// New returns a Service. secret keys the guests' access tokens: every process
// that serves or mails order links must share it.
func New(store ladle.Store, payments ladle.PaymentProvider, secret []byte, opts ...Option) *Service {
	var b [8]byte
	_, _ = rand.Read(b[:])
	s := &Service{store: store, payments: payments, secret: secret, now: ladle.Now,
		log: slog.Default(), orderTimeout: DefaultOrderTimeout, chargeTimeout: 10 * time.Second,
		boot: hex.EncodeToString(b[:])}
	s.refunder, _ = payments.(ladle.Refunder)
	for _, o := range opts {
		o(s)
	}
	if s.orderTimeout <= 0 {
		s.orderTimeout = DefaultOrderTimeout
	}
	if s.staleLock <= 0 {
		s.staleLock = 2 * s.orderTimeout
	}
	return s
}

// StaleLock returns after how long a locked key may be taken over.
func (s *Service) StaleLock() time.Duration { return s.staleLock }

// ReleaseOwnKeys releases the keys an earlier run of this holder left
// locked (ladle.IdempotencyStore.ReleaseHolderKeys). Place calls it once
// before the first placement and Run when it starts; after a success it
// does nothing.
func (s *Service) ReleaseOwnKeys(ctx context.Context) error {
	if s.holder == "" || s.released.Load() {
		return nil
	}
	n, err := s.store.ReleaseHolderKeys(ctx, s.holder, s.boot)
	if err != nil {
		return err
	}
	if s.released.CompareAndSwap(false, true) && n > 0 {
		s.log.Info("released idempotency keys held by this process before a restart", "keys", n, "holder", s.holder)
	}
	return nil
}

// Result is the final response to an order POST: the same status and bytes
// that are stored under the Idempotency-Key and replayed for it.
type Result struct {
	// Status is 201 created, 402 declined, or 202 accepted when the card
	// needs the guest's action (3-D Secure, Action): the order is
	// pending_payment, and it is placed when the charge succeeds.
	Status   int
	Body     []byte // the order JSON, or a problem+json document
	Replayed bool   // true when Status and Body came from the store
	// Order is the order for a 201 or 202 (access token filled), nil
	// otherwise.
	Order *ladle.Order
	// Action is what the guest's browser must do for a 202.
	Action *PaymentAction
}

// MaxKeyLen bounds an Idempotency-Key.
const MaxKeyLen = 255

// Place runs the whole Idempotency-Key protocol for one order POST to
// restaurant r. Outcomes:
//   - a *Result: 201 with the order, or 402 for a declined card; both stored
//     under the key and replayed (Replayed true) for the same key and body;
//   - *ladle.Error, not stored: idempotency_key_missing (no key),
//     validation_failed, idempotency_key_in_use (the first request with the
//     key is still in flight, or took so long that a retry took the key
//     over), idempotency_key_reused (the key was used with another body),
//     possible_duplicate (a similar order was just placed: nothing about it
//     is revealed; the guest may confirm with confirm_duplicate),
//     item_unavailable, coupon_invalid, coupon_exhausted, unavailable (the
//     database is down or slow past the order's deadline);
//   - payment_pending (KindUnavailable) when the charge's outcome is not
//     known yet: the key is kept, and a retry with it (or the recovery loop)
//     finishes the order without charging twice.
//
// Once the key is claimed, the work runs to the end even if ctx is cancelled
// (the guest closed the tab: an order half-placed helps nobody), but never
// past the order timeout.
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
	defer s.urgent.Enter()()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.orderTimeout)
	defer cancel()
	if err := s.ReleaseOwnKeys(ctx); err != nil {
		s.log.Warn("release idempotency keys of an earlier run", "err", err)
	}
	hash := req.Hash()
	rec, claimed, order, err := s.store.ClaimAndCreateOrder(ctx,
		ladle.KeyClaim{RestaurantID: r.ID, Key: key, RequestHash: hash, Holder: s.holder, Boot: s.boot, Now: now, StaleAfter: s.staleLock},
		ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(), Request: req, Now: now, Respond: s.respond})
	if err != nil {
		// Nothing of this attempt was kept: a 4xx leaves the key unused
		// (it works again once the request is fixed), an outage leaves it
		// as it was.
		return nil, s.decorate(err)
	}
	if !claimed {
		switch {
		case rec.RequestHash != hash:
			return nil, ladle.Errorf(ladle.KindUnprocessable, ladle.CodeIdempotencyKeyReused,
				"this Idempotency-Key was already used for a different order")
		case rec.ResponseStatus != 0:
			return s.replay(rec)
		default:
			e := ladle.Errorf(ladle.KindConflict, ladle.CodeIdempotencyKeyInUse,
				"an order with this Idempotency-Key is still being placed; retry shortly")
			e.Extra = map[string]any{"retry_after": 1}
			return nil, e
		}
	}
	return s.run(ctx, req, rec, order, now)
}

// run does the rest while holding the key under rec's fence: order is the
// order the claim created, or nil when the claim resumed one (rec.OrderID).
// A card order is two commits: claim+create, then settle with the stored
// response; pay at pickup is the first alone.
func (s *Service) run(ctx context.Context, req *ladle.OrderRequest, rec *ladle.IdempotencyRecord, order *ladle.Order, claimedAt time.Time) (*Result, error) {
	lease := rec.Lease()
	var pay *ladle.Payment
	var lines []ladle.OrderLine
	var err error
	if order != nil {
		if order.Status != ladle.StatusPendingPayment {
			return s.response(order), nil // stored with the order (Respond)
		}
		// The create knows the payment: no read before the charge.
		pay = &ladle.Payment{OrderID: order.ID, Method: order.PaymentMethod, Amount: order.Total, Currency: order.Currency,
			Status: ladle.PaymentPending, Token: req.Payment.Token, IdempotencyKey: ladle.PaymentKey(order.ID)}
		lines = order.Lines
	} else {
		// Resuming a request that died or timed out after creating the order.
		if order, err = s.store.Order(ctx, rec.OrderID); err != nil {
			s.unlock(ctx, lease)
			return nil, err
		}
		if order.Status == ladle.StatusPendingPayment {
			if pay, err = s.pendingPayment(ctx, order.ID); err != nil {
				s.unlock(ctx, lease)
				return nil, err
			}
		}
		claimedAt = time.Time{} // always re-check the fence
	}

	if pay != nil {
		if s.beforeCharge != nil {
			s.beforeCharge(order.ID)
		}
		// Charging is the one step that cannot be undone: make sure the key
		// is still ours. A retry can take it over only once our lock is
		// StaleLock old by its clock; so right after our own create (less
		// than StaleLock/4 by our clock) the re-read is skipped, which
		// assumes the processes' clocks agree within 3/4 StaleLock (15 s by
		// default). If a retry did take over, it charges this same order
		// with the same provider key: the re-check spares a provider call,
		// it does not prevent a second charge (one key, one order, one
		// charge key).
		if s.now().Sub(claimedAt) >= s.staleLock/4 {
			if err := s.stillHolds(ctx, lease); err != nil {
				return nil, err
			}
		}
		settled, err := s.settlePayment(ctx, pay, order.RestaurantID, charge, "", &lease, lines)
		if err != nil {
			if !errors.Is(err, ladle.ErrFenced) {
				s.unlock(ctx, lease)
			}
			var action *actionRequired
			if errors.As(err, &action) {
				// Not stored under the key: a retry asks the provider again
				// and answers as the charge stands then.
				return s.actionResponse(order, action.res), nil
			}
			return nil, err
		}
		return s.response(settled), nil // stored with the settlement
	}

	res := s.response(order)
	if err := s.store.FinishIdempotencyKey(ctx, lease, res.Status, res.Body); err != nil {
		if errors.Is(err, ladle.ErrFenced) {
			return nil, err
		}
		// The order stands; only the stored response is missing, and a
		// retry will rebuild it from the order (recovery point).
		s.log.Error("store idempotent response", "order", order.ID, "err", err)
	}
	return res, nil
}

// respond builds the response stored under the key with the order.
func (s *Service) respond(o *ladle.Order) (int, []byte) {
	res := s.response(o)
	return res.Status, res.Body
}

// stillHolds re-reads the key and fails with KeyFenced unless lease still
// holds it.
func (s *Service) stillHolds(ctx context.Context, l ladle.KeyLease) error {
	rec, err := s.store.IdempotencyKey(ctx, l.RestaurantID, l.Key)
	if err != nil {
		return err
	}
	if rec.Fence != l.Fence || rec.LockedAt == nil {
		return ladle.KeyFenced()
	}
	return nil
}

// pendingPayment returns the order's pending payment, nil if there is none
// (settled meanwhile by the recovery loop).
func (s *Service) pendingPayment(ctx context.Context, orderID string) (*ladle.Payment, error) {
	pays, err := s.store.Payments(ctx, orderID)
	if err != nil {
		return nil, err
	}
	for i := range pays {
		if pays[i].Status == ladle.PaymentPending {
			return &pays[i], nil
		}
	}
	return nil, nil
}

// How settlePayment asks the provider.
type chargeMode int

const (
	// charge: call Charge (the placement; a retry of it).
	charge chargeMode = iota
	// resolve: ask Lookup first, and Charge with the same key only if the
	// provider has no such charge (recovery, the guest's return, a
	// webhook): a charge already made is settled as the provider has it now.
	resolve
)

// actionRequired is settlePayment's answer when the charge waits for the
// guest (3-D Secure): nothing is settled.
type actionRequired struct {
	orderID string
	res     ladle.ChargeResult
}

func (a *actionRequired) Error() string {
	return "payment of order " + a.orderID + " is " + string(a.res.Status)
}

// chargeRequest is the provider request for a pending payment of an order
// of restaurantID.
func (s *Service) chargeRequest(ctx context.Context, pay *ladle.Payment, restaurantID int64) (ladle.ChargeRequest, error) {
	req := ladle.ChargeRequest{Key: pay.IdempotencyKey, OrderID: pay.OrderID, RestaurantID: restaurantID,
		Amount: pay.Amount, Currency: pay.Currency, Token: pay.Token, Description: "Order " + pay.OrderID}
	if !s.connect {
		return req, nil
	}
	acct, err := s.store.PaymentAccount(ctx, restaurantID)
	if err != nil {
		return req, err
	}
	if req.Account = acct.StripeAccount; req.Account != "" {
		req.ApplicationFee = req.Amount * ladle.Money(s.feeBP) / 10000
	}
	return req, nil
}

// settlePayment asks the provider about a pending payment (mode) and
// settles it (under lease, storing the response, when the request holds
// the key). It returns payment_pending when the outcome is unknown, and an
// *actionRequired when the charge waits for the guest.
func (s *Service) settlePayment(ctx context.Context, pay *ladle.Payment, restaurantID int64, mode chargeMode, chargeID string, lease *ladle.KeyLease, lines []ladle.OrderLine) (*ladle.Order, error) {
	req, err := s.chargeRequest(ctx, pay, restaurantID)
	if err != nil {
		return nil, err
	}
	req.ChargeID = chargeID
	cctx, cancel := context.WithTimeout(ctx, s.chargeTimeout)
	var res ladle.ChargeResult
	if mode == resolve {
		res, err = s.payments.Lookup(cctx, req)
	}
	if mode == charge || errors.Is(err, ladle.ErrChargeNotFound) {
		if req.Token == "" {
			err = fmt.Errorf("ordering: no card token left to charge order %s with: %w", pay.OrderID, ladle.ErrPaymentUnknown)
		} else {
			res, err = s.payments.Charge(cctx, req)
		}
	}
	cancel()
	var result ladle.PaymentResult
	switch {
	case err == nil && res.Status == ladle.ChargeSucceeded:
		result = ladle.PaymentResult{Captured: true, ChargeID: res.ChargeID}
	case err == nil:
		return nil, &actionRequired{orderID: pay.OrderID, res: res}
	case ladle.ErrorCode(err) == ladle.CodePaymentDeclined:
		var e *ladle.Error
		errors.As(err, &e)
		result = ladle.PaymentResult{FailureReason: e.Message}
	default:
		s.log.Warn("payment outcome unknown", "order", pay.OrderID, "provider", s.payments.Name(), "err", err)
		return nil, paymentPending(pay.OrderID)
	}
	st := ladle.Settlement{OrderID: pay.OrderID, Result: result, Now: s.now(), Lease: lease, Lines: lines}
	if lease != nil {
		st.Respond = s.respond
	}
	return s.store.SettlePayment(ctx, st)
}

func paymentPending(orderID string) error {
	return &ladle.Error{Kind: ladle.KindUnavailable, Code: ladle.CodePaymentPending,
		Message: "We could not confirm your payment yet. Retry in a moment: you will not be charged twice.",
		Extra:   map[string]any{"order_id": orderID, "retry_after": 5}}
}

// cleanupCtx is for releasing a key after the placement's deadline may
// have passed: a short deadline of its own, so the key is not left locked
// for the stale-lock time just because the order ran out of time.
func (s *Service) cleanupCtx(ctx context.Context) context.Context {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	context.AfterFunc(c, cancel)
	return c
}

func (s *Service) unlock(ctx context.Context, l ladle.KeyLease) {
	if err := s.store.UnlockIdempotencyKey(s.cleanupCtx(ctx), l); err != nil && !errors.Is(err, ladle.ErrFenced) {
		s.log.Error("unlock idempotency key", "restaurant", l.RestaurantID, "err", err)
	}
}

// decorate words a possible_duplicate error for the guest. It names
// nothing of the other order (no id, link or token): the similar order may
// be someone else's, and whoever placed it already has its link. The guest
// who meant to order again confirms with confirm_duplicate.
func (s *Service) decorate(err error) error {
	var e *ladle.Error
	if errors.As(err, &e) && e.Code == ladle.CodePossibleDuplicate {
		e.Message = "An order with the same items and contact details was placed a few minutes ago. " +
			"If you meant to order again, confirm to place this one too."
		e.Extra = map[string]any{"confirm_with": "confirm_duplicate"}
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
