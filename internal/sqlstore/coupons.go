package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/ladle-dev/ladle"
)

const couponColumns = `id, restaurant_id, code, kind, value, min_subtotal, valid_from, valid_until,
	max_uses, per_customer_limit, uses, active, created_at`

func scanCoupon(row interface{ Scan(...any) error }, c *ladle.Coupon) error {
	return row.Scan(&c.ID, &c.RestaurantID, &c.Code, &c.Kind, &c.Value, &c.MinSubtotal,
		nullTimeCol{&c.ValidFrom}, nullTimeCol{&c.ValidUntil}, &c.MaxUses, &c.PerCustomerLimit, &c.Uses,
		&c.Active, timeCol{&c.CreatedAt})
}

func validateCoupon(c *ladle.Coupon) error {
	switch {
	case c.Code == "" || len(c.Code) > 40:
		return invalid("code", "must be 1–40 characters")
	case ladle.CheckText(c.Code, ladle.CodeText) != "":
		return invalid("code", ladle.CheckText(c.Code, ladle.CodeText))
	case c.Kind != "percent" && c.Kind != "fixed":
		return invalid("kind", `must be "percent" or "fixed"`)
	case c.Kind == "percent" && (c.Value < 1 || c.Value > 100):
		return invalid("value", "must be a whole percent between 1 and 100")
	case c.Kind == "fixed" && c.Value < 1:
		return invalid("value", "must be a positive amount")
	case c.MinSubtotal < 0:
		return invalid("min_subtotal", "must not be negative")
	case c.MaxUses < 0:
		return invalid("max_uses", "must not be negative (0 is unlimited)")
	case c.PerCustomerLimit < 0:
		return invalid("per_customer_limit", "must not be negative (0 is unlimited)")
	case c.ValidFrom != nil && c.ValidUntil != nil && !c.ValidUntil.After(*c.ValidFrom):
		return invalid("valid_until", "must be after valid_from")
	}
	return nil
}

// CreateCoupon implements ladle.CouponStore. Uses starts at 0 whatever c
// says: it is the store's counter.
func (s *Store) CreateCoupon(ctx context.Context, c *ladle.Coupon) error {
	c.Code = strings.ToUpper(strings.TrimSpace(c.Code))
	if err := validateCoupon(c); err != nil {
		return err
	}
	now := ts(s.now())
	return s.withTx(ctx, func(tx *Tx) error {
		if err := restaurantExists(ctx, tx, c.RestaurantID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO coupons (restaurant_id, code, kind, value, min_subtotal, valid_from,
			valid_until, max_uses, per_customer_limit, uses, active, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11)
			ON CONFLICT (restaurant_id, code) DO NOTHING RETURNING id`,
			c.RestaurantID, c.Code, c.Kind, c.Value, int64(c.MinSubtotal), tsPtr(c.ValidFrom), tsPtr(c.ValidUntil),
			c.MaxUses, c.PerCustomerLimit, c.Active, now).Scan(&c.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return conflict("coupon_code_taken", "the code %s is taken", c.Code)
		}
		if err != nil {
			return err
		}
		c.Uses, c.CreatedAt = 0, now
		if c.ValidFrom != nil {
			t := ts(*c.ValidFrom)
			c.ValidFrom = &t
		}
		if c.ValidUntil != nil {
			t := ts(*c.ValidUntil)
			c.ValidUntil = &t
		}
		return nil
	})
}

// Coupons implements ladle.CouponStore: the restaurant's coupons by code.
func (s *Store) Coupons(ctx context.Context, restaurantID int64) ([]ladle.Coupon, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+couponColumns+` FROM coupons WHERE restaurant_id = $1 ORDER BY code`, restaurantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cs := []ladle.Coupon{}
	for rows.Next() {
		var c ladle.Coupon
		if err := scanCoupon(rows, &c); err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, rows.Err()
}

// CouponByCode implements ladle.CouponStore. The code is matched
// case-insensitively (codes are stored upper-cased).
func (s *Store) CouponByCode(ctx context.Context, restaurantID int64, code string) (*ladle.Coupon, error) {
	var c ladle.Coupon
	err := scanCoupon(s.read.QueryRowContext(ctx, `SELECT `+couponColumns+` FROM coupons WHERE restaurant_id = $1 AND code = $2`,
		restaurantID, strings.ToUpper(strings.TrimSpace(code))), &c)
	if err != nil {
		return nil, notFoundIfNoRows(err, "coupon")
	}
	return &c, nil
}

// Redemptions implements ladle.CouponStore: oldest first. A coupon of
// another restaurant is not_found.
func (s *Store) Redemptions(ctx context.Context, restaurantID, couponID int64) ([]ladle.Redemption, error) {
	var rs []ladle.Redemption
	err := s.readTx(ctx, func(tx *Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM coupons WHERE id = $1 AND restaurant_id = $2`, couponID, restaurantID).Scan(&one)
		if err != nil {
			return notFoundIfNoRows(err, "coupon")
		}
		rows, err := tx.QueryContext(ctx, `SELECT coupon_id, order_id, customer_id, amount, created_at
			FROM coupon_redemptions WHERE coupon_id = $1 ORDER BY created_at, order_id`, couponID)
		if err != nil {
			return err
		}
		defer rows.Close()
		rs = []ladle.Redemption{}
		for rows.Next() {
			var r ladle.Redemption
			if err := rows.Scan(&r.CouponID, &r.OrderID, &r.CustomerID, &r.Amount, timeCol{&r.CreatedAt}); err != nil {
				return err
			}
			rs = append(rs, r)
		}
		return rows.Err()
	})
	return rs, err
}

// CouponByID implements ladle.CouponStore.
func (s *Store) CouponByID(ctx context.Context, restaurantID, id int64) (*ladle.Coupon, error) {
	var c ladle.Coupon
	err := scanCoupon(s.read.QueryRowContext(ctx, `SELECT `+couponColumns+` FROM coupons WHERE id = $1 AND restaurant_id = $2`,
		id, restaurantID), &c)
	if err != nil {
		return nil, notFoundIfNoRows(err, "coupon")
	}
	return &c, nil
}

// UpdateCoupon implements ladle.CouponStore. The limit check against the
// uses so far is in the UPDATE itself, so a redemption committing at the
// same time cannot slip under it.
func (s *Store) UpdateCoupon(ctx context.Context, c *ladle.Coupon) error {
	if c.Code == "" {
		c.Code = "X" // the code does not change; validate the rest
	}
	if err := validateCoupon(c); err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *Tx) error {
		err := scanCoupon(tx.QueryRowContext(ctx, `UPDATE coupons SET kind = $3, value = $4, min_subtotal = $5,
			valid_from = $6, valid_until = $7, max_uses = $8, per_customer_limit = $9, active = $10
			WHERE id = $1 AND restaurant_id = $2 AND ($8 = 0 OR uses <= $8)
			RETURNING `+couponColumns,
			c.ID, c.RestaurantID, c.Kind, c.Value, int64(c.MinSubtotal), tsPtr(c.ValidFrom), tsPtr(c.ValidUntil),
			c.MaxUses, c.PerCustomerLimit, c.Active), c)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var uses int
		if err := tx.QueryRowContext(ctx, `SELECT uses FROM coupons WHERE id = $1 AND restaurant_id = $2`,
			c.ID, c.RestaurantID).Scan(&uses); err != nil {
			return notFoundIfNoRows(err, "coupon")
		}
		return invalid("max_uses", "must be at least the "+strconv.Itoa(uses)+" uses so far (0 is unlimited)")
	})
}
