package ladle

import (
	"context"
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
	OrderStore
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
	// image key and position.
	UpdateItem(ctx context.Context, it *Item) error
	DeleteItem(ctx context.Context, restaurantID, id int64) error
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
	CouponByCode(ctx context.Context, restaurantID int64, code string) (*Coupon, error)
	Redemptions(ctx context.Context, restaurantID, couponID int64) ([]Redemption, error)
}

// NewOrder is the input of CreateOrder.
type NewOrder struct {
	ID             string // pre-generated UUIDv7
	RestaurantID   int64
	IdempotencyKey string // the key whose recovery point becomes this order
	Request        *OrderRequest
	Now            time.Time
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
	//  8. sets the idempotency key's recovery point to the order id.
	// On any error nothing is written.
	CreateOrder(ctx context.Context, in NewOrder) (*Order, error)

	// SettlePayment records the provider's answer for the order's pending
	// payment, in one transaction. Captured: payment captured, order placed,
	// events payment.captured and order.placed. Declined: payment declined,
	// order payment_failed, the coupon redemption and the fingerprint
	// released (so the guest can try another card). Settling a payment that
	// is no longer pending changes nothing and returns the order as it is.
	SettlePayment(ctx context.Context, orderID string, res PaymentResult, now time.Time) (*Order, error)
	// Payments lists the order's payments.
	Payments(ctx context.Context, orderID string) ([]Payment, error)
	// PendingPayments lists card payments still pending that were created
	// before `before`, oldest first: the charges whose outcome is unknown,
	// for the recovery loop.
	PendingPayments(ctx context.Context, before time.Time, limit int) ([]Payment, error)

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
	// cancellation needs a reason (validation_failed without one).
	SetOrderStatus(ctx context.Context, restaurantID int64, orderID string, to OrderStatus, reason string, now time.Time) (*Order, error)
}

// IdempotencyRecord is one Idempotency-Key of one restaurant.
type IdempotencyRecord struct {
	RestaurantID int64
	Key          string
	RequestHash  string
	// LockedAt is set while a request is working on the key.
	LockedAt *time.Time
	// OrderID is the recovery point: the order created under this key, ""
	// before one was.
	OrderID string
	// ResponseStatus and ResponseBody are the final response, 0/nil until
	// the request finished; then every replay returns them.
	ResponseStatus int
	ResponseBody   []byte
	CreatedAt      time.Time
}

// IdempotencyStore keeps Idempotency-Keys and their responses.
type IdempotencyStore interface {
	// ClaimIdempotencyKey inserts the key locked at now, or returns the
	// existing record. claimed reports whether the caller now holds the
	// lock: the key is new, or it exists with the same request hash, has no
	// response yet, and is unlocked or was locked before now-staleAfter (its
	// holder died). Atomic: of concurrent claimers at most one wins.
	ClaimIdempotencyKey(ctx context.Context, restaurantID int64, key, requestHash string, now time.Time, staleAfter time.Duration) (rec *IdempotencyRecord, claimed bool, err error)
	// FinishIdempotencyKey stores the final response and releases the lock.
	FinishIdempotencyKey(ctx context.Context, restaurantID int64, key string, status int, body []byte) error
	// UnlockIdempotencyKey releases the lock and keeps the recovery point:
	// the outcome is not known yet, and a retry with the key resumes.
	UnlockIdempotencyKey(ctx context.Context, restaurantID int64, key string) error
	// DeleteIdempotencyKey forgets an unfinished key whose request wrote
	// nothing (validation failed), so it can be used again.
	DeleteIdempotencyKey(ctx context.Context, restaurantID int64, key string) error
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
