package testenv_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/testenv"
)

// TestPostgresReplica: a row written on the primary of the private pair is
// read on its streaming replica, which refuses writes.
func TestPostgresReplica(t *testing.T) {
	t.Parallel()
	p := testenv.PostgresReplica(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pdb, _ := sql.Open("pgx", p.PrimaryURL)
	defer pdb.Close()
	rdb, _ := sql.Open("pgx", p.ReplicaURL)
	defer rdb.Close()
	if _, err := pdb.ExecContext(ctx, `CREATE TABLE t (v text); INSERT INTO t VALUES ('hello')`); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := rdb.QueryRowContext(ctx, `SELECT v FROM t`).Scan(&v); err != nil || v != "hello" {
		t.Fatalf("replica read %q, %v", v, err)
	}
	if _, err := rdb.ExecContext(ctx, `INSERT INTO t VALUES ('no')`); err == nil {
		t.Fatal("the replica took a write")
	}
}
