package sqlstore

import (
	"context"

	"github.com/ladle-dev/ladle/internal/payment"
)

// The test card processor's refunds (payment.TestRefundLedger): kept in the
// database so every process shares them, as a real processor's are.

var _ payment.TestRefundLedger = (*Store)(nil)

const sqlTestRefundColumns = `idempotency_key, id, charge_id, amount, currency, failure, created_at`

func scanTestRefund(row interface{ Scan(...any) error }) (payment.TestRefund, error) {
	var r payment.TestRefund
	err := row.Scan(&r.Key, &r.ID, &r.ChargeID, &r.Amount, &r.Currency, &r.Failure, timeCol{&r.Created})
	return r, err
}

// RecordTestRefund implements payment.TestRefundLedger: one conditional
// insert, so of concurrent calls with one key exactly one stores it.
func (s *Store) RecordTestRefund(ctx context.Context, r payment.TestRefund) (payment.TestRefund, bool, error) {
	var stored payment.TestRefund
	var created bool
	err := s.withTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO test_provider_refunds (`+sqlTestRefundColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING`,
			r.Key, r.ID, r.ChargeID, r.Amount, r.Currency, r.Failure, ts(r.Created))
		n, err := rowsAffected(res, err)
		if err != nil {
			return err
		}
		created = n == 1
		stored, err = scanTestRefund(tx.QueryRowContext(ctx, `SELECT `+sqlTestRefundColumns+`
			FROM test_provider_refunds WHERE idempotency_key = $1`, r.Key))
		return err
	})
	return stored, created, err
}

// TestRefunds implements payment.TestRefundLedger.
func (s *Store) TestRefunds(ctx context.Context) ([]payment.TestRefund, error) {
	var out []payment.TestRefund
	err := s.read1(ctx, func(tx *Tx) error {
		var err error
		out, err = scanAll(ctx, tx, func(row interface{ Scan(...any) error }) (*payment.TestRefund, error) {
			r, err := scanTestRefund(row)
			return &r, err
		}, `SELECT `+sqlTestRefundColumns+` FROM test_provider_refunds ORDER BY created_at, id`)
		return err
	})
	return out, err
}
