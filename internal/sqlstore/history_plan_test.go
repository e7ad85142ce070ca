package sqlstore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// TestHistoryQueriesUseIndexes asks each database for the plans of the
// history search (every kind of search), the order's status history and
// the report's statements: each must reach orders (and the history table)
// through an index, never by reading the whole table. On PostgreSQL,
// sequential scans are switched off for the session, so a plan that still
// has one has no index to use.
func TestHistoryQueriesUseIndexes(t *testing.T) {
	t.Parallel()
	from := time.Date(2030, 5, 1, 4, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 7)
	after := ladle.OrderCursor{CreatedAt: from.Add(time.Hour), ID: "0190"}
	var statements [][2]any // name, sql + args
	for _, search := range []string{"", "#12", "grace@example.com", "2125550100", "hopper"} {
		q, args, err := searchSQL(1, ladle.OrderQuery{From: from, To: to, Search: search, After: &after,
			Statuses: []ladle.OrderStatus{ladle.StatusPlaced}})
		if err != nil {
			t.Fatal(err)
		}
		statements = append(statements, [2]any{"search " + search, append([]any{q}, args...)})
	}
	statements = append(statements, [2]any{"status history", []any{`SELECT h.from_status FROM order_status_history h
		WHERE h.restaurant_id = $1 AND h.order_id = $2 ORDER BY h.id`, int64(1), "x"}})
	for _, c := range []struct {
		name string
		d    *dialect
	}{{"sqlite", dialectSQLite}, {"postgres", dialectPostgres}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "plan.db")
			explain := "EXPLAIN QUERY PLAN "
			if c.d == dialectPostgres {
				dsn, explain = testenv.PostgresSchema(t), "EXPLAIN "
			}
			s, err := Open(ctx, dsn, WithMaxConns(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			conn, err := s.DB().Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if c.d == dialectPostgres {
				if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
					t.Fatal(err)
				}
			}
			all := append([][2]any{}, statements...)
			slotExpr, nameExpr := slotSQLite, lineNameSQLite
			if c.d == dialectPostgres {
				slotExpr, nameExpr = slotPostgres, lineNamePostgres
			}
			all = append(all,
				[2]any{"report slots", []any{sqlSalesSlotsHead + slotExpr + sqlSalesSlotsTail, int64(1), from, to}},
				[2]any{"report items", []any{sqlTopItemsHead + nameExpr + sqlTopItemsTail, int64(1), from, to, 10}},
				[2]any{"report coupons", []any{sqlCouponUse, int64(1), from, to}})
			for _, st := range all {
				name, q := st[0].(string), st[1].([]any)
				rows, err := conn.QueryContext(ctx, explain+q[0].(string), q[1:]...)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var plan strings.Builder
				cols, _ := rows.Columns()
				for rows.Next() {
					vals := make([]any, len(cols))
					ptrs := make([]any, len(cols))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					if err := rows.Scan(ptrs...); err != nil {
						t.Fatal(err)
					}
					for _, v := range vals {
						switch v := v.(type) {
						case string:
							plan.WriteString(v + " ")
						case []byte:
							plan.WriteString(string(v) + " ")
						}
					}
					plan.WriteString("\n")
				}
				rows.Close()
				p := plan.String()
				t.Logf("%s:\n%s", name, p)
				if strings.HasPrefix(name, "search") && (strings.Contains(p, "TEMP B-TREE FOR") || strings.Contains(p, "Sort Key")) {
					t.Errorf("%s sorts the range instead of reading it in index order:\n%s", name, p)
				}
				bad := strings.Contains(p, "SCAN orders") || strings.Contains(p, "SCAN h\n") || strings.Contains(p, "SCAN order_status_history") ||
					strings.Contains(p, "Seq Scan on orders") || strings.Contains(p, "Seq Scan on order_status_history")
				if bad || !strings.Contains(strings.ToLower(p), "index") {
					t.Errorf("%s reads a whole table:\n%s", name, p)
				}
			}
		})
	}
}
