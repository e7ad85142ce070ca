package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) ladle.Store { return openSQLite(t) })
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	pgURL(t)
	storetest.Run(t, func(t *testing.T) ladle.Store { return openPostgres(t) })
}

// openSQLite opens and migrates a store on a fresh file.
func openSQLite(t *testing.T, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	return open(t, "sqlite:"+filepath.Join(t.TempDir(), "ladle.db"), opts...)
}

// openPostgres opens and migrates a store in a fresh schema.
func openPostgres(t *testing.T, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	return open(t, freshSchema(t), opts...)
}

func open(t *testing.T, url string, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	// A small pool: many tests share one PostgreSQL server (max_connections).
	opts = append([]sqlstore.Option{sqlstore.WithLogger(quiet), sqlstore.WithMaxConns(10)}, opts...)
	s, err := sqlstore.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// pgURL returns LADLE_TEST_POSTGRES_URL, or skips the test (fails it under
// LADLE_REQUIRE_SERVICES=1) through testenv.
func pgURL(t *testing.T) string {
	t.Helper()
	return testenv.PostgresURL(t)
}

// quiet drops the store's logs (one "applied migration" per test).
var quiet = slog.New(slog.DiscardHandler)

var (
	adminOnce sync.Once
	adminDB   *sql.DB
	adminErr  error
)

// freshSchema creates a schema with a random name, drops it when the test
// ends, and returns a URL whose search_path selects it (pgx passes URL
// parameters it does not know to the server as run-time settings).
func freshSchema(t *testing.T) string {
	t.Helper()
	base := pgURL(t)
	adminOnce.Do(func() {
		adminDB, adminErr = sql.Open("pgx", base)
		if adminErr == nil {
			adminDB.SetMaxOpenConns(4)
		}
	})
	if adminErr != nil {
		t.Fatal(adminErr)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "ladle_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := adminDB.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := adminDB.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	// synchronous_commit=off: tests need isolation and locking, which it
	// does not change, not durability across a server crash; it spares
	// every commit a WAL flush on a server many tests share.
	return base + sep + "search_path=" + schema + "&synchronous_commit=off"
}
