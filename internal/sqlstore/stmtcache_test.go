package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
)

// A statement run only by read1 (one statement on the read pool, no
// transaction) is prepared after its first run, as one run in a read
// transaction is: it must not be parsed and planned again on every call.
func TestRead1PreparesItsStatements(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "sqlite:"+filepath.Join(t.TempDir(), "ladle.db"))
	const q = `SELECT 1 + $1 /* read1 only */`
	cached := func() bool {
		s.readStmts.mu.RLock()
		defer s.readStmts.mu.RUnlock()
		return s.readStmts.m[q] != nil
	}
	for i := range 2 {
		var n int
		if err := s.read1(ctx, func(tx *Tx) error { return tx.QueryRowContext(ctx, q, i).Scan(&n) }); err != nil || n != 1+i {
			t.Fatalf("read1: %d, %v", n, err)
		}
		if !cached() {
			t.Fatalf("after %d runs the statement is not prepared", i+1)
		}
	}
}
