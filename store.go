package ladle

import (
	"context"
	"errors"
	"time"
)

// Store is the storage contract. internal/sqlstore implements it on SQLite
// and on PostgreSQL; internal/storetest is the conformance suite both pass.
//
// Rules every method follows:
//   - Lookups of a missing row return an *Error with code not_found (NotFound).
//   - Methods that take a restaurantID are tenant-scoped: they only ever read
//     or change rows of that restaurant, and a row of another restaurant is
//     "not found". Staff-facing code must only call scoped methods.
//   - Every change others care about appends its Event in the same
//     transaction (the outbox); every menu change bumps the menu version.
//   - Times are UTC.
type Store interface {
	RestaurantStore
	StaffStore
	MenuStore
	CouponStore
	HoursStore
	OrderStore
	HistoryStore
	PaymentStore
	RefundStore
	IdempotencyStore
	Ping(ctx context.Context) error
	Close() error
}

// RestaurantStore manages tenants.
type RestaurantStore interface {
	// CreateRestaurant inserts r and sets r.ID and r.CreatedAt. A taken slug
	// is a conflict (code slug_taken).
	CreateRestaurant(ctx context.Context, r *Restaurant) error
	RestaurantByID(ctx context.Context, id int64) (*Restaurant, error)
	RestaurantBySlug(ctx context.Context, slug string) (*Restaurant, error)
	// Restaurants lists all restaurants by name (the public index page).
	Restaurants(ctx context.Context) ([]Restaurant, error)
}

// StaffStore manages staff users, their memberships and their sessions.
type StaffStore interface {
	// CreateUser inserts u (email lower-cased) and sets u.ID. A taken email is
	// a conflict (code email_taken).
	CreateUser(ctx context.Context, u *User) error
	UserByEmail(ctx context.Context, email string) (*User, error)
	UserByID(ctx context.Context, id int64) (*User, error)
	// AddMembership adds or updates the user's role in the restaurant.
	AddMembership(ctx context.Context, m Membership) error
	// Memberships lists the user's restaurants, with names and slugs filled.
	Memberships(ctx context.Context, userID int64) ([]Membership, error)
	// Membership returns the user's membership in one restaurant; not_found
	// when the user does not belong to it.
	Membership(ctx context.Context, userID, restaurantID int64) (*Membership, error)

	CreateSession(ctx context.Context, s *Session) error
	// SessionByTokenHash returns the session if it exists and has not
	// expired at now.
	SessionByTokenHash(ctx context.Context, hash []byte, now time.Time) (*Session, error)
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteExpiredSessions removes sessions that expired before now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)
}

// MenuStore reads and edits menus. Every edit bumps the restaurant's menu
// version and appends a menu.changed event in the same transaction.
type MenuStore interface {
	// Menu returns the whole menu document (categories, items, groups,
	// modifiers, all in position order), sold-out items included with
	// Available false. Item.Image is left empty; Item.ImageKey is set.
	Menu(ctx context.Context, restaurantID int64) (*Menu, error)
	// MenuVersion returns the restaurant's current menu version (cheap: one
	// indexed row), for cache keys and ETags.
	MenuVersion(ctx context.Context, restaurantID int64) (int64, error)

	CreateCategory(ctx context.Context, c *Category) error // sets ID
	UpdateCategory(ctx context.Context, c *Category) error // name, position
	// DeleteCategory removes an empty category; one with items is a conflict
	// (code category_not_empty).
	DeleteCategory(ctx context.Context, restaurantID, id int64) error

	// CreateItem inserts it (ModifierGroups is ignored: use
	// SetItemModifierGroups) and sets ID. The category must be the
	// restaurant's.
	CreateItem(ctx context.Context, it *Item) error
	// UpdateItem changes category, name, description, price, availability,
	// image key and position, if the stored item is still at it.Version
	// (else a conflict, code CodeItemChanged, and nothing changes); on
	// success it.Version is the new version.
	UpdateItem(ctx context.Context, it *Item) error
	// SetItemImage sets the item's image key alone (no other field), under
	// the same version check as UpdateItem, and returns the new version.
	SetItemImage(ctx context.Context, restaurantID, itemID, version int64, imageKey string) (int64, error)
	DeleteItem(ctx context.Context, restaurantID, id int64) error
	// SetItemAvailable is the sold-out toggle: unconditional (the intent is
	// the whole change), and it moves the item's version on, so a form
	// opened before it cannot write the old availability back.
	SetItemAvailable(ctx context.Context, restaurantID, itemID int64, available bool) error
	// SetItemModifierGroups replaces the groups attached to the item, in the
	// given order. Every group must be the restaurant's.
	SetItemModifierGroups(ctx context.Context, restaurantID, itemID int64, groupIDs []int64) error

	// CreateModifierGroup inserts g with its Modifiers and sets their IDs.
	CreateModifierGroup(ctx context.Context, g *ModifierGroup) error
	// UpdateModifierGroup changes name, min, max, position.
	UpdateModifierGroup(ctx context.Context, g *ModifierGroup) error
	DeleteModifierGroup(ctx context.Context, restaurantID, id int64) error
	// CreateModifier adds m to its group (which must be the restaurant's).
	CreateModifier(ctx context.Context, restaurantID int64, m *Modifier) error
	UpdateModifier(ctx context.Context, restaurantID int64, m *Modifier) error
	DeleteModifier(ctx context.Context, restaurantID, id int64) error
}

// CouponStore manages coupons. Redemption happens inside CreateOrder.
type CouponStore interface {
	// CreateCoupon inserts c (code upper-cased) and sets ID; a taken code is
	// a conflict (code coupon_code_taken).
	CreateCoupon(ctx context.Context, c *Coupon) error
	Coupons(ctx context.Context, restaurantID int64) ([]Coupon, error)
	// CouponByID returns the restaurant's coupon; another's is not_found.
	CouponByID(ctx context.Context, restaurantID, id int64) (*Coupon, error)
	// UpdateCoupon changes the restaurant's coupon c.ID: kind, value,
	// minimum subtotal, validity window, limits and active (the code and the
	// uses stay). A total limit below the uses so far is validation_failed
	// on max_uses. It fills c with the stored coupon.
	UpdateCoupon(ctx context.Context, c *Coupon) error
	CouponByCode(ctx context.Context, restaurantID int64, code string) (*Coupon, error)
	Redemptions(ctx context.Context, restaurantID, couponID int64) ([]Redemption, error)
}

// HoursStore keeps opening hours, the pause switch and pickup-slot usage.
type HoursStore interface {
	// Hours returns the restaurant's schedule: DefaultHours (open around
	// the clock, uncapped) until one is set; not_found for no restaurant.
	Hours(ctx context.Context, restaurantID int64) (*Hours, error)
	// SetHours validates h (validation_failed with Hours.Validate's
	// fields) and stores it, all but PausedUntil, which it leaves as is.
	SetHours(ctx context.Context, restaurantID int64, h *Hours, now time.Time) error
	// PauseOrdering pauses new orders until `until` (nil resumes at once).
	PauseOrdering(ctx context.Context, restaurantID int64, until *time.Time, now time.Time) error
	// SlotUsage lists the slots starting in [from, to) that have taken
	// anything, by start.
	SlotUsage(ctx context.Context, restaurantID int64, from, to time.Time) ([]SlotUsage, error)
}

// NewOrder is the input of CreateOrder.
type NewOrder struct {
	ID             string // pre-generated UUIDv7
	RestaurantID   int64
	IdempotencyKey string // the key whose recovery point becomes this order
	// Fence is the claim of IdempotencyKey this order is created under
	// (IdempotencyRecord.Fence). The recovery point is written only while
	// the key is still held under this fence, checked inside the
	// transaction; a holder whose key was taken over gets KeyFenced and
	// nothing is written, so one key never leads to two orders.
	Fence   int64
	Request *OrderRequest
	Now     time.Time
	// Respond, when set, builds the response to store under the key if the
	// order is complete once created (pay at pickup): the key is finished
	// and unlocked in the same transaction, so such an order is one commit.
	Respond func(*Order) (status int, body []byte)
}

// Settlement is the input of SettlePayment.
type Settlement struct {
	OrderID string
	Result  PaymentResult
	Now     time.Time
	// Lease, when set, fences the settlement: it applies only while the
	// key is still held under Lease.Fence (else KeyFenced, nothing
	// written), and the response Respond builds is stored under the key
	// and the key unlocked in the same transaction. The recovery loop
	// settles without a lease.
	Lease   *KeyLease
	Respond func(*Order) (status int, body []byte)
	// Lines, when set, are the order's lines as CreateOrder returned them,
	// reused instead of read again.
	Lines []OrderLine
}

// OrderFilter selects orders for the staff board.
type OrderFilter struct {
	Since    time.Time     // created at or after; zero for all
	Statuses []OrderStatus // empty for all statuses on the board (OnBoard)
	Limit    int           // 0 for the default of 200
}

// OrderStore creates and runs orders.
type OrderStore interface {
	// CreateOrder writes one order in one transaction:
	//  1. loads the restaurant, its menu (from tables, never a cache) and
	//     the coupon if one is named (unknown code: coupon_invalid);
	//  2. prices the request with Price (validation_failed,
	//     item_unavailable, coupon_invalid);
	//  2b. checks the hours (Hours.Plan: restaurant_closed) and, when
	//     slots are capped, takes the pickup slot with a conditional
	//     upsert (slot_full naming the next slots with room); an ASAP
	//     order takes the first slot with room from its earliest ready
	//     time and gets ReadyEstimate; this slot lock comes right after
	//     the key's, before every other;
	//  3. unless Request.ConfirmDuplicate, claims the request's
	//     Fingerprint for DuplicateWindow; if an order of the same
	//     fingerprint is younger than that, fails with a KindConflict
	//     possible_duplicate whose Extra has "order_id" and "status";
	//  4. upserts the customer by email (name, phone, marketing consent);
	//  5. redeems the coupon atomically under MaxUses (coupon_exhausted)
	//     and PerCustomerLimit (coupon_exhausted);
	//  6. inserts the order with the next per-restaurant number, status
	//     pending_payment for card or placed for pay_at_pickup, its lines
	//     and its payment row (pending, or due_at_pickup) with
	//     IdempotencyKey PaymentKey(order id) and the card token;
	//  7. appends coupon.redeemed and, if placed, order.placed;
	//  8. sets the idempotency key's recovery point to the order id, if
	//     the key is still held under in.Fence (KeyFenced otherwise); this
	//     is the transaction's first write, so on PostgreSQL the key row is
	//     locked before anything else;
	//  9. with in.Respond and a complete order (pay at pickup), stores the
	//     response under the key and unlocks it.
	// The order number is assigned when the order is placed: at creation
	// for pay at pickup, at a captured settlement for a card (a declined
	// card takes no number); until then Number is 0.
	// On any error nothing is written.
	CreateOrder(ctx context.Context, in NewOrder) (*Order, error)

	// QuoteOrder is CreateOrder's steps 1–2b without writing anything: the
	// same pricing, hours and slot decisions, and the same errors, with
	// coupon limits and slot room checked against the current counts (a
	// quote reserves nothing, so the order may still meet coupon_exhausted
	// or slot_full). The payment is not looked at.
	QuoteOrder(ctx context.Context, in NewOrder) (*Quote, error)

	// SettlePayment records the provider's answer for the order's pending
	// payment, in one transaction. Captured: payment captured, order placed
	// with the next order number, events payment.captured and order.placed.
	// Declined: payment declined, order payment_failed, the coupon
	// redemption, the pickup slot and the fingerprint released (so the guest can try another
	// card). Either way the card token is erased. Settling a payment that
	// is no longer pending changes no payment or order and returns the order
	// as it is (with a Lease, the response is still stored under the key).
	SettlePayment(ctx context.Context, st Settlement) (*Order, error)
	// Payments lists the order's payments.
	Payments(ctx context.Context, orderID string) ([]Payment, error)
	// PendingPayments lists card payments still pending that were created
	// before `before`, are due for an attempt at now and have not been
	// given up, least recently attempted first: the charges whose outcome
	// is unknown, for the recovery loop. Each attempt that stays unknown is
	// recorded with PaymentAttempted, which moves the row to the back.
	PendingPayments(ctx context.Context, before, now time.Time, limit int) ([]Payment, error)
	// PaymentAttempted records one more recovery attempt of a pending
	// payment whose outcome stayed unknown: next is when to try again.
	PaymentAttempted(ctx context.Context, paymentID string, next time.Time) error
	// GiveUpPayment stops recovering a pending payment and flags its order
	// for staff attention (Order.Attention = reason); the order shows on
	// the staff board. The payment stays pending: staff settle it by hand.
	GiveUpPayment(ctx context.Context, paymentID, reason string, now time.Time) error

	// Order returns any order by id (the guest path: the caller checks the
	// access token).
	Order(ctx context.Context, id string) (*Order, error)
	// RestaurantOrder returns the order if it is the restaurant's.
	RestaurantOrder(ctx context.Context, restaurantID int64, id string) (*Order, error)
	// Orders lists the restaurant's orders, newest first.
	Orders(ctx context.Context, restaurantID int64, f OrderFilter) ([]Order, error)
	// SetOrderStatus moves the order to `to` if CanTransition allows it from
	// its current status (checked atomically: a concurrent change makes this
	// fail rather than skip a step), and appends order.status_changed.
	// Refused moves are a conflict with code invalid_transition. A
	// cancellation needs a reason (validation_failed without one), and
	// gives the order's pickup slot back. by is the staff member making
	// the move (0: the system); the order's status history records it with
	// the move, in the same transaction.
	SetOrderStatus(ctx context.Context, restaurantID int64, orderID string, to OrderStatus, reason string, by int64, now time.Time) (*Order, error)
}

// IdempotencyRecord is one Idempotency-Key of one restaurant.
type IdempotencyRecord struct {
	RestaurantID int64
	Key          string
	RequestHash  string
	// LockedAt is set while a request is working on the key.
	LockedAt *time.Time
	// Fence counts the claims of the key: every claim (first or takeover)
	// increments it, and every write under the claim (KeyLease) checks it,
	// so a holder whose key was taken over can no longer write.
	Fence int64
	// Holder and Boot name the process that claimed the key last (KeyClaim).
	Holder, Boot string
	// OrderID is the recovery point: the order created under this key, ""
	// before one was.
	OrderID string
	// ResponseStatus and ResponseBody are the final response, 0/nil until
	// the request finished; then every replay returns them.
	ResponseStatus int
	ResponseBody   []byte
	CreatedAt      time.Time
}

// KeyClaim is the input of ClaimIdempotencyKey.
type KeyClaim struct {
	RestaurantID     int64
	Key, RequestHash string
	// Holder names the claiming process, stable across its restarts (e.g.
	// host and data directory); Boot names this run of it. Together they
	// let a restarted process release what its previous run held
	// (ReleaseHolderKeys).
	Holder, Boot string
	Now          time.Time
	// StaleAfter is how long a lock may be held before another request
	// with the same key may take it over (its holder is presumed dead).
	StaleAfter time.Duration
}

// KeyLease names one claim of a key: every write under the claim carries
// it, and succeeds only while the key's fence is still Fence.
type KeyLease struct {
	RestaurantID int64
	Key          string
	Fence        int64
}

// Lease returns the lease of the claim rec describes.
func (rec *IdempotencyRecord) Lease() KeyLease {
	return KeyLease{RestaurantID: rec.RestaurantID, Key: rec.Key, Fence: rec.Fence}
}

// ErrFenced is the cause of KeyFenced errors (errors.Is).
var ErrFenced = errors.New("ladle: idempotency key taken over by another request")

// KeyFenced is the error of a write under a claim that was taken over: a
// later request with the same key owns it now, and will finish the order.
// It is a 409 idempotency_key_in_use with Retry-After: retrying the same
// request returns the owner's outcome.
func KeyFenced() *Error {
	return &Error{Kind: KindConflict, Code: CodeIdempotencyKeyInUse,
		Message: "this request took too long and a retry with the same Idempotency-Key took it over; retry to get its outcome",
		Extra:   map[string]any{"retry_after": 1}, cause: ErrFenced}
}

// IdempotencyStore keeps Idempotency-Keys and their responses.
type IdempotencyStore interface {
	// ClaimIdempotencyKey inserts the key locked at c.Now with fence 1, or
	// returns the existing record. claimed reports whether the caller now
	// holds the lock: the key is new, or it exists with the same request
	// hash, has no response yet, and is unlocked or was locked before
	// Now-StaleAfter (its holder died or stalled); a takeover increments the
	// fence, which fences the previous holder out. Atomic: of concurrent
	// claimers at most one wins.
	ClaimIdempotencyKey(ctx context.Context, c KeyClaim) (rec *IdempotencyRecord, claimed bool, err error)
	// ClaimAndCreateOrder is ClaimIdempotencyKey and, when the claim wins
	// and the key has no recovery point yet, CreateOrder under the new
	// fence (in.IdempotencyKey and in.Fence are set from c), in one
	// transaction: a placement's first commit. It returns the record (as
	// claimed, or as found when claimed is false) and the order, nil when
	// none was created (not claimed, or the key already leads to one). If
	// the create fails, its error is returned and nothing of the attempt is
	// kept: a new key is not stored; a key taken over is deleted when the
	// failure is a 4xx (the request wrote nothing), and otherwise left as
	// it was.
	ClaimAndCreateOrder(ctx context.Context, c KeyClaim, in NewOrder) (rec *IdempotencyRecord, claimed bool, o *Order, err error)
	// FinishIdempotencyKey stores the final response and releases the
	// lock. A lease that no longer holds the key: KeyFenced.
	FinishIdempotencyKey(ctx context.Context, l KeyLease, status int, body []byte) error
	// UnlockIdempotencyKey releases the lock and keeps the recovery point:
	// the outcome is not known yet, and a retry with the key resumes.
	// A lease that no longer holds the key: KeyFenced.
	UnlockIdempotencyKey(ctx context.Context, l KeyLease) error
	// DeleteIdempotencyKey forgets an unfinished key whose request wrote
	// nothing (validation failed), so it can be used again. A key that has
	// a response or a recovery point is not_found; a lease that no longer
	// holds the key: KeyFenced.
	DeleteIdempotencyKey(ctx context.Context, l KeyLease) error
	// IdempotencyKey returns the key's record (not_found if there is none):
	// a holder re-checks its fence with it before an irreversible step.
	IdempotencyKey(ctx context.Context, restaurantID int64, key string) (*IdempotencyRecord, error)
	// ReleaseHolderKeys unlocks (and fences) the keys still locked by an
	// earlier run of holder, i.e. with another boot than boot: a restarted
	// process calls it so the keys its previous run held when it died are
	// usable at once instead of after StaleAfter. It returns how many.
	ReleaseHolderKeys(ctx context.Context, holder, boot string) (int64, error)
	// ReapIdempotencyKeys deletes keys created before `before` that are not
	// locked, and order fingerprints older than DuplicateWindow before it.
	ReapIdempotencyKeys(ctx context.Context, before time.Time) (int64, error)
}

// MenuReader serves menu documents: the Store itself, or a cache in front of
// it (internal/menucache). Storefront pages and the menu API read through
// one; checkout never does (it prices inside its own transaction).
type MenuReader interface {
	Menu(ctx context.Context, restaurantID int64) (*Menu, error)
}
