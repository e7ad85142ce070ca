package sqlstore_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

var bg = context.Background()

// dialects runs fn on a fresh SQLite store and, when configured, a fresh
// PostgreSQL one.
func dialects(t *testing.T, fn func(t *testing.T, s *sqlstore.Store)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); fn(t, openSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); pgURL(t); fn(t, openPostgres(t)) })
}

type appliedMigration struct {
	version int
	name    string
	at      string
}

func appliedMigrations(t *testing.T, s *sqlstore.Store) []appliedMigration {
	t.Helper()
	rows, err := s.DB().QueryContext(bg, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ms []appliedMigration
	for rows.Next() {
		var m appliedMigration
		var at any
		if err := rows.Scan(&m.version, &m.name, &at); err != nil {
			t.Fatal(err)
		}
		m.at = format(at)
		ms = append(ms, m)
	}
	return ms
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, s *sqlstore.Store) {
		before := appliedMigrations(t, s)
		if len(before) == 0 || before[0].version != 1 || before[0].name != "0001_core" {
			t.Fatalf("applied = %+v", before)
		}
		for i := 1; i < len(before); i++ {
			if before[i].version <= before[i-1].version {
				t.Fatalf("migrations not applied in order: %+v", before)
			}
		}
		v, err := s.SchemaVersion(bg)
		if err != nil || v != before[len(before)-1].version {
			t.Fatalf("SchemaVersion = %d, %v", v, err)
		}
		storetest.Seed(t, s) // data survives a re-run
		if err := s.Migrate(bg); err != nil {
			t.Fatal(err)
		}
		after := appliedMigrations(t, s)
		if len(after) != len(before) {
			t.Fatalf("second Migrate changed schema_migrations: %+v → %+v", before, after)
		}
		for i := range after {
			if after[i] != before[i] {
				t.Fatalf("second Migrate re-applied %+v (was %+v)", after[i], before[i])
			}
		}
		rs, err := s.Restaurants(bg)
		if err != nil || len(rs) != 2 {
			t.Fatalf("restaurants after re-migrate: %d, %v", len(rs), err)
		}
	})
}

// TestMigrateConcurrently opens several stores on one fresh database and
// migrates them all at once: every Migrate succeeds and each migration is
// applied exactly once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, url string) {
		const n = 6
		stores := make([]*sqlstore.Store, n)
		for i := range stores {
			// On SQLite the other five wait for each migration's write lock
			// in turn: under the race detector on a loaded machine one of
			// them waited past the default 10 s busy timeout (SQLITE_BUSY).
			// What is tested is that each migration applies once.
			s, err := sqlstore.Open(bg, url, sqlstore.WithLogger(quiet), sqlstore.WithBusyTimeout(2*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if v, err := s.SchemaVersion(bg); err != nil || v != 0 {
				t.Fatalf("fresh database at version %d, %v", v, err)
			}
			stores[i] = s
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.Migrate(bg)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Migrate %d: %v", i, err)
			}
		}
		applied := appliedMigrations(t, stores[0])
		seen := map[int]bool{}
		for _, m := range applied {
			if seen[m.version] {
				t.Fatalf("migration %d applied twice", m.version)
			}
			seen[m.version] = true
		}
		storetest.Seed(t, stores[n-1])
	}
	t.Run("postgres", func(t *testing.T) { t.Parallel(); run(t, freshSchema(t)) })
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		run(t, "sqlite:"+filepath.Join(t.TempDir(), "ladle.db"))
	})
}

func TestOpenURLs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, url := range []string{
		"sqlite:" + filepath.Join(dir, "a.db"),
		"sqlite://" + filepath.Join(dir, "b.db"),
		filepath.Join(dir, "nested", "c.db"),
	} {
		s, err := sqlstore.Open(bg, url, sqlstore.WithLogger(quiet))
		if err != nil {
			t.Fatalf("Open(%q): %v", url, err)
		}
		if s.Dialect() != "sqlite" {
			t.Fatalf("Open(%q).Dialect() = %s", url, s.Dialect())
		}
		if err := s.Migrate(bg); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for _, url := range []string{"sqlite::memory:", ":memory:", "sqlite:"} {
		if s, err := sqlstore.Open(bg, url); err == nil {
			s.Close()
			t.Fatalf("Open(%q) accepted an in-memory database", url)
		}
	}
	t.Run("postgres", func(t *testing.T) {
		s, err := sqlstore.Open(bg, testenv.PostgresURL(t), sqlstore.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Dialect() != "postgres" {
			t.Fatalf("Dialect() = %s", s.Dialect())
		}
	})
}

// TestSQLitePragmas checks the durability and integrity settings on both
// SQLite pools.
func TestSQLitePragmas(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, s *sqlstore.Store, wantSync int) {
		t.Helper()
		for _, db := range []struct {
			name string
			q    func(string) string
		}{
			{"write", func(p string) string { return queryString(t, s.DB(), "PRAGMA "+p) }},
			{"read", func(p string) string { return queryString(t, s.ReadDB(), "PRAGMA "+p) }},
		} {
			if got := db.q("journal_mode"); got != "wal" {
				t.Errorf("%s pool journal_mode = %s, want wal", db.name, got)
			}
			if got := db.q("foreign_keys"); got != "1" {
				t.Errorf("%s pool foreign_keys = %s", db.name, got)
			}
			if got := db.q("synchronous"); got != strconv.Itoa(wantSync) {
				t.Errorf("%s pool synchronous = %s, want %d", db.name, got, wantSync)
			}
			if got := db.q("busy_timeout"); got == "0" {
				t.Errorf("%s pool has no busy_timeout", db.name)
			}
		}
		if got := queryString(t, s.ReadDB(), "PRAGMA query_only"); got != "1" {
			t.Errorf("read pool query_only = %s", got)
		}
		if n := s.DB().Stats().MaxOpenConnections; n != 1 {
			t.Errorf("write pool allows %d connections, want 1", n)
		}
	}
	t.Run("default FULL", func(t *testing.T) { check(t, openSQLite(t), 2) })
	t.Run("NORMAL", func(t *testing.T) { check(t, openSQLite(t, sqlstore.WithSQLiteSynchronousNormal()), 1) })
}

// TestTimestamps checks the stored representation and that values with
// sub-microsecond digits come back truncated, in UTC, equal to what the
// store returned.
func TestTimestamps(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, s *sqlstore.Store) {
		f := storetest.Seed(t, s)
		at := time.Date(2031, 1, 2, 3, 4, 5, 678901234, time.FixedZone("EST", -5*3600))
		o, err := s.CreateOrder(bg, ladle.NewOrder{ID: "01900000-0000-7000-8000-000000000001", RestaurantID: f.Restaurant.ID,
			Request: f.Request(), Now: at})
		if err != nil {
			t.Fatal(err)
		}
		want := at.UTC().Truncate(time.Microsecond)
		if o.CreatedAt != want {
			t.Fatalf("CreatedAt = %v, want %v", o.CreatedAt, want)
		}
		got, err := s.Order(bg, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.CreatedAt != want {
			t.Fatalf("read back %v, want %v", got.CreatedAt, want)
		}
		var typ string
		if s.Dialect() == "sqlite" {
			typ = queryString(t, s.DB(), `SELECT typeof(created_at) || ':' || created_at FROM orders WHERE id = $1`, o.ID)
			if wantTyp := "integer:" + strconv.FormatInt(want.UnixMicro(), 10); typ != wantTyp {
				t.Fatalf("stored as %s, want %s", typ, wantTyp)
			}
		} else {
			typ = queryString(t, s.DB(), `SELECT pg_typeof(created_at)::text FROM orders WHERE id = $1`, o.ID)
			if typ != "timestamp with time zone" {
				t.Fatalf("stored as %s", typ)
			}
		}
		// Comparisons inside SQL agree with Go's: one microsecond before
		// the order excludes it, the instant itself includes it.
		for _, c := range []struct {
			since time.Time
			want  int
		}{{want, 1}, {want.Add(time.Microsecond), 0}, {want.Add(-time.Microsecond), 1}} {
			os, err := s.Orders(bg, f.Restaurant.ID, ladle.OrderFilter{Since: c.since})
			if err != nil || len(os) != c.want {
				t.Fatalf("Orders(since %v) = %d orders, %v; want %d", c.since, len(os), err, c.want)
			}
		}
	})
}

// TestReapFingerprints checks what the suite cannot see through the
// interface: old fingerprints are deleted, recent ones kept.
func TestReapFingerprints(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, s *sqlstore.Store) {
		f := storetest.Seed(t, s)
		now := time.Date(2031, 1, 1, 12, 0, 0, 0, time.UTC)
		old := f.Request()
		old.Customer.Email = "old@example.com"
		recent := f.Request()
		for _, c := range []struct {
			req *ladle.OrderRequest
			at  time.Time
		}{{old, now.Add(-ladle.IdempotencyKeyTTL - ladle.DuplicateWindow - time.Second)}, {recent, now.Add(-time.Hour)}} {
			if _, err := s.CreateOrder(bg, ladle.NewOrder{ID: newOrderID(), RestaurantID: f.Restaurant.ID, Request: c.req, Now: c.at}); err != nil {
				t.Fatal(err)
			}
		}
		count := func() string { return queryString(t, s.DB(), `SELECT count(*) FROM order_fingerprints`) }
		if got := count(); got != "2" {
			t.Fatalf("fingerprints = %s", got)
		}
		if _, err := s.ReapIdempotencyKeys(bg, now.Add(-ladle.IdempotencyKeyTTL)); err != nil {
			t.Fatal(err)
		}
		if got := count(); got != "1" {
			t.Fatalf("fingerprints after reap = %s, want 1", got)
		}
	})
}

// TestCreateOrderStatementsPrepare checks that every statement
// CreateOrderStatements hands to benchmarks is valid SQL in its dialect.
func TestCreateOrderStatementsPrepare(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, s *sqlstore.Store) {
		stmts := sqlstore.CreateOrderStatements(s.Dialect())
		if len(stmts) < 10 {
			t.Fatalf("only %d statements", len(stmts))
		}
		for _, st := range stmts {
			p, err := s.DB().PrepareContext(bg, st.SQL)
			if err != nil {
				t.Errorf("%s: %v", st.Name, err)
				continue
			}
			p.Close()
		}
	})
}
