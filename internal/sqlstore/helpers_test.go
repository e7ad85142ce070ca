package sqlstore_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
)

// queryString runs a one-value query and formats the value.
func queryString(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	var v any
	if err := db.QueryRowContext(bg, q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return format(v)
}

func format(v any) string {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(v)
	}
}

func newOrderID() string { return uuid.Must(uuid.NewV7()).String() }
