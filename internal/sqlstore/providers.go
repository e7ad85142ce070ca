package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
)

// What the payment providers keep here: the restaurants' connected
// accounts, disputes, and the test provider's charges (payment.ChargeLog).

// PaymentAccount implements ladle.PaymentStore.
func (s *Store) PaymentAccount(ctx context.Context, restaurantID int64) (ladle.PaymentAccount, error) {
	var a ladle.PaymentAccount
	err := s.read1(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT stripe_account, updated_at FROM payment_accounts WHERE restaurant_id = $1`,
			restaurantID).Scan(&a.StripeAccount, timeCol{&a.UpdatedAt})
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	return a, err
}

// SetPaymentAccount implements ladle.PaymentStore.
func (s *Store) SetPaymentAccount(ctx context.Context, restaurantID int64, a ladle.PaymentAccount, now time.Time) error {
	if a.StripeAccount != "" && !ladle.ValidStripeAccount(a.StripeAccount) {
		return invalid("stripe_account", "must be a Stripe account id such as acct_1A2b3C, or empty")
	}
	return s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO payment_accounts (restaurant_id, stripe_account, updated_at)
			SELECT id, $2, $3 FROM restaurants WHERE id = $1
			ON CONFLICT (restaurant_id) DO UPDATE SET stripe_account = excluded.stripe_account, updated_at = excluded.updated_at`,
			restaurantID, a.StripeAccount, ts(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err == nil && n == 0 {
			err = ladle.NotFound("restaurant")
		}
		return err
	})
}

// DisputePayment implements ladle.PaymentStore. The order's attention flag
// moves only if it is not set to disputed already, and the event goes with
// that move, so a repeated dispute notice changes nothing.
func (s *Store) DisputePayment(ctx context.Context, chargeID, reason string, now time.Time) (*ladle.Order, bool, error) {
	if chargeID == "" {
		return nil, false, invalid("charge_id", "is required")
	}
	now = ts(now)
	var o *ladle.Order
	var first bool
	err := s.withTx(ctx, func(tx *Tx) error {
		pay, err := scanPayment(tx.QueryRowContext(ctx, `SELECT `+sqlPaymentColumns+` FROM payments
			WHERE charge_id = $1 AND status = 'captured'`, chargeID))
		if err != nil {
			return notFoundIfNoRows(err, "payment")
		}
		res, err := tx.ExecContext(ctx, `UPDATE orders SET attention = $2, updated_at = $3
			WHERE id = $1 AND attention <> $2`, pay.OrderID, ladle.AttentionDisputed, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if o, err = orderByID(ctx, tx, 0, pay.OrderID); err != nil {
			return err
		}
		if first = n == 1; !first {
			return nil
		}
		pay.FailureReason = reason
		ev, err := newEvent(ladle.EventPaymentDisputed, o.RestaurantID, o.ID, pay, now)
		if err != nil {
			return err
		}
		return insertEvents(ctx, tx, ev)
	})
	if err != nil {
		return nil, false, err
	}
	return o, first, nil
}

const sqlTestChargeColumns = `id, idempotency_key, order_id, restaurant_id, amount, currency, declined, calls, created_at`

func scanTestCharge(row interface{ Scan(...any) error }) (*payment.TestCharge, error) {
	var c payment.TestCharge
	if err := row.Scan(&c.ID, &c.Key, &c.OrderID, &c.RestaurantID, &c.Amount, &c.Currency, &c.Declined, &c.Calls,
		timeCol{&c.Created}); err != nil {
		return nil, err
	}
	return &c, nil
}

// RecordTestCharge implements payment.ChargeLog. The insert and the count
// are one statement each under the key's primary key, so of concurrent
// first calls one inserts and the others count.
func (s *Store) RecordTestCharge(ctx context.Context, c payment.TestCharge) (payment.TestCharge, bool, error) {
	var out *payment.TestCharge
	var first bool
	err := s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO test_charges (`+sqlTestChargeColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) ON CONFLICT (idempotency_key) DO NOTHING`,
			c.ID, c.Key, c.OrderID, c.RestaurantID, c.Amount, c.Currency, c.Declined, ts(c.Created))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		q := `SELECT ` + sqlTestChargeColumns + ` FROM test_charges WHERE idempotency_key = $1`
		if first = n == 1; !first {
			q = `UPDATE test_charges SET calls = calls + 1 WHERE idempotency_key = $1 RETURNING ` + sqlTestChargeColumns
		}
		out, err = scanTestCharge(tx.QueryRowContext(ctx, q, c.Key))
		return err
	})
	if err != nil {
		return payment.TestCharge{}, false, err
	}
	return *out, first, nil
}

// TestCharge implements payment.ChargeLog.
func (s *Store) TestCharge(ctx context.Context, key string) (payment.TestCharge, error) {
	var c *payment.TestCharge
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		c, err = scanTestCharge(tx.QueryRowContext(ctx, `SELECT `+sqlTestChargeColumns+` FROM test_charges
			WHERE idempotency_key = $1`, key))
		return notFoundIfNoRows(err, "charge")
	})
	if err != nil {
		return payment.TestCharge{}, err
	}
	return *c, nil
}

// TestCharges implements payment.ChargeLog.
func (s *Store) TestCharges(ctx context.Context) ([]payment.TestCharge, error) {
	return queryAll(ctx, s, scanTestCharge, `SELECT `+sqlTestChargeColumns+` FROM test_charges ORDER BY created_at, id`)
}

var _ payment.ChargeLog = (*Store)(nil)
