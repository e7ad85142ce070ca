package sqlstore_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

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
func BenchmarkCreateOrder(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		s, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "bench.db"), sqlstore.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchCreateOrder(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		u := testenv.PostgresURL(b)
		s, err := sqlstore.Open(context.Background(), benchSchema(b, u), sqlstore.WithLogger(quiet))
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchCreateOrder(b, s)
	})
}

func benchCreateOrder(b *testing.B, s *sqlstore.Store) {
	if err := s.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	f := storetest.Seed(b, s)
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
