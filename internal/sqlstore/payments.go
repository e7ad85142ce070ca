package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/ladle-dev/ladle"
)

const sqlPaymentColumns = `id, order_id, method, amount, currency, status, token, charge_id, idempotency_key,
	failure_reason, created_at, updated_at`

func scanPayment(row interface{ Scan(...any) error }) (*ladle.Payment, error) {
	var p ladle.Payment
	err := row.Scan(&p.ID, &p.OrderID, &p.Method, &p.Amount, &p.Currency, &p.Status, &p.Token, &p.ChargeID,
		&p.IdempotencyKey, &p.FailureReason, timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// SettlePayment implements ladle.OrderStore. The payment's move out of
// pending is a conditional UPDATE, so of two concurrent settlements (the
// request and the recovery loop) exactly one applies and the other sees the
// order as the first left it.
func (s *Store) SettlePayment(ctx context.Context, orderID string, res ladle.PaymentResult, now time.Time) (*ladle.Order, error) {
	now = ts(now)
	status, orderStatus := ladle.PaymentDeclined, ladle.StatusPaymentFailed
	if res.Captured {
		status, orderStatus = ladle.PaymentCaptured, ladle.StatusPlaced
		if res.ChargeID == "" {
			return nil, invalid("charge_id", "is required for a captured payment")
		}
	}
	reason := strings.TrimSpace(res.FailureReason)
	if !res.Captured && reason == "" {
		reason = "declined"
	}
	var o *ladle.Order
	err := s.withTx(ctx, func(tx *Tx) error {
		p, err := scanPayment(tx.QueryRowContext(ctx, `UPDATE payments SET status = $2, charge_id = $3, failure_reason = $4, updated_at = $5
			WHERE order_id = $1 AND status = 'pending' RETURNING `+sqlPaymentColumns,
			orderID, status, res.ChargeID, reason, now))
		if errors.Is(err, sql.ErrNoRows) {
			// Not pending (settled already, or pay at pickup): change nothing.
			o, err = orderByID(ctx, tx, 0, orderID)
			return err
		}
		if err != nil {
			return err
		}
		var restaurantID int64
		var fingerprint string
		err = tx.QueryRowContext(ctx, `UPDATE orders SET status = $2, payment_status = $3, updated_at = $4
			WHERE id = $1 AND status = 'pending_payment' RETURNING restaurant_id, fingerprint`,
			orderID, string(orderStatus), status, now).Scan(&restaurantID, &fingerprint)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errors.New("sqlstore: pending payment of an order that is not pending_payment")
			}
			return err
		}
		if !res.Captured {
			if err := releaseOrder(ctx, tx, restaurantID, orderID, fingerprint); err != nil {
				return err
			}
		}
		if o, err = orderByID(ctx, tx, 0, orderID); err != nil {
			return err
		}
		if !res.Captured {
			return nil
		}
		p.Token = "" // the card token stays in the database
		captured, err := newEvent(ladle.EventPaymentCaptured, restaurantID, orderID, p, now)
		if err != nil {
			return err
		}
		placed, err := newEvent(ladle.EventOrderPlaced, restaurantID, orderID, o, now)
		if err != nil {
			return err
		}
		return insertEvents(ctx, tx, captured, placed)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// releaseOrder undoes what a declined order held, so the guest can try again
// with another card: its content fingerprint and its coupon use (overall and
// per customer). It takes row locks in CreateOrder's order (fingerprint,
// then coupon, then coupon×customer), so a decline racing a new order of the
// same content and coupon cannot deadlock with it.
func releaseOrder(ctx context.Context, tx *Tx, restaurantID int64, orderID, fingerprint string) error {
	if fingerprint != "" {
		// Only if this order still holds it: after the window another
		// order may have taken it over.
		if _, err := tx.ExecContext(ctx, `DELETE FROM order_fingerprints
			WHERE restaurant_id = $1 AND fingerprint = $2 AND order_id = $3`, restaurantID, fingerprint, orderID); err != nil {
			return err
		}
	}
	var couponID, customerID int64
	err := tx.QueryRowContext(ctx, `DELETE FROM coupon_redemptions WHERE order_id = $1 RETURNING coupon_id, customer_id`,
		orderID).Scan(&couponID, &customerID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE coupons SET uses = uses - 1 WHERE id = $1 AND uses > 0`, couponID); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE coupon_customer_uses SET uses = uses - 1
		WHERE coupon_id = $1 AND customer_id = $2 AND uses > 0`, couponID, customerID)
	return err
}

// Payments implements ladle.OrderStore: oldest first; not_found if the order
// does not exist.
func (s *Store) Payments(ctx context.Context, orderID string) ([]ladle.Payment, error) {
	var ps []ladle.Payment
	err := s.readTx(ctx, func(tx *Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM orders WHERE id = $1`, orderID).Scan(&one); err != nil {
			return notFoundIfNoRows(err, "order")
		}
		var err error
		ps, err = queryPayments(ctx, tx, `SELECT `+sqlPaymentColumns+` FROM payments WHERE order_id = $1 ORDER BY created_at, id`, orderID)
		return err
	})
	return ps, err
}

// PendingPayments implements ladle.OrderStore.
func (s *Store) PendingPayments(ctx context.Context, before time.Time, limit int) ([]ladle.Payment, error) {
	if limit <= 0 {
		limit = 100
	}
	return queryPayments(ctx, s.reader(), `SELECT `+sqlPaymentColumns+` FROM payments
		WHERE status = 'pending' AND created_at < $1 ORDER BY created_at, id LIMIT $2`, ts(before), limit)
}

func queryPayments(ctx context.Context, tx *Tx, q string, args ...any) ([]ladle.Payment, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ps := []ladle.Payment{}
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, err
		}
		ps = append(ps, *p)
	}
	return ps, rows.Err()
}
