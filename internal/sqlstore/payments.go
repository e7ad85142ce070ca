package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ladle-dev/ladle"
)

const sqlPaymentColumns = `id, order_id, method, amount, currency, status, token, charge_id, idempotency_key,
	failure_reason, attempts, created_at, updated_at`

func scanPayment(row interface{ Scan(...any) error }) (*ladle.Payment, error) {
	var p ladle.Payment
	err := row.Scan(&p.ID, &p.OrderID, &p.Method, &p.Amount, &p.Currency, &p.Status, &p.Token, &p.ChargeID,
		&p.IdempotencyKey, &p.FailureReason, &p.Attempts, timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// The order's move out of pending_payment ($2 status, $3 payment status,
// $4 now). A capture also gives the order its number (see
// assignOrderNumber): from the restaurant's sequence on PostgreSQL, from
// its counter on SQLite (bumped by sqlBumpOrderNumber).
const (
	sqlSettleOrderHead = `UPDATE orders SET status = $2, payment_status = $3, updated_at = $4`
	sqlSettleOrderTail = `
		WHERE id = $1 AND status = 'pending_payment' RETURNING fingerprint, ` + sqlOrderColumns
	sqlSettleDeclined       = sqlSettleOrderHead + sqlSettleOrderTail
	sqlSettleCapturedPG     = sqlSettleOrderHead + `, number = nextval(format('order_number_%s', restaurant_id)::regclass)` + sqlSettleOrderTail
	sqlSettleCapturedSQLite = sqlSettleOrderHead + `, number = (SELECT next_order_number FROM restaurants r WHERE r.id = orders.restaurant_id)` + sqlSettleOrderTail
	sqlSettlePayment        = `UPDATE payments SET status = $2, charge_id = $3, failure_reason = $4, updated_at = $5, token = ''
		WHERE order_id = $1 AND status = 'pending' RETURNING ` + sqlPaymentColumns
)

// SettlePayment implements ladle.OrderStore. The payment's move out of
// pending is a conditional UPDATE, so of two concurrent settlements (the
// request and the recovery loop) exactly one applies and the other sees the
// order as the first left it. With a lease, the stored response is written
// last under the key's fence: a holder that was taken over gets KeyFenced
// and the whole settlement rolls back.
func (s *Store) SettlePayment(ctx context.Context, st ladle.Settlement) (*ladle.Order, error) {
	now := ts(st.Now)
	if st.Now.IsZero() {
		now = ts(s.now())
	}
	res := st.Result
	if res.Captured && res.ChargeID == "" {
		return nil, invalid("charge_id", "is required for a captured payment")
	}
	var o *ladle.Order
	err := s.withTx(ctx, func(tx *Tx) error {
		var err error
		var events []ladle.Event
		if o, events, err = settle(ctx, tx, st, now); err != nil {
			return err
		}
		if st.Lease == nil || st.Respond == nil {
			return insertEvents(ctx, tx, events...)
		}
		code, body := st.Respond(o)
		if tx.batches() && len(events) > 0 {
			return finishWithEvents(ctx, tx, events, *st.Lease, code, body)
		}
		if err := insertEvents(ctx, tx, events...); err != nil {
			return err
		}
		return finishKey(ctx, tx, *st.Lease, code, body)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// finishWithEvents appends events and stores the key's response under its
// fence in one batch (PostgreSQL).
func finishWithEvents(ctx context.Context, tx *Tx, events []ladle.Event, l ladle.KeyLease, status int, body []byte) error {
	if body == nil {
		body = []byte{} // NULL means "no response yet"
	}
	q, args := outboxInsert(events)
	b := &pgx.Batch{}
	b.Queue(q, args...)
	b.Queue(sqlFinishKey, l.RestaurantID, l.Key, l.Fence, status, body)
	var res sql.Result
	err := tx.sendBatch(ctx, b, func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("sqlstore: append event: %w", err)
		}
		var err error
		res, err = batchExec(br)
		return err
	})
	if err != nil {
		return err
	}
	tx.appended = true
	return fenced(ctx, tx, l, res, nil)
}

// settle moves the order's pending payment and the order itself, in tx,
// and returns the events to append with it. The card token is erased in
// the same statement: once the provider has answered it is never needed
// again.
func settle(ctx context.Context, tx *Tx, st ladle.Settlement, now time.Time) (*ladle.Order, []ladle.Event, error) {
	res := st.Result
	status, orderStatus, settleOrder := ladle.PaymentDeclined, ladle.StatusPaymentFailed, sqlSettleDeclined
	if res.Captured {
		status, orderStatus, settleOrder = ladle.PaymentCaptured, ladle.StatusPlaced, tx.d.settleCaptured
	}
	reason := strings.TrimSpace(res.FailureReason)
	if !res.Captured && reason == "" {
		reason = "declined"
	}
	var o *ladle.Order
	var pay *ladle.Payment
	var fingerprint string
	var payErr, orderErr error
	if tx.batches() {
		// Both moves in one round trip. Each is conditional on its own row
		// (payment pending, order pending_payment), and the two move
		// together, so the order's update applies exactly when the
		// payment's does; if it ever did alone, the transaction rolls back.
		b := &pgx.Batch{}
		b.Queue(sqlSettlePayment, st.OrderID, status, res.ChargeID, reason, now)
		b.Queue(settleOrder, st.OrderID, string(orderStatus), status, now)
		err := tx.sendBatch(ctx, b, func(br pgx.BatchResults) error {
			pay, payErr = scanPayment(br.QueryRow())
			if payErr != nil && !errors.Is(payErr, sql.ErrNoRows) {
				return payErr
			}
			o, orderErr = scanOrder(br.QueryRow(), &fingerprint)
			if orderErr != nil && !errors.Is(orderErr, sql.ErrNoRows) {
				return orderErr
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		if payErr != nil && orderErr == nil {
			return nil, nil, errors.New("sqlstore: order pending_payment whose payment was not pending")
		}
	} else {
		pay, payErr = scanPayment(tx.QueryRowContext(ctx, sqlSettlePayment, st.OrderID, status, res.ChargeID, reason, now))
		if payErr == nil {
			o, orderErr = scanOrder(tx.QueryRowContext(ctx, settleOrder, st.OrderID, string(orderStatus), status, now),
				&fingerprint)
		}
	}
	if errors.Is(payErr, sql.ErrNoRows) {
		// Not pending (settled already, or pay at pickup): change nothing.
		o, err := orderByID(ctx, tx, 0, st.OrderID)
		return o, nil, err
	}
	if payErr != nil {
		return nil, nil, payErr
	}
	if orderErr != nil {
		if errors.Is(orderErr, sql.ErrNoRows) {
			return nil, nil, errors.New("sqlstore: pending payment of an order that is not pending_payment")
		}
		return nil, nil, orderErr
	}
	if st.Lines != nil {
		o.Lines = st.Lines
	} else if err := loadLines(ctx, tx, []*ladle.Order{o}); err != nil {
		return nil, nil, err
	}
	if !res.Captured {
		return o, nil, releaseOrder(ctx, tx, o.RestaurantID, o.ID, fingerprint)
	}
	if tx.d == dialectSQLite {
		if _, err := tx.ExecContext(ctx, sqlBumpOrderNumber, o.RestaurantID); err != nil {
			return nil, nil, fmt.Errorf("sqlstore: bump order number: %w", err)
		}
	}
	captured, err := newEvent(ladle.EventPaymentCaptured, o.RestaurantID, o.ID, pay, now)
	if err != nil {
		return nil, nil, err
	}
	placed, err := newEvent(ladle.EventOrderPlaced, o.RestaurantID, o.ID, o, now)
	if err != nil {
		return nil, nil, err
	}
	return o, []ladle.Event{captured, placed}, nil
}

// releaseOrder undoes what a declined order held, so the guest can try again
// with another card: its pickup slot, its content fingerprint and its coupon
// use (overall and per customer). It takes row locks in CreateOrder's order
// (slot, fingerprint,
// then coupon, then coupon×customer), so a decline racing a new order of the
// same content and coupon cannot deadlock with it.
func releaseOrder(ctx context.Context, tx *Tx, restaurantID int64, orderID, fingerprint string) error {
	if err := releaseSlot(ctx, tx, restaurantID, orderID); err != nil {
		return err
	}
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
func (s *Store) PendingPayments(ctx context.Context, before, now time.Time, limit int) ([]ladle.Payment, error) {
	if limit <= 0 {
		limit = 100
	}
	var ps []ladle.Payment
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		ps, err = queryPayments(ctx, tx, `SELECT `+sqlPaymentColumns+` FROM payments
			WHERE status = 'pending' AND given_up_at IS NULL AND created_at < $1
			AND (next_attempt_at IS NULL OR next_attempt_at <= $2)
			ORDER BY COALESCE(next_attempt_at, created_at), id LIMIT $3`, ts(before), ts(now), limit)
		return err
	})
	return ps, err
}

// PaymentAttempted implements ladle.OrderStore.
func (s *Store) PaymentAttempted(ctx context.Context, paymentID string, next time.Time) error {
	return s.withTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE payments SET attempts = attempts + 1, next_attempt_at = $2
			WHERE id = $1 AND status = 'pending'`, paymentID, ts(next))
		return err
	})
}

// GiveUpPayment implements ladle.OrderStore.
func (s *Store) GiveUpPayment(ctx context.Context, paymentID, reason string, now time.Time) error {
	if reason == "" {
		return invalid("reason", "is required")
	}
	now = ts(now)
	return s.withTx(ctx, func(tx *Tx) error {
		var orderID string
		err := tx.QueryRowContext(ctx, `UPDATE payments SET given_up_at = $2, updated_at = $2
			WHERE id = $1 AND status = 'pending' AND given_up_at IS NULL RETURNING order_id`, paymentID, now).Scan(&orderID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // settled (or given up) meanwhile
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE orders SET attention = $2, updated_at = $3 WHERE id = $1`, orderID, reason, now)
		return err
	})
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
