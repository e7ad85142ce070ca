// Package testenv finds the real services tests run against: PostgreSQL,
// Redis, NATS and Chromium. A test that needs one calls the function here; it
// skips when the service is not configured (a laptop with nothing installed),
// and fails instead when LADLE_REQUIRE_SERVICES=1 (CI), so CI can never pass
// by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Required reports whether LADLE_REQUIRE_SERVICES=1: every test must run,
// none may skip (CI).
func Required() bool { return os.Getenv("LADLE_REQUIRE_SERVICES") == "1" }

// Skip is the one way a test skips: it skips with the reason, except under
// LADLE_REQUIRE_SERVICES=1, where it fails instead. Tests never call
// t.Skip themselves (make test lists every skip, and fails on one under
// LADLE_REQUIRE_SERVICES=1: see cmd/testreport).
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf("cannot run: "+format+" (LADLE_REQUIRE_SERVICES=1: no test may skip)", args...)
	}
	t.Skipf(format, args...)
}

// Short skips a slow test (a browser, a child process) under go test -short,
// through Skip.
func Short(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		Skip(t, "%s: not run with -short", what)
	}
}

func need(t testing.TB, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		Skip(t, "%s is not set", env)
	}
	return v
}

// PostgresURL returns LADLE_TEST_POSTGRES_URL.
func PostgresURL(t testing.TB) string { return need(t, "LADLE_TEST_POSTGRES_URL") }

// RedisURL returns LADLE_TEST_REDIS_URL.
func RedisURL(t testing.TB) string { return need(t, "LADLE_TEST_REDIS_URL") }

// NATSURL returns LADLE_TEST_NATS_URL.
func NATSURL(t testing.TB) string { return need(t, "LADLE_TEST_NATS_URL") }

// PostgresSchema creates a fresh schema with a random name, drops it when the
// test ends, and returns a URL whose connections use it (search_path), so
// tests running at the same time never see each other's rows.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	base := PostgresURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Chromium returns the path of a Chromium binary, skipping (or failing under
// LADLE_REQUIRE_SERVICES=1) when there is none.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Skip(t, "no chromium binary (chromium, chromium-browser or google-chrome) on PATH")
	return ""
}
