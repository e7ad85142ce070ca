package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/ladle-dev/ladle"
)

// CreateOrder's statements, in the order it runs them. They are constants so
// a benchmark can replay exactly this sequence (see CreateOrderStatements).
// Under PostgreSQL READ COMMITTED each is correct on its own against
// concurrent orders: the fingerprint claim and the customer upsert wait on
// a concurrent transaction's row and then see its committed outcome; the
// coupon counters are conditional updates re-checked on the latest row
// version. Locks are always taken in the same order (idempotency key,
// fingerprint, customer, coupon, coupon×customer; on SQLite, which has no
// row locks, the restaurant's number counter last), so orders cannot
// deadlock. PostgreSQL takes the number from a sequence, which locks
// nothing.
const (
	// 1. The restaurant, the named coupon, if any, and the hours, in one
	// round trip.
	sqlLoadRestaurantCoupon = `SELECT r.id, r.slug, r.name, r.currency, r.tax_rate_bp, r.time_zone, r.phone, r.address,
		r.menu_version, r.double_opt_in, r.created_at,
		c.id, c.code, c.kind, c.value, c.min_subtotal, c.valid_from, c.valid_until, c.max_uses,
		c.per_customer_limit, c.uses, c.active, c.created_at, h.doc, h.paused_until
	FROM restaurants r LEFT JOIN coupons c ON c.restaurant_id = r.id AND c.code = $2
	LEFT JOIN restaurant_hours h ON h.restaurant_id = r.id
	WHERE r.id = $1`

	// 2. Just the referenced items, each with its groups and modifiers in
	// order: one row per (item, group, modifier). $2 is a JSON array of ids.
	sqlLoadOrderItemsHead = `SELECT i.id, i.category_id, i.name, i.price, i.available,
		g.id, g.name, g.min_choices, g.max_choices, m.id, m.name, m.price
	FROM items i
	LEFT JOIN item_modifier_groups img ON img.item_id = i.id AND img.restaurant_id = i.restaurant_id
	LEFT JOIN modifier_groups g ON g.id = img.group_id
	LEFT JOIN modifiers m ON m.group_id = g.id
	WHERE i.restaurant_id = $1 AND i.id IN (`
	sqlLoadOrderItemsTail = `)
	ORDER BY i.id, img.position, m.position, m.id`
	sqlLoadOrderItemsSQLite   = sqlLoadOrderItemsHead + sqliteIDs + sqlLoadOrderItemsTail
	sqlLoadOrderItemsPostgres = sqlLoadOrderItemsHead + postgresIDs + sqlLoadOrderItemsTail

	// 3. Claim the content fingerprint for the duplicate window: a new row,
	// or take over one at least a window old ($5 = now - window). No row
	// back means a younger order holds it.
	sqlClaimFingerprint = `INSERT INTO order_fingerprints (restaurant_id, fingerprint, order_id, created_at)
	VALUES ($1, $2, $3, $4)
	ON CONFLICT (restaurant_id, fingerprint) DO UPDATE SET order_id = excluded.order_id, created_at = excluded.created_at
	WHERE order_fingerprints.created_at <= $5
	RETURNING order_id`
	// 3b. Only when the claim failed: who holds it.
	sqlDuplicateOf = `SELECT f.order_id, COALESCE(o.status, '') FROM order_fingerprints f
	LEFT JOIN orders o ON o.id = f.order_id
	WHERE f.restaurant_id = $1 AND f.fingerprint = $2`

	// 4. The customer by email. Consent, once given, is not withdrawn by an
	// order that leaves the box unticked (unsubscribing is explicit); a new
	// tick refreshes when it was given. An empty phone keeps the old one.
	// Under double opt-in the tick is $5 false and $8 (pending since) set
	// instead: consent awaits confirmation (campaign.go); a tick without
	// double opt-in is consent at once, and clears anything pending.
	sqlUpsertCustomer = `INSERT INTO customers (restaurant_id, email, name, phone, marketing_opt_in, marketing_opt_in_at, created_at, updated_at, consent_source, consent_pending_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $7, CASE WHEN $5 THEN 'checkout' ELSE '' END, $8)
	ON CONFLICT (restaurant_id, email) DO UPDATE SET
		name = excluded.name,
		phone = CASE WHEN excluded.phone <> '' THEN excluded.phone ELSE customers.phone END,
		marketing_opt_in = customers.marketing_opt_in OR excluded.marketing_opt_in,
		marketing_opt_in_at = CASE WHEN excluded.marketing_opt_in THEN excluded.marketing_opt_in_at ELSE customers.marketing_opt_in_at END,
		consent_source = CASE WHEN excluded.marketing_opt_in THEN excluded.consent_source ELSE customers.consent_source END,
		consent_pending_at = CASE WHEN excluded.marketing_opt_in THEN NULL ELSE COALESCE(excluded.consent_pending_at, customers.consent_pending_at) END,
		updated_at = excluded.updated_at
	RETURNING id`

	// 5. Redeem: one more use if any is left. No row back: exhausted.
	sqlRedeemCoupon = `UPDATE coupons SET uses = uses + 1
	WHERE id = $1 AND (max_uses = 0 OR uses < max_uses) RETURNING uses`
	// 5b. And one more use by this customer if their limit ($3, 0 for none)
	// allows. No row back: this guest has used it up.
	sqlCountCustomerUse = `INSERT INTO coupon_customer_uses (coupon_id, customer_id, uses) VALUES ($1, $2, 1)
	ON CONFLICT (coupon_id, customer_id) DO UPDATE SET uses = coupon_customer_uses.uses + 1
	WHERE $3 = 0 OR coupon_customer_uses.uses < $3
	RETURNING uses`

	// 6. The order, without its number yet (taken last, step 10).
	sqlInsertOrder = `INSERT INTO orders (id, restaurant_id, status, customer_id, customer_name, customer_email, customer_phone,
		fulfillment_type, fulfillment_time, subtotal, discount, tax, tip, total, currency, coupon_code, fingerprint,
		payment_method, payment_status, marketing_opt_in, created_at, updated_at, slot_start, slot_items, ready_estimate)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $21, $22, $23, $24)`
	// 6 on PostgreSQL, sent in one batch after the customer upsert: the
	// customer id is looked up by ($2 restaurant, $5 email), the row the
	// upsert in the same transaction has just written, so the insert need
	// not wait for the upsert's answer. The arguments are sqlInsertOrder's
	// without the customer id.
	sqlInsertOrderPostgres = `INSERT INTO orders (id, restaurant_id, status, customer_id, customer_name, customer_email, customer_phone,
		fulfillment_type, fulfillment_time, subtotal, discount, tax, tip, total, currency, coupon_code, fingerprint,
		payment_method, payment_status, marketing_opt_in, created_at, updated_at, slot_start, slot_items, ready_estimate)
	VALUES ($1, $2, $3, (SELECT id FROM customers WHERE restaurant_id = $2 AND email = $5), $4, $5, $6, $7, $8, $9,
		$10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21, $22, $23)`
	// 7. Its lines, one multi-row insert: this prefix plus one
	// ($1, $n, $n+1, $n+2, $n+3, $n+4) tuple per line ($1 is the order id).
	sqlInsertLines = `INSERT INTO order_lines (order_id, position, item_id, quantity, line_total, line) VALUES `
	// 8. Its payment.
	sqlInsertPayment = `INSERT INTO payments (id, order_id, method, amount, currency, status, token, idempotency_key, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`
	// 8b. The coupon redemption, when a coupon applies.
	sqlInsertRedemption = `INSERT INTO coupon_redemptions (order_id, coupon_id, customer_id, amount, created_at)
	VALUES ($1, $2, $3, $4, $5)`
	// (0. sqlSetRecoveryPoint (idempotency.go), first, when there is a key.)

	// 10. A placed order's number ($1 order, $2 restaurant): on PostgreSQL
	// from the restaurant's sequence, no lock held; on SQLite from the
	// restaurant row's counter, then bumped (sqlBumpOrderNumber).
	sqlAssignNumberPostgres = `UPDATE orders SET number = nextval(format('order_number_%s', $2::bigint)::regclass)
	WHERE id = $1 RETURNING number`
	sqlAssignNumberSQLite = `UPDATE orders SET number = (SELECT next_order_number FROM restaurants WHERE id = $2)
	WHERE id = $1 RETURNING number`
	sqlBumpOrderNumber = `UPDATE restaurants SET next_order_number = next_order_number + 1 WHERE id = $1`
	// 11. sqlInsertOutbox (outbox.go): coupon.redeemed and/or order.placed,
	// one multi-row insert, after the number because order.placed carries it.
)

// Statement is one named SQL statement.
type Statement struct {
	Name string
	SQL  string
}

// CreateOrderStatements returns CreateOrder's statements for the dialect
// ("sqlite" or "postgres") in the order it runs them, for benchmarks that
// replay the same SQL outside Go (pgbench). The lines and outbox inserts
// are shown with one tuple; CreateOrder adds one per line or event.
func CreateOrderStatements(dialect string) []Statement {
	items, numberSQL := sqlLoadOrderItemsSQLite, sqlAssignNumberSQLite
	if dialect == dialectPostgres.name {
		items, numberSQL = sqlLoadOrderItemsPostgres, sqlAssignNumberPostgres
	}
	return []Statement{
		{"set_recovery_point", sqlSetRecoveryPoint},
		{"load_restaurant_coupon", sqlLoadRestaurantCoupon},
		{"load_order_items", items},
		{"claim_fingerprint", sqlClaimFingerprint},
		{"upsert_customer", sqlUpsertCustomer},
		{"redeem_coupon", sqlRedeemCoupon},
		{"count_customer_use", sqlCountCustomerUse},
		{"insert_order", sqlInsertOrder},
		{"insert_lines", sqlInsertLines + tuple(1, 6)},
		{"insert_payment", sqlInsertPayment},
		{"insert_redemption", sqlInsertRedemption},
		{"assign_number", numberSQL},
		{"insert_outbox", sqlInsertOutbox + tuple(1, 6)},
	}
}

// CreateOrder implements ladle.OrderStore.
func (s *Store) CreateOrder(ctx context.Context, in ladle.NewOrder) (*ladle.Order, error) {
	now, err := s.checkNewOrder(in)
	if err != nil {
		return nil, err
	}
	var o *ladle.Order
	err = s.withTx(ctx, func(tx *Tx) error {
		var err error
		o, err = createOrder(ctx, tx, in, now, true, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// checkNewOrder validates CreateOrder's input and returns its time.
func (s *Store) checkNewOrder(in ladle.NewOrder) (time.Time, error) {
	req := in.Request
	if req == nil {
		return time.Time{}, invalid("request", "is required")
	}
	if in.ID == "" || len(in.ID) > 64 {
		return time.Time{}, invalid("id", "must be a pre-generated order id")
	}
	now := in.Now
	if now.IsZero() {
		now = s.now()
	}
	now = ts(now)
	if fields := req.Validate(now); len(fields) > 0 {
		return time.Time{}, &ladle.Error{Kind: ladle.KindInvalid, Code: ladle.CodeValidation, Message: "the order is invalid", Fields: fields}
	}
	return now, nil
}

// createOrder writes the order in tx. setRecovery writes the key's recovery
// point first (under in.Fence); ClaimAndCreateOrder inserts a new key with
// it already set.
//
// pre, when not nil, holds steps 1–2 already read (ClaimAndCreateOrder
// sends them in the claim's batch on PostgreSQL).
func createOrder(ctx context.Context, tx *Tx, in ladle.NewOrder, now time.Time, setRecovery bool, pre *orderPrelude) (*ladle.Order, error) {
	req := in.Request
	email := strings.ToLower(req.Customer.Email)

	// 0: the idempotency key's recovery point, under the creator's fence.
	if in.IdempotencyKey != "" && setRecovery {
		res, err := tx.ExecContext(ctx, sqlSetRecoveryPoint, in.RestaurantID, in.IdempotencyKey, in.ID, in.Fence)
		if n, err := rowsAffected(res, err); err != nil {
			return nil, fmt.Errorf("sqlstore: set recovery point: %w", err)
		} else if n == 0 {
			return nil, ladle.KeyFenced()
		}
	}

	// 1–2: restaurant, coupon, the referenced part of the menu.
	if pre == nil {
		r, coupon, hours, err := loadRestaurantCoupon(ctx, tx, in.RestaurantID, req.CouponCode)
		if err != nil {
			return nil, err
		}
		menu, err := loadOrderMenu(ctx, tx, r, req)
		if err != nil {
			return nil, err
		}
		pre = &orderPrelude{r: r, coupon: coupon, hours: hours, menu: menu}
	} else if pre.err != nil {
		return nil, pre.err
	}
	r, coupon, menu := pre.r, pre.coupon, pre.menu
	priced, err := ladle.Price(menu, r, req, coupon, now)
	if err != nil {
		return nil, err
	}
	// 2b: the hours, and the pickup slot (its lock right after the key's).
	plan, err := planPickup(ctx, tx, pre.hours, r, req, now, true)
	if err != nil {
		return nil, err
	}

	fingerprint := ""
	if !req.ConfirmDuplicate {
		fingerprint = req.Fingerprint(r.ID)
	}
	// The box ticked: consent now, or pending under double opt-in.
	optIn := req.MarketingOptIn && !r.DoubleOptIn
	var optInAt, pendingAt any
	if optIn {
		optInAt = now
	} else if req.MarketingOptIn {
		pendingAt = now
	}
	o := &ladle.Order{
		ID: in.ID, RestaurantID: r.ID,
		Customer:    ladle.CustomerInput{Name: req.Customer.Name, Email: email, Phone: req.Customer.Phone},
		Fulfillment: ladle.FulfillmentInfo{Type: req.Fulfillment.Type, Time: req.PickupTime()},
		Lines:       priced.Lines, CouponCode: "",
		Subtotal: priced.Subtotal, Discount: priced.Discount, Tax: priced.Tax, Tip: priced.Tip, Total: priced.Total,
		Currency: r.Currency, PaymentMethod: req.Payment.Method, MarketingOptIn: req.MarketingOptIn,
		CreatedAt: now, UpdatedAt: now,
	}
	if coupon != nil {
		o.CouponCode = coupon.Code
	}
	if o.Fulfillment.Time != nil {
		t := ts(*o.Fulfillment.Time)
		o.Fulfillment.Time = &t
	}
	var slotItems int
	if !plan.Slot.IsZero() {
		t := ts(plan.Slot)
		o.PickupSlot, slotItems = &t, plan.Items
	}
	if plan.Ready != nil {
		t := ts(*plan.Ready)
		o.ReadyEstimate = &t
	}
	if req.Payment.Method == "card" {
		o.Status, o.PaymentStatus = ladle.StatusPendingPayment, ladle.PaymentPending
	} else {
		o.Status, o.PaymentStatus = ladle.StatusPlaced, ladle.PaymentDueAtPickup
	}
	paymentID, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	orderArgs := []any{o.ID, o.RestaurantID, string(o.Status), nil,
		o.Customer.Name, o.Customer.Email, o.Customer.Phone, o.Fulfillment.Type, tsPtr(o.Fulfillment.Time),
		int64(o.Subtotal), int64(o.Discount), int64(o.Tax), int64(o.Tip), int64(o.Total), o.Currency, o.CouponCode,
		fingerprint, o.PaymentMethod, o.PaymentStatus, o.MarketingOptIn, now,
		tsPtr(o.PickupSlot), slotItems, tsPtr(o.ReadyEstimate)}
	paymentArgs := []any{paymentID.String(), o.ID, o.PaymentMethod, int64(o.Total),
		o.Currency, o.PaymentStatus, req.Payment.Token, ladle.PaymentKey(o.ID), now}
	customerArgs := []any{r.ID, email, req.Customer.Name, req.Customer.Phone, optIn, optInAt, now, pendingAt}

	if tx.batches() && coupon == nil {
		// Steps 3, 4, 6, 7, 8 in one round trip (pgbatch.go).
		if o.CustomerID, err = writeOrderBatch(ctx, tx, in.ID, fingerprint, now, customerArgs, orderArgs, o.Lines, paymentArgs); err != nil {
			return nil, err
		}
	} else {
		// 3: the duplicate window.
		if fingerprint != "" {
			if err := claimFingerprint(ctx, tx, r.ID, fingerprint, in.ID, now); err != nil {
				return nil, err
			}
		}

		// 4: the customer.
		if err := tx.QueryRowContext(ctx, sqlUpsertCustomer, customerArgs...).Scan(&o.CustomerID); err != nil {
			return nil, fmt.Errorf("sqlstore: upsert customer: %w", err)
		}

		// 5: the coupon's limits, atomically.
		if coupon != nil {
			if err := redeemCoupon(ctx, tx, coupon, o.CustomerID); err != nil {
				return nil, err
			}
		}

		// 6–8: order, lines, payment.
		orderArgs[3] = o.CustomerID
		if _, err := tx.ExecContext(ctx, sqlInsertOrder, orderArgs...); err != nil {
			return nil, orderInsertError(tx, o.ID, err)
		}
		if err := insertLines(ctx, tx, o.ID, o.Lines); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, sqlInsertPayment, paymentArgs...); err != nil {
			return nil, fmt.Errorf("sqlstore: insert payment: %w", err)
		}
	}
	customerID := o.CustomerID
	var events []ladle.Event
	if coupon != nil {
		red := ladle.Redemption{CouponID: coupon.ID, OrderID: o.ID, CustomerID: customerID, Amount: o.Discount, CreatedAt: now}
		if _, err := tx.ExecContext(ctx, sqlInsertRedemption, o.ID, coupon.ID, customerID, int64(o.Discount), now); err != nil {
			return nil, fmt.Errorf("sqlstore: insert redemption: %w", err)
		}
		ev, err := newEvent(ladle.EventCouponRedeemed, r.ID, strconv.FormatInt(coupon.ID, 10), red, now)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}

	// 10: a placed order's number, then 11: the events that carry it.
	if o.Status == ladle.StatusPlaced {
		if o.Number, err = assignOrderNumber(ctx, tx, r.ID, o.ID); err != nil {
			return nil, err
		}
		ev, err := newEvent(ladle.EventOrderPlaced, r.ID, o.ID, o, now)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	if err := insertEvents(ctx, tx, events...); err != nil {
		return nil, err
	}

	// 12: a complete order's response, stored under the key.
	if in.Respond != nil && in.IdempotencyKey != "" && o.Status == ladle.StatusPlaced {
		status, body := in.Respond(o)
		if err := finishKey(ctx, tx, ladle.KeyLease{RestaurantID: r.ID, Key: in.IdempotencyKey, Fence: in.Fence}, status, body); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// orderInsertError classifies a failed order insert.
func orderInsertError(tx *Tx, orderID string, err error) error {
	if tx.d.isUniqueViolation(err) {
		return conflict("order_exists", "an order with id %s already exists", orderID)
	}
	return fmt.Errorf("sqlstore: insert order: %w", err)
}

// writeOrderBatch sends steps 3 (when fingerprint is set), 4, 6, 7 and 8
// of an order without a coupon as one batch, and returns the customer id.
// The statements and the order they run in are the sequential path's; only
// the order's customer id is looked up by the insert itself. A refused
// fingerprint claim rolls back what ran after it in the batch with the
// transaction.
func writeOrderBatch(ctx context.Context, tx *Tx, orderID, fingerprint string, now time.Time,
	customerArgs, orderArgs []any, lines []ladle.OrderLine, paymentArgs []any) (int64, error) {
	restaurantID := orderArgs[1].(int64)
	linesSQL, linesArgs, err := linesInsert(orderID, lines)
	if err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	if fingerprint != "" {
		b.Queue(sqlClaimFingerprint, restaurantID, fingerprint, orderID, now, now.Add(-ladle.DuplicateWindow))
	}
	b.Queue(sqlUpsertCustomer, customerArgs...)
	b.Queue(sqlInsertOrderPostgres, append(orderArgs[:3:3], orderArgs[4:]...)...)
	b.Queue(linesSQL, linesArgs...)
	b.Queue(sqlInsertPayment, paymentArgs...)
	var customerID int64
	duplicate := false
	err = tx.sendBatch(ctx, b, func(br pgx.BatchResults) error {
		if fingerprint != "" {
			var got string
			err := br.QueryRow().Scan(&got)
			if errors.Is(err, sql.ErrNoRows) {
				duplicate = true
				return nil // told apart below, once the batch is closed
			}
			if err != nil {
				return fmt.Errorf("sqlstore: claim fingerprint: %w", err)
			}
		}
		if err := br.QueryRow().Scan(&customerID); err != nil {
			return fmt.Errorf("sqlstore: upsert customer: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			return orderInsertError(tx, orderID, err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("sqlstore: insert lines: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("sqlstore: insert payment: %w", err)
		}
		return nil
	})
	if duplicate {
		return 0, duplicateOrder(ctx, tx, restaurantID, fingerprint)
	}
	return customerID, err
}

// assignOrderNumber gives a placed order the restaurant's next number.
// PostgreSQL takes it from the restaurant's own sequence (migration 0005):
// no row is locked, so concurrent orders of one restaurant do not queue on
// a counter until commit (a rolled-back placement leaves a gap). SQLite has
// one writer anyway, and keeps a gapless counter on the restaurant row.
func assignOrderNumber(ctx context.Context, tx *Tx, restaurantID int64, orderID string) (int64, error) {
	var n int64
	if err := tx.QueryRowContext(ctx, tx.d.assignNumber, orderID, restaurantID).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlstore: assign order number: %w", err)
	}
	if tx.d == dialectSQLite {
		if _, err := tx.ExecContext(ctx, sqlBumpOrderNumber, restaurantID); err != nil {
			return 0, fmt.Errorf("sqlstore: bump order number: %w", err)
		}
	}
	return n, nil
}

// loadRestaurantCoupon runs step 1. An unknown coupon code is coupon_invalid.
func loadRestaurantCoupon(ctx context.Context, tx *Tx, restaurantID int64, code string) (*ladle.Restaurant, *ladle.Coupon, *ladle.Hours, error) {
	return scanRestaurantCoupon(tx.QueryRowContext(ctx, sqlLoadRestaurantCoupon, restaurantID, code), code)
}

// scanRestaurantCoupon reads step 1's row.
func scanRestaurantCoupon(row interface{ Scan(...any) error }, code string) (*ladle.Restaurant, *ladle.Coupon, *ladle.Hours, error) {
	var r ladle.Restaurant
	var (
		cID, cValue, cMinSubtotal, cMaxUses, cPerCustomer, cUses sql.NullInt64
		cCode, cKind                                             sql.NullString
		cActive                                                  sql.NullBool
		cFrom, cUntil, cCreated                                  *time.Time
		hDoc                                                     sql.NullString
		hPaused                                                  *time.Time
	)
	err := row.Scan(
		&r.ID, &r.Slug, &r.Name, &r.Currency, &r.TaxRateBP, &r.TimeZone, &r.Phone, &r.Address, &r.MenuVersion, &r.DoubleOptIn,
		timeCol{&r.CreatedAt},
		&cID, &cCode, &cKind, &cValue, &cMinSubtotal, nullTimeCol{&cFrom}, nullTimeCol{&cUntil}, &cMaxUses,
		&cPerCustomer, &cUses, &cActive, nullTimeCol{&cCreated}, &hDoc, nullTimeCol{&hPaused})
	if err != nil {
		return nil, nil, nil, notFoundIfNoRows(err, "restaurant")
	}
	hours, err := decodeHours(hDoc, hPaused)
	if err != nil {
		return nil, nil, nil, err
	}
	if code == "" {
		return &r, nil, hours, nil
	}
	if !cID.Valid {
		return nil, nil, nil, &ladle.Error{Kind: ladle.KindConflict, Code: ladle.CodeCouponInvalid,
			Message: "there is no coupon with this code", Fields: map[string]string{"coupon_code": "is not a valid code"}}
	}
	c := &ladle.Coupon{ID: cID.Int64, RestaurantID: r.ID, Code: cCode.String, Kind: cKind.String, Value: cValue.Int64,
		MinSubtotal: ladle.Money(cMinSubtotal.Int64), ValidFrom: cFrom, ValidUntil: cUntil, MaxUses: int(cMaxUses.Int64),
		PerCustomerLimit: int(cPerCustomer.Int64), Uses: int(cUses.Int64), Active: cActive.Bool}
	if cCreated != nil {
		c.CreatedAt = *cCreated
	}
	return &r, c, hours, nil
}

// loadOrderMenu runs step 2: a menu holding only the items the request
// names, enough for ladle.Price (which treats a missing item as unknown).
func loadOrderMenu(ctx context.Context, tx *Tx, r *ladle.Restaurant, req *ladle.OrderRequest) (*ladle.Menu, error) {
	rows, err := tx.QueryContext(ctx, tx.d.loadOrderItems, r.ID, orderItemIDs(req))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: load items: %w", err)
	}
	return scanOrderMenu(rows, r)
}

// orderItemIDs is step 2's argument: the request's item ids.
func orderItemIDs(req *ladle.OrderRequest) string {
	ids := make([]int64, 0, len(req.Lines))
	for _, l := range req.Lines {
		ids = append(ids, l.ItemID)
	}
	return encodeIDs(uniqueIDs(ids))
}

// menuRows is what scanOrderMenu reads: *sql.Rows or pgxRows.
type menuRows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}

// orderPrelude is steps 1–2 read ahead; err is their error.
type orderPrelude struct {
	r      *ladle.Restaurant
	coupon *ladle.Coupon
	hours  *ladle.Hours
	menu   *ladle.Menu
	err    error
}

// scanOrderMenu reads step 2's rows and closes them.
func scanOrderMenu(rows menuRows, r *ladle.Restaurant) (*ladle.Menu, error) {
	defer rows.Close()
	cat := ladle.Category{RestaurantID: r.ID}
	for rows.Next() {
		var it ladle.Item
		var gID, gMin, gMax, mID, mPrice sql.NullInt64
		var gName, mName sql.NullString
		if err := rows.Scan(&it.ID, &it.CategoryID, &it.Name, &it.Price, &it.Available,
			&gID, &gName, &gMin, &gMax, &mID, &mName, &mPrice); err != nil {
			return nil, err
		}
		// Rows arrive grouped by item, then group, then modifier.
		if n := len(cat.Items); n == 0 || cat.Items[n-1].ID != it.ID {
			it.RestaurantID = r.ID
			cat.Items = append(cat.Items, it)
		}
		item := &cat.Items[len(cat.Items)-1]
		if !gID.Valid {
			continue
		}
		if n := len(item.ModifierGroups); n == 0 || item.ModifierGroups[n-1].ID != gID.Int64 {
			item.ModifierGroups = append(item.ModifierGroups, ladle.ModifierGroup{ID: gID.Int64, RestaurantID: r.ID,
				Name: gName.String, Min: int(gMin.Int64), Max: int(gMax.Int64)})
		}
		if mID.Valid {
			g := &item.ModifierGroups[len(item.ModifierGroups)-1]
			g.Modifiers = append(g.Modifiers, ladle.Modifier{ID: mID.Int64, GroupID: gID.Int64, Name: mName.String,
				Price: ladle.Money(mPrice.Int64)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return &ladle.Menu{RestaurantID: r.ID, Slug: r.Slug, Name: r.Name, Currency: r.Currency, Version: r.MenuVersion,
		Categories: []ladle.Category{cat}}, nil
}

// claimFingerprint runs step 3; a younger order with the same content is a
// possible_duplicate naming it.
func claimFingerprint(ctx context.Context, tx *Tx, restaurantID int64, fingerprint, orderID string, now time.Time) error {
	var got string
	err := tx.QueryRowContext(ctx, sqlClaimFingerprint, restaurantID, fingerprint, orderID, now,
		now.Add(-ladle.DuplicateWindow)).Scan(&got)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: claim fingerprint: %w", err)
	}
	return duplicateOrder(ctx, tx, restaurantID, fingerprint)
}

// duplicateOrder is the possible_duplicate error naming the order that
// holds fingerprint (step 3b).
func duplicateOrder(ctx context.Context, tx *Tx, restaurantID int64, fingerprint string) error {
	var existing, status string
	if err := tx.QueryRowContext(ctx, sqlDuplicateOf, restaurantID, fingerprint).Scan(&existing, &status); err != nil {
		return fmt.Errorf("sqlstore: read duplicate: %w", err)
	}
	return &ladle.Error{Kind: ladle.KindConflict, Code: ladle.CodePossibleDuplicate,
		Message: "an order with the same items and contact was placed a moment ago",
		Extra:   map[string]any{"order_id": existing, "status": status}}
}

// redeemCoupon runs step 5.
func redeemCoupon(ctx context.Context, tx *Tx, c *ladle.Coupon, customerID int64) error {
	var uses int
	err := tx.QueryRowContext(ctx, sqlRedeemCoupon, c.ID).Scan(&uses)
	if errors.Is(err, sql.ErrNoRows) {
		return couponExhausted("this coupon has been used up")
	}
	if err != nil {
		return fmt.Errorf("sqlstore: redeem coupon: %w", err)
	}
	err = tx.QueryRowContext(ctx, sqlCountCustomerUse, c.ID, customerID, c.PerCustomerLimit).Scan(&uses)
	if errors.Is(err, sql.ErrNoRows) {
		return couponExhausted("you have already used this coupon")
	}
	if err != nil {
		return fmt.Errorf("sqlstore: count coupon use: %w", err)
	}
	return nil
}

func couponExhausted(msg string) error {
	return &ladle.Error{Kind: ladle.KindConflict, Code: ladle.CodeCouponExhausted, Message: msg,
		Fields: map[string]string{"coupon_code": msg}}
}

// insertLines runs step 7: one statement for all lines.
func insertLines(ctx context.Context, tx *Tx, orderID string, lines []ladle.OrderLine) error {
	q, args, err := linesInsert(orderID, lines)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sqlstore: insert lines: %w", err)
	}
	return nil
}

// linesInsert builds step 7's statement.
func linesInsert(orderID string, lines []ladle.OrderLine) (string, []any, error) {
	var b strings.Builder
	b.WriteString(sqlInsertLines)
	args := make([]any, 1, 1+5*len(lines))
	args[0] = orderID
	for i, l := range lines {
		doc, err := json.Marshal(l)
		if err != nil {
			return "", nil, err
		}
		if i > 0 {
			b.WriteString(", ")
		}
		n := len(args) + 1
		fmt.Fprintf(&b, "($1, $%d, $%d, $%d, $%d, $%d)", n, n+1, n+2, n+3, n+4)
		args = append(args, i, l.ItemID, l.Quantity, int64(l.LineTotal), string(doc))
	}
	return b.String(), args, nil
}

// sqlOrderColumns are the orders columns scanOrder reads.
const sqlOrderColumns = `id, restaurant_id, number, status, customer_id, customer_name, customer_email, customer_phone,
	fulfillment_type, fulfillment_time, subtotal, discount, tax, tip, total, currency, coupon_code,
	payment_method, payment_status, refunded, cancel_reason, attention, marketing_opt_in, created_at, updated_at,
	slot_start, ready_estimate`

// scanOrder reads sqlOrderColumns, after the destinations in first (for
// statements that return more columns before them).
func scanOrder(row interface{ Scan(...any) error }, first ...any) (*ladle.Order, error) {
	var o ladle.Order
	var number sql.NullInt64
	err := row.Scan(append(first, &o.ID, &o.RestaurantID, &number, &o.Status, &o.CustomerID, &o.Customer.Name, &o.Customer.Email,
		&o.Customer.Phone, &o.Fulfillment.Type, nullTimeCol{&o.Fulfillment.Time}, &o.Subtotal, &o.Discount, &o.Tax,
		&o.Tip, &o.Total, &o.Currency, &o.CouponCode, &o.PaymentMethod, &o.PaymentStatus, &o.Refunded, &o.CancelReason,
		&o.Attention, &o.MarketingOptIn, timeCol{&o.CreatedAt}, timeCol{&o.UpdatedAt},
		nullTimeCol{&o.PickupSlot}, nullTimeCol{&o.ReadyEstimate})...)
	if err != nil {
		return nil, err
	}
	o.Number = number.Int64
	o.Lines = []ladle.OrderLine{}
	return &o, nil
}

// orderByID reads one order and its lines; restaurantID 0 means any
// restaurant (the guest path). It is one statement, the lines aggregated
// into a JSON array beside the order's columns: one round trip on
// PostgreSQL instead of two, and, being one statement, a consistent read
// without a transaction around it (Order and RestaurantOrder need none).
func orderByID(ctx context.Context, tx *Tx, restaurantID int64, id string) (*ladle.Order, error) {
	pg := 0
	if tx.d == dialectPostgres {
		pg = 1
	}
	var lines []byte
	var row *sql.Row
	if restaurantID != 0 {
		row = tx.QueryRowContext(ctx, orderByIDQuery[pg][1], id, restaurantID)
	} else {
		row = tx.QueryRowContext(ctx, orderByIDQuery[pg][0], id)
	}
	o, err := scanOrder(row, &lines)
	if err != nil {
		return nil, notFoundIfNoRows(err, "order")
	}
	if err := json.Unmarshal(lines, &o.Lines); err != nil {
		return nil, fmt.Errorf("sqlstore: order %s: bad line documents: %w", o.ID, err)
	}
	for i := range o.Lines {
		if o.Lines[i].Modifiers == nil {
			o.Lines[i].Modifiers = []ladle.LineModifier{}
		}
	}
	return o, nil
}

// orderByIDQuery is orderByID's statement by [0 SQLite, 1 PostgreSQL][1:
// scoped to a restaurant]. SQLite joins the stored line documents (each
// valid JSON, a CHECK says so) into an array as text, without parsing
// them again. An order without lines gets [] (both aggregates give NULL
// over no rows).
var orderByIDQuery = func() (q [2][2]string) {
	lines := [2]string{
		`(SELECT COALESCE('[' || group_concat(l.line, ',' ORDER BY l.position) || ']', '[]') FROM order_lines l WHERE l.order_id = orders.id)`,
		`(SELECT COALESCE(json_agg(l.line ORDER BY l.position), '[]') FROM order_lines l WHERE l.order_id = orders.id)`,
	}
	for pg := range 2 {
		base := `SELECT ` + lines[pg] + `, ` + sqlOrderColumns + ` FROM orders WHERE id = $1`
		q[pg][0], q[pg][1] = base, base+` AND restaurant_id = $2`
	}
	return q
}()

// loadLines fills the orders' lines with one query.
func loadLines(ctx context.Context, tx *Tx, orders []*ladle.Order) error {
	if len(orders) == 0 {
		return nil
	}
	byID := make(map[string]*ladle.Order, len(orders))
	var b strings.Builder
	args := make([]any, 0, len(orders))
	b.WriteString(`SELECT order_id, line FROM order_lines WHERE order_id IN (`)
	for i, o := range orders {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(i+1))
		args = append(args, o.ID)
		byID[o.ID] = o
	}
	b.WriteString(`) ORDER BY order_id, position`)
	rows, err := tx.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var orderID string
		var doc []byte
		if err := rows.Scan(&orderID, &doc); err != nil {
			return err
		}
		var l ladle.OrderLine
		if err := json.Unmarshal(doc, &l); err != nil {
			return fmt.Errorf("sqlstore: order %s: bad line document: %w", orderID, err)
		}
		if l.Modifiers == nil {
			l.Modifiers = []ladle.LineModifier{}
		}
		if o := byID[orderID]; o != nil {
			o.Lines = append(o.Lines, l)
		}
	}
	return rows.Err()
}

// Order implements ladle.OrderStore.
func (s *Store) Order(ctx context.Context, id string) (*ladle.Order, error) {
	var o *ladle.Order
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		o, err = orderByID(ctx, tx, 0, id)
		return err
	})
	return o, err
}

// RestaurantOrder implements ladle.OrderStore.
func (s *Store) RestaurantOrder(ctx context.Context, restaurantID int64, id string) (*ladle.Order, error) {
	if restaurantID == 0 {
		return nil, ladle.NotFound("order")
	}
	var o *ladle.Order
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		o, err = orderByID(ctx, tx, restaurantID, id)
		return err
	})
	return o, err
}

// DefaultOrderLimit and MaxOrderLimit bound Orders.
const (
	DefaultOrderLimit = 200
	MaxOrderLimit     = 1000
)

// Orders implements ladle.OrderStore: newest first (created_at, then id).
func (s *Store) Orders(ctx context.Context, restaurantID int64, f ladle.OrderFilter) ([]ladle.Order, error) {
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []ladle.OrderStatus{ladle.StatusPlaced, ladle.StatusAccepted, ladle.StatusPreparing,
			ladle.StatusReady, ladle.StatusCompleted, ladle.StatusCancelled}
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultOrderLimit
	}
	limit = min(limit, MaxOrderLimit)

	var b strings.Builder
	args := []any{restaurantID}
	b.WriteString(`SELECT ` + sqlOrderColumns + ` FROM orders WHERE restaurant_id = $1`)
	if !f.Since.IsZero() {
		args = append(args, ts(f.Since))
		b.WriteString(` AND created_at >= $` + strconv.Itoa(len(args)))
	}
	b.WriteString(` AND (`)
	if len(f.Statuses) == 0 {
		// The board also shows orders flagged for staff attention, whatever
		// their status (a payment the provider never confirmed).
		b.WriteString(`attention <> '' OR `)
	}
	b.WriteString(`status IN (`)
	for i, st := range statuses {
		if !validStatus(st) {
			return nil, invalid("status", fmt.Sprintf("%q is not an order status", st))
		}
		if i > 0 {
			b.WriteString(", ")
		}
		args = append(args, string(st))
		b.WriteString("$" + strconv.Itoa(len(args)))
	}
	args = append(args, limit)
	b.WriteString(`)) ORDER BY created_at DESC, id DESC LIMIT $` + strconv.Itoa(len(args)))

	return s.queryOrders(ctx, b.String(), args...)
}

// queryOrders runs a query for sqlOrderColumns and loads the orders' lines,
// in one read snapshot: lists (the board, history), which tolerate
// replication lag (lagTx).
func (s *Store) queryOrders(ctx context.Context, q string, args ...any) ([]ladle.Order, error) {
	var out []ladle.Order
	err := s.lagTx(ctx, func(ctx context.Context, tx *Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		var ptrs []*ladle.Order
		for rows.Next() {
			o, err := scanOrder(rows)
			if err != nil {
				rows.Close()
				return err
			}
			ptrs = append(ptrs, o)
		}
		if err := closeRows(rows); err != nil {
			return err
		}
		if err := loadLines(ctx, tx, ptrs); err != nil {
			return err
		}
		out = make([]ladle.Order, len(ptrs))
		for i, o := range ptrs {
			out[i] = *o
		}
		return nil
	})
	return out, err
}

func validStatus(s ladle.OrderStatus) bool {
	switch s {
	case ladle.StatusPendingPayment, ladle.StatusPaymentFailed, ladle.StatusPlaced, ladle.StatusAccepted,
		ladle.StatusPreparing, ladle.StatusReady, ladle.StatusCompleted, ladle.StatusCancelled:
		return true
	}
	return false
}

// SetOrderStatus implements ladle.OrderStore. The current status is read
// with a row lock and the update is conditional on it, so of two concurrent
// moves from the same status exactly one wins and the other is refused.
func (s *Store) SetOrderStatus(ctx context.Context, restaurantID int64, orderID string, to ladle.OrderStatus, reason string, by int64, now time.Time) (*ladle.Order, error) {
	reason = strings.TrimSpace(reason)
	if to == ladle.StatusCancelled && reason == "" {
		return nil, invalid("reason", "is required to cancel an order")
	}
	if len(reason) > 500 {
		return nil, invalid("reason", "must be at most 500 characters")
	}
	if to != ladle.StatusCancelled {
		reason = ""
	}
	now = ts(now)
	var o *ladle.Order
	err := s.withTx(ctx, func(tx *Tx) error {
		var from ladle.OrderStatus
		err := tx.QueryRowContext(ctx, `SELECT status FROM orders WHERE id = $1 AND restaurant_id = $2`+tx.d.forUpdate,
			orderID, restaurantID).Scan(&from)
		if err != nil {
			return notFoundIfNoRows(err, "order")
		}
		refused := &ladle.Error{Kind: ladle.KindConflict, Code: ladle.CodeInvalidTransition,
			Message: fmt.Sprintf("an order cannot move from %s to %s", from, to),
			Extra:   map[string]any{"from": string(from), "to": string(to)}}
		if !ladle.CanTransition(from, to) {
			return refused
		}
		if to == ladle.StatusCancelled {
			if err := releaseSlot(ctx, tx, restaurantID, orderID); err != nil {
				return err
			}
		}
		// status_by names the staff member to the status history trigger
		// (migration 0045), which records the move and clears it.
		var staff any
		if by != 0 {
			staff = by
		}
		res, err := tx.ExecContext(ctx, `UPDATE orders SET status = $3, cancel_reason = $4, updated_at = $5, status_by = $6
			WHERE id = $1 AND status = $2`, orderID, string(from), string(to), reason, now, staff)
		if n, _ := rowsAffected(res, err); err == nil && n == 0 {
			return refused
		}
		if err != nil {
			return err
		}
		if to == ladle.StatusCancelled {
			// A card order's money goes back with it (refunds.go).
			if err := refundOnCancel(ctx, tx, restaurantID, orderID, reason, by, now); err != nil {
				return err
			}
		}
		if o, err = orderByID(ctx, tx, restaurantID, orderID); err != nil {
			return err
		}
		_, err = appendEvent(ctx, tx, ladle.EventOrderStatusChanged, restaurantID, orderID,
			ladle.StatusChange{OrderID: orderID, Number: o.Number, From: from, To: to, Reason: reason, Order: o}, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
