package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ladle-dev/ladle"
)

// History: the staff's search over past orders, an order's status history
// and emails, and the sales report's aggregates (ladle.HistoryStore). Every
// statement is scoped by restaurant_id and reads through an index: a date
// range through orders_restaurant_created (in its order since migration
// 0046, so a page is read from the index without a sort), an email through customers'
// (restaurant_id, email) and orders_customer, a number through
// (restaurant_id, number), a history through order_status_history_order
// (migration 0045).

// Page sizes of SearchOrders.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 500
)

// SearchOrders implements ladle.HistoryStore.
func (s *Store) SearchOrders(ctx context.Context, restaurantID int64, q ladle.OrderQuery) ([]ladle.Order, error) {
	query, args, err := searchSQL(restaurantID, q)
	if err != nil {
		return nil, err
	}
	return s.queryOrders(ctx, query, args...)
}

// searchSQL builds SearchOrders' statement.
func searchSQL(restaurantID int64, q ladle.OrderQuery) (string, []any, error) {
	if q.From.IsZero() || q.To.IsZero() || !q.To.After(q.From) {
		return "", nil, invalid("to", "must be after from")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	limit = min(limit, MaxHistoryLimit)

	var b strings.Builder
	args := []any{restaurantID, ts(q.From), ts(q.To)}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	b.WriteString(`SELECT ` + sqlOrderColumns + ` FROM orders WHERE restaurant_id = $1 AND created_at >= $2 AND created_at < $3`)
	if q.After != nil {
		c := arg(ts(q.After.CreatedAt))
		// A row value, so the cursor is a bound of the index scan.
		b.WriteString(` AND (created_at, id) < (` + c + `, ` + arg(q.After.ID) + `)`)
	}
	if len(q.Statuses) > 0 {
		b.WriteString(` AND status IN (`)
		for i, st := range q.Statuses {
			if !validStatus(st) {
				return "", nil, invalid("status", fmt.Sprintf("%q is not an order status", st))
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(arg(string(st)))
		}
		b.WriteString(`)`)
	}
	if search := strings.TrimSpace(q.Search); search != "" {
		if len(search) > 200 {
			return "", nil, invalid("q", "must be at most 200 characters")
		}
		switch kind, val := searchKind(search); kind {
		case "number":
			b.WriteString(` AND number = ` + arg(val))
		case "email":
			b.WriteString(` AND customer_id IN (SELECT id FROM customers WHERE restaurant_id = $1 AND email = ` + arg(val) + `)`)
		case "phone":
			// Numbers are stored as digits with an optional + (checkout
			// normalizes them), so the typed digits are a substring.
			digits, _ := val.(string)
			b.WriteString(` AND customer_phone LIKE ` + arg("%"+digits+"%"))
		default:
			name, _ := val.(string)
			b.WriteString(` AND lower(customer_name) LIKE ` + arg("%"+likeEscape(strings.ToLower(name))+"%") + ` ESCAPE '\'`)
		}
	}
	b.WriteString(` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit))
	return b.String(), args, nil
}

// searchKind tells what a history search is: "number" (#1234, or a number
// of at most 6 digits), "email" (holds an @), "phone" (7 or more digits
// among phone characters) or "name"; val is what to match.
func searchKind(q string) (kind string, val any) {
	if n, err := strconv.ParseInt(strings.TrimPrefix(q, "#"), 10, 64); err == nil && n > 0 &&
		(strings.HasPrefix(q, "#") || len(q) <= 6) {
		return "number", n
	}
	if strings.Contains(q, "@") {
		return "email", strings.ToLower(q)
	}
	digits, phoneLike := make([]rune, 0, len(q)), true
	for _, r := range q {
		switch {
		case unicode.IsDigit(r) && r < 128:
			digits = append(digits, r)
		case strings.ContainsRune(" +-().", r):
		default:
			phoneLike = false
		}
	}
	if phoneLike && len(digits) >= 7 {
		return "phone", string(digits)
	}
	return "name", q
}

// likeEscape escapes LIKE's wildcards for ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// OrderHistory implements ladle.HistoryStore.
func (s *Store) OrderHistory(ctx context.Context, restaurantID int64, orderID string) ([]ladle.StatusEntry, error) {
	var out []ladle.StatusEntry
	err := s.readTx(ctx, func(tx *Tx) error {
		var status ladle.OrderStatus
		var created time.Time
		err := tx.QueryRowContext(ctx, `SELECT status, created_at FROM orders WHERE id = $1 AND restaurant_id = $2`,
			orderID, restaurantID).Scan(&status, timeCol{&created})
		if err != nil {
			return notFoundIfNoRows(err, "order")
		}
		rows, err := tx.QueryContext(ctx, `SELECT h.from_status, h.to_status, COALESCE(h.user_id, 0), COALESCE(u.name, ''),
			h.reason, h.created_at
			FROM order_status_history h LEFT JOIN users u ON u.id = h.user_id
			WHERE h.restaurant_id = $1 AND h.order_id = $2 ORDER BY h.id`, restaurantID, orderID)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = []ladle.StatusEntry{{To: status, At: created}}
		for rows.Next() {
			var e ladle.StatusEntry
			if err := rows.Scan(&e.From, &e.To, &e.UserID, &e.UserName, &e.Reason, timeCol{&e.At}); err != nil {
				return err
			}
			if len(out) == 1 {
				out[0].To = e.From // created as the first change's from
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// The report's statements. $1 restaurant, $2 from, $3 to. A quarter hour
// is 900 s: SQLite keeps created_at as microseconds, PostgreSQL as
// timestamptz.
const (
	sqlSalesSlotsHead = `SELECT `
	sqlSalesSlotsTail = ` AS slot,
		CAST(SUM(CASE WHEN status <> 'cancelled' THEN 1 ELSE 0 END) AS BIGINT),
		CAST(SUM(CASE WHEN status <> 'cancelled' THEN total ELSE 0 END) AS BIGINT),
		CAST(SUM(CASE WHEN status <> 'cancelled' THEN discount ELSE 0 END) AS BIGINT),
		CAST(SUM(CASE WHEN status <> 'cancelled' THEN tax ELSE 0 END) AS BIGINT),
		CAST(SUM(CASE WHEN status <> 'cancelled' THEN tip ELSE 0 END) AS BIGINT),
		CAST(SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END) AS BIGINT)
	FROM orders WHERE restaurant_id = $1 AND created_at >= $2 AND created_at < $3
		AND status IN ('placed', 'accepted', 'preparing', 'ready', 'completed', 'cancelled')
	GROUP BY slot ORDER BY slot`
	slotSQLite   = `created_at / 900000000`
	slotPostgres = `floor(extract(epoch FROM created_at) / 900)::bigint`

	// Refunds count when they succeeded: a succeeded refund never changes
	// again, so its updated_at is that moment. A cancelled order's refunds
	// are left out, as the order is.
	sqlRefundSlotsHead = `SELECT `
	sqlRefundSlotsTail = ` AS slot, CAST(SUM(r.amount) AS BIGINT)
	FROM refunds r JOIN orders o ON o.id = r.order_id
	WHERE r.restaurant_id = $1 AND r.status = 'succeeded' AND r.updated_at >= $2 AND r.updated_at < $3
		AND o.status <> 'cancelled'
	GROUP BY slot ORDER BY slot`

	sqlTopItemsHead = `SELECT l.item_id, MAX(`
	sqlTopItemsTail = `), CAST(SUM(l.quantity) AS BIGINT), CAST(SUM(l.line_total) AS BIGINT)
	FROM orders o JOIN order_lines l ON l.order_id = o.id
	WHERE o.restaurant_id = $1 AND o.created_at >= $2 AND o.created_at < $3
		AND o.status IN ('placed', 'accepted', 'preparing', 'ready', 'completed')
	GROUP BY l.item_id ORDER BY SUM(l.quantity) DESC, SUM(l.line_total) DESC, l.item_id LIMIT $4`
	lineNameSQLite   = `json_extract(l.line, '$.name')`
	lineNamePostgres = `l.line->>'name'`

	sqlCouponUse = `SELECT coupon_code, COUNT(*), CAST(SUM(discount) AS BIGINT) FROM orders
	WHERE restaurant_id = $1 AND created_at >= $2 AND created_at < $3 AND coupon_code <> ''
		AND status IN ('placed', 'accepted', 'preparing', 'ready', 'completed')
	GROUP BY coupon_code ORDER BY COUNT(*) DESC, coupon_code`
)

// addRefundSlots adds the refunds that succeeded in each quarter hour of
// [from, to) to slots (ordered by start), making slots for quarter hours
// without sales.
func addRefundSlots(ctx context.Context, tx *Tx, slots []ladle.SalesSlot, slotExpr string, restaurantID int64, from, to time.Time) ([]ladle.SalesSlot, error) {
	rows, err := tx.QueryContext(ctx, sqlRefundSlotsHead+slotExpr+sqlRefundSlotsTail, restaurantID, ts(from), ts(to))
	if err != nil {
		return nil, err
	}
	at := make(map[int64]int, len(slots))
	for i, sl := range slots {
		at[sl.Start.Unix()] = i
	}
	for rows.Next() {
		var slot int64
		var amount ladle.Money
		if err := rows.Scan(&slot, &amount); err != nil {
			rows.Close()
			return nil, err
		}
		start := time.Unix(slot*900, 0).UTC()
		if i, ok := at[start.Unix()]; ok {
			slots[i].Refunded += amount
		} else {
			slots = append(slots, ladle.SalesSlot{Start: start, Refunded: amount})
		}
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	slices.SortFunc(slots, func(a, b ladle.SalesSlot) int { return a.Start.Compare(b.Start) })
	return slots, nil
}

// SalesReport implements ladle.HistoryStore. Its four statements read one
// snapshot.
func (s *Store) SalesReport(ctx context.Context, restaurantID int64, from, to time.Time, topItems int) ([]ladle.SalesSlot, []ladle.ItemSales, []ladle.CouponUse, error) {
	if !to.After(from) {
		return nil, nil, nil, invalid("to", "must be after from")
	}
	if topItems <= 0 || topItems > 100 {
		topItems = 10
	}
	slotExpr, nameExpr := slotSQLite, lineNameSQLite
	if s.d == dialectPostgres {
		slotExpr, nameExpr = slotPostgres, lineNamePostgres
	}
	var (
		slots   []ladle.SalesSlot
		items   []ladle.ItemSales
		coupons []ladle.CouponUse
	)
	err := s.readTx(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, sqlSalesSlotsHead+slotExpr+sqlSalesSlotsTail, restaurantID, ts(from), ts(to))
		if err != nil {
			return err
		}
		for rows.Next() {
			var sl ladle.SalesSlot
			var slot int64
			if err := rows.Scan(&slot, &sl.Orders, &sl.Revenue, &sl.Discounts, &sl.Tax, &sl.Tips, &sl.Cancelled); err != nil {
				rows.Close()
				return err
			}
			sl.Start = time.Unix(slot*900, 0).UTC()
			slots = append(slots, sl)
		}
		if err := closeRows(rows); err != nil {
			return err
		}
		if slots, err = addRefundSlots(ctx, tx, slots, strings.ReplaceAll(slotExpr, "created_at", "r.updated_at"), restaurantID, from, to); err != nil {
			return err
		}
		if rows, err = tx.QueryContext(ctx, sqlTopItemsHead+nameExpr+sqlTopItemsTail, restaurantID, ts(from), ts(to), topItems); err != nil {
			return err
		}
		for rows.Next() {
			var it ladle.ItemSales
			var name sql.NullString
			if err := rows.Scan(&it.ItemID, &name, &it.Quantity, &it.Revenue); err != nil {
				rows.Close()
				return err
			}
			it.Name = name.String
			items = append(items, it)
		}
		if err := closeRows(rows); err != nil {
			return err
		}
		if rows, err = tx.QueryContext(ctx, sqlCouponUse, restaurantID, ts(from), ts(to)); err != nil {
			return err
		}
		for rows.Next() {
			var c ladle.CouponUse
			if err := rows.Scan(&c.Code, &c.Orders, &c.Discount); err != nil {
				rows.Close()
				return err
			}
			coupons = append(coupons, c)
		}
		return closeRows(rows)
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return slots, items, coupons, nil
}
