// Package ladle holds Ladle's domain: the types every other package speaks
// (restaurants, staff, menus, orders, payments, coupons, events), the pure
// rules over them (pricing, order status transitions, request fingerprints),
// and the contracts that adapters implement (Store, PaymentProvider).
//
// Nothing here does I/O. Adapters live under internal/, named after what
// they adapt; cmd/ladle wires them together.
package ladle

import (
	"time"
)

// Money is an amount in the currency's minor units (cents). Never a float.
type Money int64

// Clock returns the current time. Stores and services take one so tests can
// move time (reaping idempotency keys, duplicate windows, coupon validity).
type Clock func() time.Time

// Now is the production clock: UTC, truncated to microseconds because that is
// what PostgreSQL keeps, so a value read back equals the value written.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// Restaurant is a tenant. Everything a staff member can see hangs off one.
type Restaurant struct {
	ID       int64  `json:"id"`
	Slug     string `json:"slug"` // URL name, unique: [a-z0-9-]{2,64}
	Name     string `json:"name"`
	Currency string `json:"currency"` // ISO 4217, e.g. "USD"
	// TaxRateBP is the sales tax in basis points (825 = 8.25%), applied to
	// subtotal minus discount.
	TaxRateBP int    `json:"tax_rate_bp"`
	TimeZone  string `json:"time_zone"` // IANA name; "today" on the staff board is local to it
	Phone     string `json:"phone,omitempty"`
	Address   string `json:"address,omitempty"`
	// MenuVersion increases on every menu edit; caches key on it.
	MenuVersion int64 `json:"menu_version"`
	// DoubleOptIn: marketing consent a guest gives (the box at checkout)
	// is pending until they confirm it from an emailed link (campaign.go).
	DoubleOptIn bool      `json:"double_opt_in"`
	CreatedAt   time.Time `json:"created_at"`
}

// Location returns the restaurant's time zone, UTC if it is unknown.
func (r *Restaurant) Location() *time.Location {
	if loc, err := time.LoadLocation(r.TimeZone); err == nil {
		return loc
	}
	return time.UTC
}

// Role is a staff member's role in one restaurant.
type Role string

const (
	RoleOwner   Role = "owner"   // everything, including staff management
	RoleManager Role = "manager" // menu, coupons, campaigns, orders
	RoleStaff   Role = "staff"   // orders only
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleManager || r == RoleStaff }

// CanEditMenu reports whether the role may change the menu and coupons.
func (r Role) CanEditMenu() bool { return r == RoleOwner || r == RoleManager }

// User is a staff login. A user may belong to several restaurants.
type User struct {
	ID           int64     `json:"id"`
	Email        string    `json:"email"` // lower-cased, unique
	Name         string    `json:"name"`
	PasswordHash string    `json:"-"` // argon2id, PHC string format
	CreatedAt    time.Time `json:"created_at"`
}

// Membership links a user to a restaurant with a role (many-to-many).
type Membership struct {
	UserID         int64  `json:"user_id"`
	RestaurantID   int64  `json:"restaurant_id"`
	Role           Role   `json:"role"`
	RestaurantName string `json:"restaurant_name,omitempty"` // filled by MembershipsForUser
	RestaurantSlug string `json:"restaurant_slug,omitempty"` // filled by MembershipsForUser
}

// Session is a logged-in staff browser. Only the SHA-256 of the cookie value
// is stored, so a database leak does not leak live sessions.
type Session struct {
	TokenHash []byte
	UserID    int64
	CreatedAt time.Time
	ExpiresAt time.Time
}
