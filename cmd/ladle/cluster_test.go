package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// TestHelperServe is not a test: it is how the cluster test runs `ladle
// serve` as a separate OS process it can kill (the test binary re-executed
// with LADLE_TEST_HELPER_SERVE=1 and serve's arguments after "--").
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

// natsCluster starts three nats-server nodes (from the Go module) clustered
// on loopback, JetStream on file stores, and returns them and the client
// URL list.
func natsCluster(t *testing.T) ([]*server.Server, string) {
	t.Helper()
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var srvs []*server.Server
	var urls []string
	for i := range 3 {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "ladle-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats node not ready")
		}
		srvs = append(srvs, s)
		urls = append(urls, s.ClientURL())
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, s := range srvs {
			ok = ok && s.JetStreamIsClustered() && s.JetStreamIsCurrent() && s.NumRoutes() >= 2
		}
		if ok && srvs[0].JetStreamIsLeader() || ok && srvs[1].JetStreamIsLeader() || ok && srvs[2].JetStreamIsLeader() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the NATS cluster did not form")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return srvs, strings.Join(urls, ",")
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// proc is a `ladle serve` child process.
type proc struct {
	cmd     *exec.Cmd
	base    string
	metrics string
	exited  chan struct{}
}

func startProc(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	mport := freePorts(t, 1)[0]
	argv := append([]string{"-test.run=^TestHelperServe$", "--", "serve", "--addr", "127.0.0.1:0",
		"--data-dir", t.TempDir(), "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", mport)}, args...)
	cmd := exec.Command(os.Args[0], argv...)
	cmd.Env = append(os.Environ(), "LADLE_TEST_HELPER_SERVE=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", mport), exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- strings.Replace(m[1], "localhost", "127.0.0.1", 1):
				default:
				}
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.base = <-addr:
	case <-p.exited:
		t.Fatalf("ladle serve %v exited:\n%s", args, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("ladle serve %v did not start:\n%s", args, logs.String())
	}
	return p
}

var workersRe = regexp.MustCompile(`(?m)^ladle_consumer_workers\{consumer="receipt"\} (\d+)`)

// workers reads the receipt pool's size from the process's /metrics (-1 if
// it does not answer).
func (p *proc) workers() int {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(p.metrics)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	m := workersRe.FindStringSubmatch(b.String())
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestLoopbackCluster: a three-node NATS JetStream cluster (R3 stream),
// PostgreSQL, one API process and two worker processes, on loopback. A
// burst of orders (LADLE_CLUSTER_EVENTS, default 2,000; 400 with -short) is
// committed at once; while it drains, one NATS node is shut down and one
// worker process is killed (SIGKILL). Every order gets exactly one receipt
// (counted in the database, at the effect), and the surviving worker's
// /metrics shows its pool rising under the burst.
func TestLoopbackCluster(t *testing.T) {
	t.Parallel()
	n := 2000
	if testing.Short() {
		n = 400
	}
	if v, err := strconv.Atoi(os.Getenv("LADLE_CLUSTER_EVENTS")); err == nil && v > 0 {
		n = v
	}
	srvs, natsURL := natsCluster(t)
	dbURL := testenv.PostgresSchema(t)
	stream := "LADLE_CLUSTER_" + strings.ToUpper(uuid.NewString()[:8])
	env := map[string]string{
		"LADLE_DATABASE_URL": dbURL, "LADLE_NATS_URL": natsURL, "LADLE_NATS_REPLICAS": "3",
		"LADLE_NATS_STREAM": stream, "LADLE_SECRET": "cluster-test-secret-0123456789",
		"LADLE_ACK_WAIT": "2s", "LADLE_LOG_LEVEL": "error",
	}
	api := startProc(t, env, "--role", "api", "--demo")
	scale := []string{"--role", "worker", "--worker-min", "1", "--worker-max", "16", "--worker-scale-down-window", "3s"}
	w1 := startProc(t, env, scale...)
	w2 := startProc(t, env, scale...)
	_ = api

	ctx := context.Background()
	st, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := st.RestaurantBySlug(ctx, demo.Slug)
	if err != nil {
		t.Fatal(err)
	}
	menu, err := st.Menu(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	item := plainItem(t, menu)

	// The burst: n orders committed as fast as 8 clients can, straight
	// into the database (each with its outbox event): the API process's
	// relay publishes them.
	var placed atomic.Int64
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := c; i < n; i += 8 {
				_, err := st.CreateOrder(ctx, ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(), RestaurantID: r.ID, Now: ladle.Now(),
					Request: &ladle.OrderRequest{
						Customer:         ladle.CustomerInput{Name: fmt.Sprintf("Guest %d", i), Email: fmt.Sprintf("guest%d@example.com", i)},
						Fulfillment:      ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
						Lines:            []ladle.LineRequest{{ItemID: item.ID, Quantity: 1}},
						Payment:          ladle.PaymentInput{Method: "pay_at_pickup"},
						ConfirmDuplicate: true,
					}})
				if err != nil {
					t.Error(err)
					return
				}
				placed.Add(1)
			}
		})
	}

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
	for {
		peak = max(peak, w2.workers())
		done := sent()
		if !killedNATS && done >= n/5 {
			srvs[2].Shutdown() // not the first: the clients list it last
			killedNATS = true
			t.Logf("NATS node n3 shut down at %d receipts", done)
		}
		if !killedWorker && done >= n/3 {
			_ = w1.cmd.Process.Kill()
			<-w1.exited
			killedWorker = true
			t.Logf("worker 1 killed at %d receipts", done)
		}
		if done >= n && placed.Load() == int64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 minutes %d of %d receipts sent (%d placed)", done, n, placed.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
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
	for w2.workers() != 1 {
		if time.Now().After(fell) {
			t.Fatalf("30s after the burst worker 2 still runs %d receipt handlers", w2.workers())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The stream lives on all three nodes (two of which are left).
	nc, err := nats.Connect(natsURL)
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
	s, err := js.Stream(sctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.Config.Replicas != 3 {
		t.Errorf("stream %s has %d replicas, want 3", stream, info.Config.Replicas)
	}
	_ = js.DeleteStream(sctx, stream)
	t.Logf("%d orders, one receipt each; worker 2's pool rose to %d and fell back to 1 on /metrics", n, peak)
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
