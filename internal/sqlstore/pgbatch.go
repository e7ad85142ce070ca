package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// On PostgreSQL a placement's transactions send their statements in pgx
// batches: one pipeline of prepared statements (pgx's statement cache),
// one round trip for all of them, inside the transaction database/sql
// began on the same connection. Only statements whose arguments are known
// before any of them runs go in one batch; a value a later statement needs
// from an earlier one is looked up by that statement itself (the order's
// customer id, see sqlInsertOrderPostgres) or waits for the next batch.
// SQLite runs the same steps one statement at a time (one in-process
// connection makes a statement cheap there).

// batches reports whether tx can send batches (PostgreSQL write
// transactions).
func (tx *Tx) batches() bool { return tx.conn != nil }

// sendBatch sends b in one round trip and hands its results, in queue
// order, to read. The batch is always closed (what read left unread is
// read then); read's error wins over a later statement's.
func (tx *Tx) sendBatch(ctx context.Context, b *pgx.Batch, read func(br pgx.BatchResults) error) error {
	return tx.conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("sqlstore: batch on a %T connection", dc)
		}
		br := sc.Conn().SendBatch(ctx, b)
		err := read(br)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// execResult adapts a batch's command tag to sql.Result for rowsAffected
// and fenced.
type execResult int64

func (r execResult) LastInsertId() (int64, error) {
	return 0, errors.New("sqlstore: no LastInsertId on PostgreSQL")
}
func (r execResult) RowsAffected() (int64, error) { return int64(r), nil }

var _ sql.Result = execResult(0)

// batchExec reads the next result of br as an Exec.
func batchExec(br pgx.BatchResults) (sql.Result, error) {
	tag, err := br.Exec()
	if err != nil {
		return nil, err
	}
	return execResult(tag.RowsAffected()), nil
}

// pgxRows adapts pgx.Rows to the rows scanOrderMenu reads.
type pgxRows struct{ pgx.Rows }

func (r pgxRows) Close() error { r.Rows.Close(); return r.Rows.Err() }
