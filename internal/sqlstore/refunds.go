package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
)

// Refunds (ladle.RefundStore). Every write locks the order row first
// (FOR UPDATE on PostgreSQL; SQLite has one writer), so the bound "at most
// captured minus pending and succeeded refunds" is checked and used in one
// serial step: two refunds racing on one order cannot both fit in what only
// one of them fits in.

const sqlRefundColumns = `id, restaurant_id, order_id, payment_id, charge_id, request_key, amount, currency, status,
	source, reason, lines, attempt, provider_key, provider_refund_id, failure_reason, recoveries, created_by,
	created_at, updated_at`

func scanRefund(row interface{ Scan(...any) error }) (*ladle.Refund, error) {
	var r ladle.Refund
	var lines []byte
	err := row.Scan(&r.ID, &r.RestaurantID, &r.OrderID, &r.PaymentID, &r.ChargeID, &r.RequestKey, &r.Amount,
		&r.Currency, &r.Status, &r.Source, &r.Reason, &lines, &r.Attempt, &r.ProviderKey, &r.ProviderRefundID,
		&r.FailureReason, &r.Recoveries, &r.CreatedBy, timeCol{&r.CreatedAt}, timeCol{&r.UpdatedAt})
	if err != nil {
		return nil, err
	}
	if len(lines) > 0 {
		if err := json.Unmarshal(lines, &r.Lines); err != nil {
			return nil, fmt.Errorf("sqlstore: refund %s: bad lines document: %w", r.ID, err)
		}
	}
	if len(r.Lines) == 0 {
		r.Lines = nil
	}
	return &r, nil
}

func queryRefunds(ctx context.Context, tx *Tx, q string, args ...any) ([]ladle.Refund, error) {
	out, err := scanAll(ctx, tx, scanRefund, q, args...)
	if out == nil && err == nil {
		out = []ladle.Refund{}
	}
	return out, err
}

// scanAll runs a query in tx and scans every row with scan.
func scanAll[T any](ctx context.Context, tx *Tx, scan func(interface{ Scan(...any) error }) (*T, error), q string, args ...any) ([]T, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}

// refundable is what a refund of one order is checked against, read under
// the order's lock.
type refundable struct {
	order    *ladle.Order
	payment  *ladle.Payment // the captured card payment; nil if none
	refunds  []ladle.Refund // every refund of the order
	used     ladle.Money    // pending + succeeded
	lineUsed map[int]int    // position -> quantity in pending + succeeded refunds
}

func (rf *refundable) remaining() ladle.Money {
	if rf.payment == nil {
		return 0
	}
	return rf.payment.Amount - rf.used
}

// lockRefundable locks the order (restaurant-scoped; 0 for any) and reads
// its captured payment and refunds. except is a refund id left out of the
// sums (the one being retried).
func lockRefundable(ctx context.Context, tx *Tx, restaurantID int64, orderID, except string) (*refundable, error) {
	q := `SELECT id FROM orders WHERE id = $1`
	args := []any{orderID}
	if restaurantID != 0 {
		q += ` AND restaurant_id = $2`
		args = append(args, restaurantID)
	}
	var id string
	if err := tx.QueryRowContext(ctx, q+tx.d.forUpdate, args...).Scan(&id); err != nil {
		return nil, notFoundIfNoRows(err, "order")
	}
	o, err := orderByID(ctx, tx, restaurantID, orderID)
	if err != nil {
		return nil, err
	}
	rf := &refundable{order: o, lineUsed: map[int]int{}}
	pays, err := queryPayments(ctx, tx, `SELECT `+sqlPaymentColumns+` FROM payments
		WHERE order_id = $1 AND method = 'card' AND status = 'captured' ORDER BY created_at, id`, orderID)
	if err != nil {
		return nil, err
	}
	if len(pays) > 0 {
		rf.payment = &pays[0]
	}
	if rf.refunds, err = queryRefunds(ctx, tx, `SELECT `+sqlRefundColumns+` FROM refunds
		WHERE order_id = $1 ORDER BY created_at, id`, orderID); err != nil {
		return nil, err
	}
	for _, r := range rf.refunds {
		if r.ID == except || r.Status == ladle.RefundFailed {
			continue
		}
		rf.used += r.Amount
		for _, l := range r.Lines {
			rf.lineUsed[l.Position] += l.Quantity
		}
	}
	return rf, nil
}

func refundExceeds(remaining ladle.Money, format string, args ...any) *ladle.Error {
	e := ladle.Errorf(ladle.KindUnprocessable, ladle.CodeRefundExceeds, format, args...)
	e.Extra = map[string]any{"remaining": int64(max(remaining, 0))}
	return e
}

// priceLines fills the lines' amounts and returns their sum, checking each
// against what is left of its order line.
func (rf *refundable) priceLines(lines []ladle.RefundLine) (ladle.Money, error) {
	var sum ladle.Money
	seen := map[int]bool{}
	for i := range lines {
		l := &lines[i]
		if l.Position < 0 || l.Position >= len(rf.order.Lines) || seen[l.Position] {
			return 0, invalid("lines", fmt.Sprintf("line %d is not a line of the order (or is named twice)", l.Position+1))
		}
		seen[l.Position] = true
		ol := rf.order.Lines[l.Position]
		if l.Quantity <= 0 {
			return 0, invalid("lines", fmt.Sprintf("line %d: the quantity must be at least 1", l.Position+1))
		}
		if left := ol.Quantity - rf.lineUsed[l.Position]; l.Quantity > left {
			return 0, refundExceeds(rf.remaining(), "line %d (%s): only %d of %d left to refund", l.Position+1, ol.Name, max(left, 0), ol.Quantity)
		}
		l.Amount = ladle.LineRefundAmount(rf.order, ol, l.Quantity)
		sum += l.Amount
	}
	return sum, nil
}

// CreateRefund implements ladle.RefundStore.
func (s *Store) CreateRefund(ctx context.Context, in ladle.NewRefund) (*ladle.Refund, bool, error) {
	if in.ID == "" || in.RestaurantID == 0 || in.OrderID == "" {
		return nil, false, errors.New("sqlstore: CreateRefund needs an id, a restaurant and an order")
	}
	if strings.TrimSpace(in.RequestKey) == "" || len(in.RequestKey) > 255 {
		return nil, false, invalid("request_key", "must be 1 to 255 characters")
	}
	var r *ladle.Refund
	var created bool
	err := s.withTx(ctx, func(tx *Tx) error {
		var err error
		r, created, err = createRefund(ctx, tx, in)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return r, created, nil
}

// createRefund is CreateRefund in tx. A cancellation's refund (Source
// cancel, no amount, no lines) is the rest of what was captured; with
// nothing left it returns nil.
func createRefund(ctx context.Context, tx *Tx, in ladle.NewRefund) (*ladle.Refund, bool, error) {
	rf, err := lockRefundable(ctx, tx, in.RestaurantID, in.OrderID, "")
	if err != nil {
		return nil, false, err
	}
	for i := range rf.refunds {
		if rf.refunds[i].RequestKey == in.RequestKey {
			return &rf.refunds[i], false, nil // the same request again
		}
	}
	if rf.payment == nil {
		return nil, false, ladle.Errorf(ladle.KindConflict, ladle.CodeRefundNotRefundable,
			"this order has no captured card payment to refund")
	}
	lines := append([]ladle.RefundLine(nil), in.Lines...)
	amount := in.Amount
	switch {
	case len(lines) > 0 && amount != 0:
		return nil, false, invalid("amount", "give either lines or an amount, not both")
	case len(lines) > 0:
		if amount, err = rf.priceLines(lines); err != nil {
			return nil, false, err
		}
		if amount <= 0 {
			return nil, false, invalid("lines", "the chosen lines were free: nothing to refund")
		}
	case in.Source == ladle.RefundSourceCancel && amount == 0:
		amount = rf.remaining()
		if amount <= 0 {
			return nil, false, nil // refunded in full already
		}
	case amount <= 0:
		return nil, false, invalid("amount", "must be more than zero")
	}
	if amount > rf.remaining() {
		return nil, false, refundExceeds(rf.remaining(), "the refund of %d is more than the %d left to refund (captured %d, refunded or pending %d)",
			amount, rf.remaining(), rf.payment.Amount, rf.used)
	}
	doc, err := json.Marshal(lines)
	if err != nil {
		return nil, false, err
	}
	if lines == nil {
		doc = []byte("[]")
	}
	now := ts(in.Now)
	r, err := scanRefund(tx.QueryRowContext(ctx, `INSERT INTO refunds (id, restaurant_id, order_id, payment_id, charge_id,
		request_key, amount, currency, status, source, reason, lines, attempt, provider_key, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11, 1, $12, $13, $14, $14)
		RETURNING `+sqlRefundColumns,
		in.ID, in.RestaurantID, in.OrderID, rf.payment.ID, rf.payment.ChargeID, in.RequestKey, amount, rf.payment.Currency,
		in.Source, strings.TrimSpace(in.Reason), string(doc), ladle.RefundProviderKey(in.ID, 1), in.CreatedBy, now))
	if err != nil {
		return nil, false, err
	}
	return r, true, nil
}

// refundOnCancel records the full refund of a cancelled card order, in the
// cancellation's transaction (SetOrderStatus): the order cannot end up
// cancelled with its money kept.
func refundOnCancel(ctx context.Context, tx *Tx, restaurantID int64, orderID, reason string, by int64, now time.Time) error {
	var method, status string
	if err := tx.QueryRowContext(ctx, `SELECT payment_method, payment_status FROM orders WHERE id = $1`, orderID).
		Scan(&method, &status); err != nil {
		return err
	}
	if method != "card" || status != ladle.PaymentCaptured {
		return nil
	}
	_, _, err := createRefund(ctx, tx, ladle.NewRefund{ID: newRefundID(), RestaurantID: restaurantID, OrderID: orderID,
		RequestKey: ladle.RefundCancelKey, Source: ladle.RefundSourceCancel, Reason: reason, CreatedBy: by, Now: now})
	return err
}

// SettleRefund implements ladle.RefundStore.
func (s *Store) SettleRefund(ctx context.Context, st ladle.RefundSettlement) (*ladle.Refund, error) {
	if st.Succeeded && st.ProviderRefundID == "" {
		return nil, invalid("provider_refund_id", "is required for a refund that succeeded")
	}
	now := ts(st.Now)
	var r *ladle.Refund
	err := s.withTx(ctx, func(tx *Tx) error {
		var err error
		r, err = settleRefund(ctx, tx, st, now)
		return err
	})
	return r, err
}

func settleRefund(ctx context.Context, tx *Tx, st ladle.RefundSettlement, now time.Time) (*ladle.Refund, error) {
	status, reason := ladle.RefundSucceeded, ""
	if !st.Succeeded {
		status, reason = ladle.RefundFailed, strings.TrimSpace(st.FailureReason)
		if reason == "" {
			reason = "refused by the card processor"
		}
	}
	r, err := scanRefund(tx.QueryRowContext(ctx, `UPDATE refunds SET status = $4, provider_refund_id = $5,
		failure_reason = $6, updated_at = $7, next_attempt_at = NULL
		WHERE restaurant_id = $1 AND id = $2 AND attempt = $3 AND status = 'pending' RETURNING `+sqlRefundColumns,
		st.RestaurantID, st.RefundID, st.Attempt, string(status), st.ProviderRefundID, reason, now))
	if errors.Is(err, sql.ErrNoRows) {
		// Settled already (the request and the recovery loop raced), or
		// retried since: change nothing.
		return refundByID(ctx, tx, st.RestaurantID, st.RefundID)
	}
	if err != nil {
		return nil, err
	}
	if status == ladle.RefundSucceeded {
		return r, refunded(ctx, tx, r, now)
	}
	return r, nil
}

// refunded adds a succeeded refund to its order and appends refund.created.
func refunded(ctx context.Context, tx *Tx, r *ladle.Refund, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE orders SET refunded = refunded + $2, updated_at = $3 WHERE id = $1`,
		r.OrderID, r.Amount, now); err != nil {
		return err
	}
	_, err := appendEvent(ctx, tx, ladle.EventRefundCreated, r.RestaurantID, r.OrderID, r, now)
	return err
}

func refundByID(ctx context.Context, tx *Tx, restaurantID int64, id string) (*ladle.Refund, error) {
	r, err := scanRefund(tx.QueryRowContext(ctx, `SELECT `+sqlRefundColumns+` FROM refunds
		WHERE restaurant_id = $1 AND id = $2`, restaurantID, id))
	if err != nil {
		return nil, notFoundIfNoRows(err, "refund")
	}
	return r, nil
}

// RetryRefund implements ladle.RefundStore.
func (s *Store) RetryRefund(ctx context.Context, restaurantID int64, refundID string, attempt int, now time.Time) (*ladle.Refund, bool, error) {
	now = ts(now)
	var r *ladle.Refund
	var retried bool
	err := s.withTx(ctx, func(tx *Tx) error {
		cur, err := refundByID(ctx, tx, restaurantID, refundID)
		if err != nil {
			return err
		}
		rf, err := lockRefundable(ctx, tx, restaurantID, cur.OrderID, cur.ID)
		if err != nil {
			return err
		}
		if cur, err = refundByID(ctx, tx, restaurantID, refundID); err != nil { // under the lock now
			return err
		}
		if cur.Status != ladle.RefundFailed || cur.Attempt != attempt {
			r = cur // retried already (a double click), or not failed
			return nil
		}
		for _, l := range cur.Lines {
			if left := rf.order.Lines[l.Position].Quantity - rf.lineUsed[l.Position]; l.Quantity > left {
				return refundExceeds(rf.remaining(), "line %d was refunded meanwhile: only %d left", l.Position+1, max(left, 0))
			}
		}
		if cur.Amount > rf.remaining() {
			return refundExceeds(rf.remaining(), "only %d is left to refund now, less than this refund's %d", rf.remaining(), cur.Amount)
		}
		r, err = scanRefund(tx.QueryRowContext(ctx, `UPDATE refunds SET status = 'pending', attempt = $3, provider_key = $4,
			failure_reason = '', recoveries = 0, next_attempt_at = NULL, updated_at = $5
			WHERE restaurant_id = $1 AND id = $2 RETURNING `+sqlRefundColumns,
			restaurantID, refundID, attempt+1, ladle.RefundProviderKey(refundID, attempt+1), now))
		retried = err == nil
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return r, retried, nil
}

// Refunds implements ladle.RefundStore.
func (s *Store) Refunds(ctx context.Context, restaurantID int64, orderID string) ([]ladle.Refund, ladle.RefundTotals, error) {
	var out []ladle.Refund
	var tot ladle.RefundTotals
	err := s.readTx(ctx, func(tx *Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM orders WHERE id = $1 AND restaurant_id = $2`, orderID, restaurantID).
			Scan(&one); err != nil {
			return notFoundIfNoRows(err, "order")
		}
		err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount), 0) FROM payments
			WHERE order_id = $1 AND method = 'card' AND status = 'captured'`, orderID).Scan(&tot.Captured)
		if err != nil {
			return err
		}
		out, err = queryRefunds(ctx, tx, `SELECT `+sqlRefundColumns+` FROM refunds
			WHERE order_id = $1 AND restaurant_id = $2 ORDER BY created_at, id`, orderID, restaurantID)
		return err
	})
	if err != nil {
		return nil, tot, err
	}
	for _, r := range out {
		switch r.Status {
		case ladle.RefundSucceeded:
			tot.Refunded += r.Amount
		case ladle.RefundPending:
			tot.Pending += r.Amount
		}
	}
	tot.Remaining = max(tot.Captured-tot.Refunded-tot.Pending, 0)
	return out, tot, nil
}

// Refund implements ladle.RefundStore.
func (s *Store) Refund(ctx context.Context, restaurantID int64, refundID string) (*ladle.Refund, error) {
	var r *ladle.Refund
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		r, err = refundByID(ctx, tx, restaurantID, refundID)
		return err
	})
	return r, err
}

// PendingRefunds implements ladle.RefundStore.
func (s *Store) PendingRefunds(ctx context.Context, before, now time.Time, limit int) ([]ladle.Refund, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []ladle.Refund
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		out, err = queryRefunds(ctx, tx, `SELECT `+sqlRefundColumns+` FROM refunds
			WHERE status = 'pending' AND updated_at < $1 AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
			ORDER BY COALESCE(next_attempt_at, updated_at), id LIMIT $3`, ts(before), ts(now), limit)
		return err
	})
	return out, err
}

// RefundAttempted implements ladle.RefundStore.
func (s *Store) RefundAttempted(ctx context.Context, refundID string, next time.Time) error {
	return s.withTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE refunds SET recoveries = recoveries + 1, next_attempt_at = $2
			WHERE id = $1 AND status = 'pending'`, refundID, ts(next))
		return err
	})
}

// RecordProviderRefund implements ladle.RefundStore.
func (s *Store) RecordProviderRefund(ctx context.Context, p ladle.ProviderRefund) (*ladle.Refund, bool, error) {
	if p.ChargeID == "" || p.RefundID == "" {
		return nil, false, invalid("refund", "needs the charge and the processor's refund id")
	}
	if p.Amount <= 0 {
		return nil, false, invalid("amount", "must be more than zero")
	}
	now := ts(p.Now)
	var r *ladle.Refund
	var created bool
	err := s.withTx(ctx, func(tx *Tx) error {
		var orderID string
		var restaurantID int64
		err := tx.QueryRowContext(ctx, `SELECT p.order_id, o.restaurant_id FROM payments p JOIN orders o ON o.id = p.order_id
			WHERE p.charge_id = $1 AND p.status = 'captured'`, p.ChargeID).Scan(&orderID, &restaurantID)
		if err != nil {
			return notFoundIfNoRows(err, "charge")
		}
		rf, err := lockRefundable(ctx, tx, restaurantID, orderID, "")
		if err != nil {
			return err
		}
		for i := range rf.refunds {
			if rf.refunds[i].ProviderRefundID == p.RefundID {
				r = &rf.refunds[i] // reported before: no second effect
				return nil
			}
		}
		if p.LadleRefundID != "" {
			for i := range rf.refunds {
				own := &rf.refunds[i]
				if own.ID != p.LadleRefundID || own.Status != ladle.RefundPending {
					continue
				}
				// Our own refund, reported before its call returned.
				r, err = settleRefund(ctx, tx, ladle.RefundSettlement{RestaurantID: restaurantID, RefundID: own.ID,
					Attempt: own.Attempt, Succeeded: true, ProviderRefundID: p.RefundID}, now)
				return err
			}
		}
		id := newRefundID()
		r, err = scanRefund(tx.QueryRowContext(ctx, `INSERT INTO refunds (id, restaurant_id, order_id, payment_id, charge_id,
			request_key, amount, currency, status, source, reason, lines, attempt, provider_key, provider_refund_id,
			created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'succeeded', 'provider', $9, '[]', 1, $6, $10, $11, $11)
			RETURNING `+sqlRefundColumns,
			id, restaurantID, orderID, rf.payment.ID, p.ChargeID, "provider:"+p.RefundID, p.Amount,
			strings.ToUpper(cmp.Or(p.Currency, rf.payment.Currency)), strings.TrimSpace(p.Reason), p.RefundID, now))
		if err != nil {
			return err
		}
		created = true
		return refunded(ctx, tx, r, now)
	})
	if err != nil {
		return nil, false, err
	}
	return r, created, nil
}

func newRefundID() string { return uuid.Must(uuid.NewV7()).String() }
