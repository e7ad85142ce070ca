package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle/internal/devcluster"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// TestHelperServe is not a test: it is how the cluster tests run `ladle
// serve` as a separate OS process they can kill (the test binary
// re-executed with LADLE_TEST_HELPER_SERVE=1 and ladle's arguments after
// "--").
func TestHelperServe(t *testing.T) {
	if os.Getenv("LADLE_TEST_HELPER_SERVE") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	err := run(ctx, append([]string{"ladle"}, args...), os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperExec runs ladle as this test binary re-executed (TestHelperServe),
// through env(1), which sets the variable and execs it (same process).
func helperExec(t *testing.T) []string {
	env, err := exec.LookPath("env")
	if err != nil {
		t.Fatal(err)
	}
	return []string{env, "LADLE_TEST_HELPER_SERVE=1", os.Args[0], "-test.run=^TestHelperServe$", "--"}
}

// TestLoopbackCluster: the loopback cluster of `ladle dev cluster`
// (internal/devcluster: a three-node NATS JetStream cluster, the stream at
// R3, PostgreSQL, one API process and two worker processes). A burst of
// orders (LADLE_CLUSTER_EVENTS, default 2,000; 400 with -short; the full
// 20,000 with LADLE_CLUSTER_EVENTS=20000, see README) is committed at once;
// while it drains, one NATS node is shut down and one worker process is
// killed (SIGKILL). Every order gets exactly one receipt (counted in the
// database, at the effect), and the surviving worker's /metrics shows its
// pool rising under the burst and falling back to its minimum after it.
func TestLoopbackCluster(t *testing.T) {
	t.Parallel()
	n := 2000
	if testing.Short() {
		n = 400
	}
	if v, err := strconv.Atoi(os.Getenv("LADLE_CLUSTER_EVENTS")); err == nil && v > 0 {
		n = v
	}
	dbURL := testenv.PostgresSchema(t)
	c, err := devcluster.Start(devcluster.Config{DatabaseURL: dbURL, Dir: t.TempDir(), Exec: helperExec(t),
		APIs: 1, Workers: 2,
		WorkerArgs: []string{"--worker-min", "1", "--worker-max", "16", "--worker-scale-down-window", "3s"},
		Env:        map[string]string{"LADLE_ACK_WAIT": "2s", "LADLE_LOG_LEVEL": "error"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(30 * time.Second) })
	w1, w2 := c.Workers[0], c.Workers[1]

	ctx := context.Background()
	st, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// The burst: n orders committed as fast as 8 clients can, straight
	// into the database (each with its outbox event): the API process's
	// relay publishes them.
	var placed atomic.Int64
	burstDone := make(chan error, 1)
	go func() { burstDone <- devcluster.Burst(ctx, st, n, 8, &placed) }()

	// Mid-burst: a NATS node goes, then a worker process dies.
	db := sqlDB(t, dbURL)
	sent := func() int {
		var k int
		_ = db.QueryRow(`SELECT count(*) FROM emails WHERE kind = 'receipt' AND status = 'sent'`).Scan(&k)
		return k
	}
	peak := 0
	killedNATS, killedWorker := false, false
	deadline := time.Now().Add(5 * time.Minute)
	if n > 5000 {
		deadline = time.Now().Add(time.Duration(n/20) * time.Second)
	}
	for {
		peak = max(peak, w2.Workers("receipt"))
		done := sent()
		if !killedNATS && done >= n/5 {
			c.NATS.Servers[2].Shutdown() // not the first: the clients list it last
			killedNATS = true
			t.Logf("NATS node n3 shut down at %d receipts", done)
		}
		if !killedWorker && done >= n/3 {
			w1.Kill()
			killedWorker = true
			t.Logf("worker 1 killed at %d receipts", done)
		}
		if done >= n && placed.Load() == int64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the deadline %d of %d receipts sent (%d placed)", done, n, placed.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := <-burstDone; err != nil {
		t.Fatal(err)
	}
	if !killedNATS || !killedWorker {
		t.Fatalf("the burst drained before the faults: nats %v, worker %v", killedNATS, killedWorker)
	}
	// Exactly one receipt per order, none failed.
	var orders, receipts, dup, failed int
	_ = db.QueryRow(`SELECT count(*) FROM orders`).Scan(&orders)
	_ = db.QueryRow(`SELECT count(DISTINCT order_id), count(*) FILTER (WHERE status <> 'sent') FROM emails WHERE kind = 'receipt'`).Scan(&receipts, &failed)
	_ = db.QueryRow(`SELECT count(*) FROM (SELECT order_id FROM emails WHERE kind = 'receipt' GROUP BY order_id HAVING count(*) > 1) d`).Scan(&dup)
	if orders != n || receipts != n || dup != 0 || failed != 0 {
		t.Fatalf("%d orders, %d with a receipt, %d with more than one, %d not sent", orders, receipts, dup, failed)
	}
	if peak <= 1 {
		t.Errorf("the surviving worker's pool never grew (peak %d on /metrics)", peak)
	}
	// And falls back to its minimum once the backlog is gone (a 3 s
	// scale-down window here).
	fell := time.Now().Add(30 * time.Second)
	for w2.Workers("receipt") != 1 {
		if time.Now().After(fell) {
			t.Fatalf("30s after the burst worker 2 still runs %d receipt handlers", w2.Workers("receipt"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The stream lives on all three nodes (two of which are left).
	nc, err := nats.Connect(c.NATS.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.Stream(sctx, c.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.Config.Replicas != 3 {
		t.Errorf("stream %s has %d replicas, want 3", c.Stream, info.Config.Replicas)
	}
	t.Logf("%d orders, one receipt each; worker 2's pool rose to %d and fell back to 1 on /metrics", n, peak)
}

// TestDevClusterCommand runs `ladle dev cluster` itself (its processes are
// this test binary re-executed as ladle) for a few seconds: it prints
// where everything is, drives a burst, API orders and a campaign, reports
// them, and stops every process and NATS node within its bounds when the
// duration ends. Without a PostgreSQL URL it refuses with a clear error.
func TestDevClusterCommand(t *testing.T) {
	var out syncBuffer
	err := run(context.Background(), []string{"ladle", "dev", "cluster"}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "--database-url postgres://") {
		t.Fatalf("without a database: %v", err)
	}
	testenv.Short(t, "a loopback cluster of five processes")
	dbURL := testenv.PostgresSchema(t)
	helper := helperExec(t)
	old := selfExec
	selfExec = func() ([]string, error) { return helper, nil }
	defer func() { selfExec = old }()
	start := time.Now()
	err = run(context.Background(), []string{"ladle", "dev", "cluster", "--database-url", dbURL, "--dir", t.TempDir(),
		"--burst", "300", "--order-rate", "20", "--campaign", "40", "--duration", "30s", "--shutdown-timeout", "10s"},
		func(string) string { return "" }, &out, &out)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("dev cluster: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"NATS (JetStream, stream", "api-1: http://127.0.0.1:", "api-2: http://127.0.0.1:",
		"worker-1: metrics http://127.0.0.1:", "worker-2: metrics", "burst 300/300", "Stopped."} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q:\n%s", want, text)
		}
	}
	// Start (up to a minute per process on a busy machine), 30 s of load
	// (the burst must be done within it: 15 s left it at 294/300 on a
	// loaded machine), then bounded stops.
	if took > 4*time.Minute {
		t.Errorf("dev cluster took %v", took)
	}
	db := sqlDB(t, dbURL)
	var apiOrders, fans int
	_ = db.QueryRow(`SELECT count(*) FROM orders WHERE customer_email LIKE 'load%'`).Scan(&apiOrders)
	_ = db.QueryRow(`SELECT count(*) FROM campaign_sends`).Scan(&fans)
	if apiOrders == 0 || fans != 40 {
		t.Errorf("the load placed %d API orders and %d campaign sends (want > 0 and 40)\n%s", apiOrders, fans, text)
	}
	t.Logf("dev cluster ran %v:\n%s", took.Round(time.Second), text)
}

// sqlDB opens the test's database for counting.
func sqlDB(t *testing.T, dbURL string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
