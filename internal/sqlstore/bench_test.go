package sqlstore_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// BenchmarkCreateOrder measures the hot path, one order per operation, with
// every order a confirmed duplicate of the fixture request (so the duplicate
// window never refuses one) from RunParallel's goroutines: on PostgreSQL
// they queue on the restaurant's order-number row lock as real traffic of
// one restaurant would. Compare with pgbench replaying
// CreateOrderStatements; see bench/ for the side-by-side figure.
//
//	go test -run '^$' -bench CreateOrder ./internal/sqlstore/
func BenchmarkCreateOrder(b *testing.B) { benchEachDialect(b, benchCreateOrder) }

// benchEachDialect runs fn on a fresh SQLite file and on a fresh
// PostgreSQL schema (skipped without LADLE_TEST_POSTGRES_URL), migrated and
// seeded with the store tests' fixture.
func benchEachDialect(b *testing.B, fn func(b *testing.B, s *sqlstore.Store, f *storetest.Fixture)) {
	b.Run("sqlite", func(b *testing.B) {
		s, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"), sqlstore.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s, migrateSeed(b, s))
	})
	b.Run("postgres", func(b *testing.B) {
		u := testenv.PostgresURL(b)
		s, err := sqlstore.Open(context.Background(), benchSchema(b, u), sqlstore.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		fn(b, s, migrateSeed(b, s))
	})
}

// migrateSeed migrates s and seeds it for benchEachDialect.
func migrateSeed(b *testing.B, s *sqlstore.Store) *storetest.Fixture {
	if err := s.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return storetest.Seed(b, s)
}

func benchCreateOrder(b *testing.B, s *sqlstore.Store, f *storetest.Fixture) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := f.Request()
			req.ConfirmDuplicate = true
			if _, err := s.CreateOrder(context.Background(), ladle.NewOrder{ID: newOrderID(),
				RestaurantID: f.Restaurant.ID, Request: req, Now: ladle.Now()}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchSchema is freshSchema for benchmarks, with durable commits (the
// figure must include the WAL flush, as in production).
func benchSchema(b *testing.B, base string) string {
	schema := "ladle_bench_" + newOrderID()[24:]
	admin, err := sqlstore.Open(context.Background(), base, sqlstore.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.DB().Exec("CREATE SCHEMA " + schema); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		a, err := sqlstore.Open(context.Background(), base, sqlstore.WithLogger(quiet))
		if err == nil {
			a.DB().Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// BenchmarkConsentCounts measures the campaigns page's audience counts of
// a restaurant with a million customers (a tenth of them unsubscribed), one
// count per operation.
//
//	go test -run '^$' -bench ConsentCounts -benchtime 20x ./internal/sqlstore/
func BenchmarkConsentCounts(b *testing.B) { benchEachDialect(b, benchConsentCounts) }

func benchConsentCounts(b *testing.B, s *sqlstore.Store, f *storetest.Fixture) {
	ctx := context.Background()
	const n = 1_000_000
	now := time.Now().UTC()
	q := `INSERT INTO customers (restaurant_id, email, name, phone, marketing_opt_in, marketing_opt_in_at, consent_source, created_at, updated_at)
		SELECT $1, 'b' || lpad(g::text, 7, '0') || '@bench.example', 'Guest ' || g, '', g % 3 <> 0, $3, 'import', $3, $3
		FROM generate_series(0, $2 - 1) g`
	sup := `INSERT INTO suppressions (restaurant_id, email, reason, created_at)
		SELECT $1, 'b' || lpad(g::text, 7, '0') || '@bench.example', 'unsubscribed', $3 FROM generate_series(0, $2 - 1, 10) g`
	if s.Dialect() == "sqlite" {
		q = `WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g + 1 < $2)
		INSERT INTO customers (restaurant_id, email, name, phone, marketing_opt_in, marketing_opt_in_at, consent_source, created_at, updated_at)
		SELECT $1, printf('b%07d@bench.example', g), 'Guest ' || g, '', g % 3 <> 0, $3, 'import', $3, $3 FROM s`
		sup = `WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 10 FROM s WHERE g + 10 < $2)
		INSERT INTO suppressions (restaurant_id, email, reason, created_at)
		SELECT $1, printf('b%07d@bench.example', g), 'unsubscribed', $3 FROM s`
	}
	for _, stmt := range []string{q, sup} {
		if _, err := s.DB().ExecContext(ctx, stmt, f.Restaurant.ID, n, now); err != nil {
			b.Fatal(err)
		}
	}
	if s.Dialect() != "sqlite" {
		if _, err := s.DB().ExecContext(ctx, `VACUUM ANALYZE customers`); err != nil {
			b.Fatal(err)
		}
		if _, err := s.DB().ExecContext(ctx, `VACUUM ANALYZE suppressions`); err != nil {
			b.Fatal(err)
		}
	} else if _, err := s.DB().ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		in, _, err := s.ConsentCounts(ctx, f.Restaurant.ID)
		if err != nil {
			b.Fatal(err)
		}
		if in < n/2 {
			b.Fatalf("opted in %d of %d", in, n)
		}
	}
}

// BenchmarkRestaurantOrder measures reading one order with its lines, as
// the email worker does for every receipt and a guest's status page does
// on every load, one read per operation from RunParallel's goroutines.
//
//	go test -run '^$' -bench RestaurantOrder ./internal/sqlstore/
func BenchmarkRestaurantOrder(b *testing.B) { benchEachDialect(b, benchRestaurantOrder) }

func benchRestaurantOrder(b *testing.B, s *sqlstore.Store, f *storetest.Fixture) {
	ctx := context.Background()
	o, err := s.CreateOrder(ctx, ladle.NewOrder{ID: newOrderID(), RestaurantID: f.Restaurant.ID, Request: f.Request(), Now: ladle.Now()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			got, err := s.RestaurantOrder(ctx, f.Restaurant.ID, o.ID)
			if err != nil {
				b.Errorf("RestaurantOrder: %v", err)
				return
			}
			if len(got.Lines) != len(o.Lines) {
				b.Errorf("RestaurantOrder: %d lines, want %d", len(got.Lines), len(o.Lines))
				return
			}
		}
	})
}
