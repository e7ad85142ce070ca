package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ladle-dev/ladle"
)

// Hours, the pause switch and pickup-slot capacity (migration 0040).
const (
	sqlReadHours = `SELECT h.doc, h.paused_until FROM restaurants r
	LEFT JOIN restaurant_hours h ON h.restaurant_id = r.id WHERE r.id = $1`
	sqlSetHours = `INSERT INTO restaurant_hours (restaurant_id, doc, updated_at) VALUES ($1, $2, $3)
	ON CONFLICT (restaurant_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`
	sqlPauseOrdering = `INSERT INTO restaurant_hours (restaurant_id, paused_until, updated_at) VALUES ($1, $2, $3)
	ON CONFLICT (restaurant_id) DO UPDATE SET paused_until = excluded.paused_until, updated_at = excluded.updated_at`

	// Take a slot: one more order (and $3 more items) only while under the
	// caps ($4 orders, $5 items; 0 is none). No row back: the slot is full.
	// On PostgreSQL a conflicting row is locked and the WHERE re-checked on
	// its latest version, so concurrent takers of one slot queue on it and
	// the cap holds; SQLite has one writer.
	sqlTakeSlot = `INSERT INTO pickup_slot_usage (restaurant_id, slot_start, orders, items) VALUES ($1, $2, 1, $3)
	ON CONFLICT (restaurant_id, slot_start) DO UPDATE SET
		orders = pickup_slot_usage.orders + 1, items = pickup_slot_usage.items + excluded.items
	WHERE ($4 = 0 OR pickup_slot_usage.orders < $4) AND ($5 = 0 OR pickup_slot_usage.items + excluded.items <= $5)
	RETURNING orders`
	// Give back what an order took ($2 its id), once: the order's slot is
	// cleared in the same transaction (sqlClearOrderSlot).
	sqlReleaseSlot = `UPDATE pickup_slot_usage SET
		orders = orders - 1, items = items - (SELECT slot_items FROM orders WHERE id = $2)
	WHERE restaurant_id = $1 AND slot_start = (SELECT slot_start FROM orders WHERE id = $2)
		AND orders > 0`
	sqlClearOrderSlot = `UPDATE orders SET slot_start = NULL, slot_items = 0 WHERE id = $1`
	sqlSlotUsage      = `SELECT slot_start, orders, items FROM pickup_slot_usage
	WHERE restaurant_id = $1 AND slot_start >= $2 AND slot_start < $3 AND (orders > 0 OR items > 0)
	ORDER BY slot_start`
)

// decodeHours reads restaurant_hours' columns; no row (doc NULL or ”) is
// ladle.DefaultHours.
func decodeHours(doc sql.NullString, paused *time.Time) (*ladle.Hours, error) {
	h := ladle.DefaultHours()
	if doc.Valid && doc.String != "" {
		if err := json.Unmarshal([]byte(doc.String), h); err != nil {
			return nil, fmt.Errorf("sqlstore: bad hours document: %w", err)
		}
	}
	h.PausedUntil = paused
	return h, nil
}

// Hours implements ladle.HoursStore.
func (s *Store) Hours(ctx context.Context, restaurantID int64) (*ladle.Hours, error) {
	var h *ladle.Hours
	err := s.readTx(ctx, func(tx *Tx) error {
		var err error
		h, err = readHours(ctx, tx, restaurantID)
		return err
	})
	return h, err
}

func readHours(ctx context.Context, tx *Tx, restaurantID int64) (*ladle.Hours, error) {
	var doc sql.NullString
	var paused *time.Time
	if err := tx.QueryRowContext(ctx, sqlReadHours, restaurantID).Scan(&doc, nullTimeCol{&paused}); err != nil {
		return nil, notFoundIfNoRows(err, "restaurant")
	}
	return decodeHours(doc, paused)
}

// SetHours implements ladle.HoursStore.
func (s *Store) SetHours(ctx context.Context, restaurantID int64, h *ladle.Hours, now time.Time) error {
	if h == nil {
		return invalid("hours", "is required")
	}
	doc := *h
	doc.PausedUntil = nil
	if doc.Weekly == nil {
		doc.Weekly = []ladle.OpenRange{}
	}
	if doc.Closures == nil {
		doc.Closures = []ladle.Closure{}
	}
	doc.Normalize()
	if fields := doc.Validate(); len(fields) > 0 {
		return &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation, Message: "the hours are invalid", Fields: fields}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, sqlSetHours, restaurantID, string(b), ts(now))
		return restaurantFK(tx, err)
	})
}

// PauseOrdering implements ladle.HoursStore.
func (s *Store) PauseOrdering(ctx context.Context, restaurantID int64, until *time.Time, now time.Time) error {
	if until != nil && (until.Before(now) || until.After(now.Add(ladle.MaxPauseMinutes*time.Minute))) {
		return invalid("minutes", fmt.Sprintf("a pause must end within %d hours", ladle.MaxPauseMinutes/60))
	}
	return s.withTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, sqlPauseOrdering, restaurantID, tsPtr(until), ts(now))
		return restaurantFK(tx, err)
	})
}

// restaurantFK turns a foreign-key violation on restaurant_id into not_found.
func restaurantFK(tx *Tx, err error) error {
	if err != nil && tx.d.isForeignKeyViolation(err) {
		return ladle.NotFound("restaurant")
	}
	return err
}

// SlotUsage implements ladle.HoursStore.
func (s *Store) SlotUsage(ctx context.Context, restaurantID int64, from, to time.Time) ([]ladle.SlotUsage, error) {
	var out []ladle.SlotUsage
	err := s.readTx(ctx, func(tx *Tx) error {
		var err error
		out, err = slotUsage(ctx, tx, restaurantID, from, to)
		return err
	})
	return out, err
}

func slotUsage(ctx context.Context, tx *Tx, restaurantID int64, from, to time.Time) ([]ladle.SlotUsage, error) {
	rows, err := tx.QueryContext(ctx, sqlSlotUsage, restaurantID, ts(from), ts(to))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: slot usage: %w", err)
	}
	defer rows.Close()
	var out []ladle.SlotUsage
	for rows.Next() {
		var u ladle.SlotUsage
		if err := rows.Scan(timeCol{&u.Start}, &u.Orders, &u.Items); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// planPickup runs CreateOrder's step 2b: the hours decide whether the order
// is taken at all (restaurant_closed, pickup_too_soon), and with capped
// slots the order takes its slot (take) or, for a quote, only looks for one
// with room. No slot with room is slot_full naming the next ones that have
// it; a pickup time sooner than the preparation time allows names them too.
func planPickup(ctx context.Context, tx *Tx, h *ladle.Hours, r *ladle.Restaurant, req *ladle.OrderRequest, now time.Time, take bool) (*ladle.PickupPlan, error) {
	loc := r.Location()
	plan, err := h.Plan(now, req.PickupTime(), req.ItemCount(), loc)
	if e := (*ladle.Error)(nil); errors.As(err, &e) && e.Code == ladle.CodePickupTooSoon {
		next, err := slotsWithRoom(ctx, tx, h, r.ID, loc, now, time.Time{}, req.ItemCount())
		if err != nil {
			return nil, err
		}
		return nil, ladle.WithNextAvailable(e, next)
	}
	if err != nil || len(plan.Candidates) == 0 {
		return plan, err
	}
	if take {
		for _, s := range plan.Candidates {
			var n int
			err := tx.QueryRowContext(ctx, sqlTakeSlot, r.ID, ts(s), plan.Items, h.SlotOrders, h.SlotItems).Scan(&n)
			if err == nil {
				plan.Take(s)
				return plan, nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return nil, fmt.Errorf("sqlstore: take pickup slot: %w", err)
			}
		}
	} else {
		last := plan.Candidates[len(plan.Candidates)-1]
		usage, err := slotUsage(ctx, tx, r.ID, plan.Candidates[0], last.Add(time.Minute))
		if err != nil {
			return nil, err
		}
		used := map[int64]ladle.SlotUsage{}
		for _, u := range usage {
			used[u.Start.UnixMicro()] = u
		}
		for _, s := range plan.Candidates {
			if h.Fits(used[s.UnixMicro()], plan.Items) {
				plan.Take(s)
				return plan, nil
			}
		}
	}
	// Full: name the next slots with room for this order after the ones tried.
	next, err := slotsWithRoom(ctx, tx, h, r.ID, loc, now, plan.Candidates[len(plan.Candidates)-1], plan.Items)
	if err != nil {
		return nil, err
	}
	return nil, ladle.SlotFull(plan, next)
}

// slotsWithRoom lists up to three slots a guest may pick at now (Slots)
// starting after `after`, with room for an order of items items.
func slotsWithRoom(ctx context.Context, tx *Tx, h *ladle.Hours, restaurantID int64, loc *time.Location, now, after time.Time, items int) ([]ladle.PickupSlot, error) {
	horizon := now.Add(ladle.MaxPickupAhead)
	usage, err := slotUsage(ctx, tx, restaurantID, now, horizon)
	if err != nil {
		return nil, err
	}
	var next []ladle.PickupSlot
	for _, s := range h.Slots(now, horizon, loc, usage) {
		u := ladle.SlotUsage{}
		for _, x := range usage {
			if x.Start.Equal(s.Start) {
				u = x
			}
		}
		if s.Start.After(after) && h.Fits(u, items) {
			next = append(next, s)
			if len(next) == 3 {
				break
			}
		}
	}
	return next, nil
}

// releaseSlot gives back the pickup slot an order took (a cancellation, a
// declined payment). It runs once per order: the order's slot is cleared.
func releaseSlot(ctx context.Context, tx *Tx, restaurantID int64, orderID string) error {
	if _, err := tx.ExecContext(ctx, sqlReleaseSlot, restaurantID, orderID); err != nil {
		return fmt.Errorf("sqlstore: release pickup slot: %w", err)
	}
	if _, err := tx.ExecContext(ctx, sqlClearOrderSlot, orderID); err != nil {
		return fmt.Errorf("sqlstore: release pickup slot: %w", err)
	}
	return nil
}

// QuoteOrder implements ladle.OrderStore: CreateOrder's steps 1–2b in a
// read transaction, through the same functions (loadRestaurantCoupon,
// loadOrderMenu, ladle.Price, planPickup), plus a read-only check of the
// coupon's limits.
func (s *Store) QuoteOrder(ctx context.Context, in ladle.NewOrder) (*ladle.Quote, error) {
	req := in.Request
	if req == nil {
		return nil, invalid("request", "is required")
	}
	now := in.Now
	if now.IsZero() {
		now = s.now()
	}
	now = ts(now)
	if fields := req.ValidateQuote(now); len(fields) > 0 {
		return nil, &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation, Message: "the order is invalid", Fields: fields}
	}
	var q *ladle.Quote
	err := s.readTx(ctx, func(tx *Tx) error {
		r, coupon, hours, err := loadRestaurantCoupon(ctx, tx, in.RestaurantID, req.CouponCode)
		if err != nil {
			return err
		}
		menu, err := loadOrderMenu(ctx, tx, r, req)
		if err != nil {
			return err
		}
		priced, err := ladle.Price(menu, r, req, coupon, now)
		if err != nil {
			return err
		}
		plan, err := planPickup(ctx, tx, hours, r, req, now, false)
		if err != nil {
			return err
		}
		if coupon != nil {
			if err := couponLeft(ctx, tx, coupon, req.Customer.Email); err != nil {
				return err
			}
		}
		q = &ladle.Quote{Lines: priced.Lines, Subtotal: priced.Subtotal, Discount: priced.Discount, Tax: priced.Tax,
			Tip: priced.Tip, Total: priced.Total, Currency: r.Currency, ReadyEstimate: plan.Ready}
		if coupon != nil {
			q.CouponCode = coupon.Code
		}
		if !plan.Slot.IsZero() {
			s := plan.Slot
			q.PickupSlot = &s
		}
		return nil
	})
	return q, err
}

// couponLeft is redeemCoupon's check without the redemption: the same
// coupon_exhausted errors, against the current counts.
func couponLeft(ctx context.Context, tx *Tx, c *ladle.Coupon, email string) error {
	if c.MaxUses > 0 && c.Uses >= c.MaxUses {
		return couponExhausted("this coupon has been used up")
	}
	if c.PerCustomerLimit == 0 || email == "" {
		return nil
	}
	var uses int
	err := tx.QueryRowContext(ctx, `SELECT u.uses FROM coupon_customer_uses u
		JOIN customers c ON c.id = u.customer_id
		WHERE u.coupon_id = $1 AND c.restaurant_id = $2 AND c.email = $3`, c.ID, c.RestaurantID, email).Scan(&uses)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlstore: coupon uses: %w", err)
	}
	if uses >= c.PerCustomerLimit {
		return couponExhausted("you have already used this coupon")
	}
	return nil
}
