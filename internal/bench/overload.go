package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/payment"
)

// OverloadConfig configures `ladle bench overload`.
type OverloadConfig struct {
	Out io.Writer
	// Binary is the ladle binary to run as the server (default: this one).
	Binary string
	// PostgresURL, if set, also runs on PostgreSQL (a schema of its own).
	PostgresURL string
	SQLite      bool
	// Clients is the closed-loop concurrency that measures capacity.
	Clients int
	// Capacity is how long capacity is measured (after a 2 s warm-up).
	Capacity time.Duration
	// Duration is how long the overload is offered, at Factor × capacity.
	Duration time.Duration
	Factor   float64
	// Rounds repeats everything on a fresh server; the table shows medians.
	Rounds int
	// ServerFlags are passed to `ladle serve` (e.g. --max-inflight-orders 8).
	ServerFlags []string
	// Unlimited also runs each round against a server whose order limiter
	// admits everything, for comparison.
	Unlimited bool
}

// Overload finds the sustainable order rate of a `ladle serve` child process
// (closed loop: Clients clients placing card orders back to back), then
// offers Factor times that rate at a constant arrival rate for Duration
// (open model: requests go out on schedule whatever the server does, and
// latency counts from the scheduled time), and reports what was shed, the
// latency of what was accepted, the throughput against capacity, the
// server's peak RSS (from /proc of the child process) and whether any guest
// got two orders.
func Overload(ctx context.Context, cfg OverloadConfig) error {
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.Binary = exe
	}
	cfg.Clients = max(cfg.Clients, 1)
	cfg.Rounds = max(cfg.Rounds, 1)
	if cfg.Factor <= 0 {
		cfg.Factor = 2
	}
	type target struct{ name, dbURL string }
	var targets []target
	if cfg.SQLite {
		targets = append(targets, target{"SQLite", ""})
	}
	if cfg.PostgresURL != "" {
		targets = append(targets, target{"PostgreSQL", cfg.PostgresURL})
	}
	variants := []struct {
		name  string
		flags []string
	}{{"limited", cfg.ServerFlags}}
	if cfg.Unlimited {
		variants = append(variants, struct {
			name  string
			flags []string
		}{"unlimited", append(slices.Clone(cfg.ServerFlags), "--max-inflight-orders", "1000000", "--order-queue", "0")})
	}
	for _, tg := range targets {
		for _, v := range variants {
			var rs []overloadRound
			for i := range cfg.Rounds {
				fmt.Fprintf(os.Stderr, "bench overload: %s, %s, round %d/%d\n", tg.name, v.name, i+1, cfg.Rounds)
				r, err := overloadOnce(ctx, cfg, tg.dbURL, v.flags)
				if err != nil {
					return fmt.Errorf("%s (%s): %w", tg.name, v.name, err)
				}
				rs = append(rs, r)
			}
			fmt.Fprintf(cfg.Out, "\n%s, server %s (`ladle serve %s`), %d round(s):\n\n", tg.name, v.name, strings.Join(v.flags, " "), cfg.Rounds)
			printOverload(cfg, rs)
		}
	}
	return nil
}

type overloadRound struct {
	capacity            float64 // orders/s, closed loop: mean of before and after the overload
	capacityAfter       float64 // orders/s, closed loop, after the overload
	capP50, capP99      time.Duration
	offered             float64 // orders/s
	sent                int
	accepted            int // 201
	shed                int // 503
	other               int // anything else, incl. transport errors
	otherSample         string
	acceptedPerSec      float64
	p50, p99, pMax      time.Duration // of accepted, from the scheduled send time
	shedP99             time.Duration
	rssStart, rssBefore int64 // bytes: after start-up; just before the overload
	rssPeak, rssAfter   int64 // peak during the overload; after it
	ordersInDB          int
	answered201         int
	duplicates          int
}

func printOverload(cfg OverloadConfig, rs []overloadRound) {
	f := func(get func(r overloadRound) float64) []float64 {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = get(r)
		}
		return xs
	}
	ms := func(get func(r overloadRound) time.Duration) string {
		return fmt.Sprintf("%.0f ms", median(f(func(r overloadRound) float64 { return float64(get(r)) / 1e6 })))
	}
	mb := func(get func(r overloadRound) int64) string {
		return fmt.Sprintf("%.0f MB", median(f(func(r overloadRound) float64 { return float64(get(r)) / (1 << 20) })))
	}
	capacity := f(func(r overloadRound) float64 { return r.capacity })
	accepted := f(func(r overloadRound) float64 { return r.acceptedPerSec })
	ratios := f(func(r overloadRound) float64 { return r.acceptedPerSec / r.capacity })
	growth := f(func(r overloadRound) float64 { return float64(r.rssPeak-r.rssBefore) / (1 << 20) })
	shedPct := f(func(r overloadRound) float64 { return 100 * float64(r.shed) / float64(max(r.sent, 1)) })
	rows := [][]string{
		{"accepted orders/s during overload", fmtRange(accepted), fmt.Sprintf("capacity, closed loop, %d clients (mean of before and after)", cfg.Clients), fmtRange(capacity),
			fmt.Sprintf("%.2f [%.2f–%.2f] (target ≥ 0.9)", median(ratios), slices.Min(ratios), slices.Max(ratios))},
		{"capacity after the overload (recovery)", fmtRange(f(func(r overloadRound) float64 { return r.capacityAfter })), "", "", ""},
		{"offered orders/s (constant arrival rate)", fmtRange(f(func(r overloadRound) float64 { return r.offered })), "", "",
			fmt.Sprintf("%.1f× capacity", cfg.Factor)},
		{"requests sent / accepted (201) / shed (503) / other", fmt.Sprintf("%.0f / %.0f / %.0f / %.0f",
			median(f(func(r overloadRound) float64 { return float64(r.sent) })), median(f(func(r overloadRound) float64 { return float64(r.accepted) })),
			median(f(func(r overloadRound) float64 { return float64(r.shed) })), median(f(func(r overloadRound) float64 { return float64(r.other) }))),
			"", "", fmt.Sprintf("%.0f%% shed", median(shedPct))},
		{"accepted p50 / p99 / max", ms(func(r overloadRound) time.Duration { return r.p50 }) + " / " + ms(func(r overloadRound) time.Duration { return r.p99 }) +
			" / " + ms(func(r overloadRound) time.Duration { return r.pMax }),
			"capacity p50 / p99", ms(func(r overloadRound) time.Duration { return r.capP50 }) + " / " + ms(func(r overloadRound) time.Duration { return r.capP99 }),
			"p99 target ≤ 1000 ms"},
		{"shed p99 (time to a 503)", ms(func(r overloadRound) time.Duration { return r.shedP99 }), "", "", ""},
		{"server RSS peak during overload", mb(func(r overloadRound) int64 { return r.rssPeak }), "RSS just before it (after start-up)",
			mb(func(r overloadRound) int64 { return r.rssBefore }) + " (" + mb(func(r overloadRound) int64 { return r.rssStart }) + ")",
			fmt.Sprintf("+%.0f MB (target ≤ 50)", median(growth))},
		{"orders in the database / 201s answered", fmt.Sprintf("%.0f / %.0f", median(f(func(r overloadRound) float64 { return float64(r.ordersInDB) })),
			median(f(func(r overloadRound) float64 { return float64(r.answered201) }))), "", "", ""},
		{"guests with two orders (duplicates)", fmt.Sprintf("%.0f", slices.Max(f(func(r overloadRound) float64 { return float64(r.duplicates) }))), "", "", "target 0"},
	}
	printTable(cfg.Out, []string{"figure", "median [min–max]", "baseline", "median [min–max]", "ratio / target"}, rows)
	for i, r := range rs {
		if r.otherSample != "" {
			fmt.Fprintf(cfg.Out, "\nround %d, first other response: %s\n", i+1, r.otherSample)
		}
	}
}

// overloadOnce runs one round on a fresh server.
func overloadOnce(ctx context.Context, cfg OverloadConfig, pgBase string, flags []string) (overloadRound, error) {
	var r overloadRound
	dir, err := os.MkdirTemp("", "ladle-overload-")
	if err != nil {
		return r, err
	}
	if os.Getenv("BENCH_KEEP") == "" {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "bench overload: keeping %s (server.log)\n", dir)
	}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--demo", "--log-level", "warn"}
	dbDriver, dbURL := "sqlite", "file:"+filepath.Join(dir, "ladle.db")
	if pgBase != "" {
		schemaURL, drop, err := freshSchema(ctx, pgBase)
		if err != nil {
			return r, err
		}
		defer drop()
		args = append(args, "--database-url", schemaURL)
		dbDriver, dbURL = "pgx", schemaURL
	}
	srv, err := startChild(ctx, cfg.Binary, append(args, flags...), filepath.Join(dir, "server.log"))
	if err != nil {
		return r, err
	}
	defer srv.stop()
	r.rssStart = srv.rss()

	gen, err := newOrderGen(ctx, srv.base)
	if err != nil {
		return r, err
	}
	// Capacity: closed loop, after a warm-up.
	gen.closedLoop(ctx, cfg.Clients, 2*time.Second)
	c := gen.closedLoop(ctx, cfg.Clients, cfg.Capacity)
	if c.perSec == 0 {
		return r, fmt.Errorf("no order succeeded while measuring capacity: %s", c.firstErr)
	}
	r.capacity, r.capP50, r.capP99 = c.perSec, c.p50, c.p99
	// Let the server settle (idle connections, GC) before the baseline RSS.
	time.Sleep(time.Second)
	r.rssBefore = srv.rss()

	r.offered = cfg.Factor * r.capacity
	srv.resetPeak()
	o := gen.openLoop(ctx, r.offered, cfg.Duration)
	r.rssPeak = srv.peak()
	time.Sleep(time.Second)
	r.rssAfter = srv.rss()
	r.sent, r.accepted, r.shed, r.other, r.otherSample = o.sent, o.accepted, o.shed, o.other, o.otherSample
	r.acceptedPerSec = float64(o.acceptedInWindow) / cfg.Duration.Seconds()
	r.p50, r.p99, r.pMax, r.shedP99 = o.p50, o.p99, o.max, o.shedP99
	// Capacity again after the overload: the baseline is the mean of the
	// two, so a machine that got busier or quieter meanwhile (it is shared)
	// skews the ratio less; it also shows the server recovered.
	c2 := gen.closedLoop(ctx, cfg.Clients, cfg.Capacity)
	r.capacityAfter = c2.perSec
	r.capacity = (r.capacity + c2.perSec) / 2
	r.answered201 = int(gen.created.Load())

	if err := srv.stop(); err != nil {
		return r, err
	}
	r.ordersInDB, r.duplicates, err = countOrders(ctx, dbDriver, dbURL)
	return r, err
}

// child is a `ladle serve` process.
type child struct {
	cmd  *exec.Cmd
	base string
	done chan error

	mu       sync.Mutex
	peakRSS  int64
	stopPoll chan struct{}
	stopped  bool
}

var listeningRe = regexp.MustCompile(`listening on (http://\S+)`)

func startChild(ctx context.Context, bin string, args []string, logPath string, env ...string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	// The child's configuration is exactly args: no LADLE_* from here.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LADLE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...) // what the caller sets on purpose
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan error, 1), stopPoll: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listeningRe.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- strings.Replace(m[1], "localhost", "127.0.0.1", 1):
				default:
				}
			}
		}
	}()
	go func() { c.done <- cmd.Wait(); logf.Close() }()
	select {
	case c.base = <-addr:
	case err := <-c.done:
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("ladle serve exited: %v\n%s", err, b)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, errors.New("ladle serve did not start in 60 s")
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, ctx.Err()
	}
	go c.poll()
	return c, nil
}

// rss reads the child's resident set size from /proc.
func (c *child) rss() int64 { return procStatus(c.cmd.Process.Pid, "VmRSS:") }

func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// poll samples the RSS every 50 ms for peak().
func (c *child) poll() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.stopPoll:
			return
		case <-t.C:
			v := c.rss()
			c.mu.Lock()
			c.peakRSS = max(c.peakRSS, v)
			c.mu.Unlock()
		}
	}
}

func (c *child) resetPeak()  { c.mu.Lock(); c.peakRSS = c.rss(); c.mu.Unlock() }
func (c *child) peak() int64 { c.mu.Lock(); defer c.mu.Unlock(); return max(c.peakRSS, c.rss()) }

// stop ends the child gracefully (SIGTERM), or kills it after 30 s.
func (c *child) stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	close(c.stopPoll)
	c.mu.Unlock()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		return err
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New("ladle serve did not stop in 30 s")
	}
}

// orderGen places distinct card orders on the demo restaurant: every
// request has its own key and its own guest, so any guest with two orders
// is a duplicate.
type orderGen struct {
	url     string
	lines   []ladle.LineRequest
	client  *http.Client
	runID   string
	seq     atomic.Int64
	created atomic.Int64
}

func newOrderGen(ctx context.Context, base string) (*orderGen, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/restaurants/"+demo.Slug+"/menu", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var m ladle.Menu
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("demo menu: %w", err)
	}
	var lines []ladle.LineRequest
	for _, c := range m.Categories {
		for _, it := range c.Items {
			if it.Available && len(it.ModifierGroups) == 0 && len(lines) < 2 {
				lines = append(lines, ladle.LineRequest{ItemID: it.ID, Quantity: 1})
			}
		}
	}
	if len(lines) == 0 {
		return nil, errors.New("demo menu has no plain item")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &orderGen{
		url:   base + "/api/v1/restaurants/" + demo.Slug + "/orders",
		lines: lines,
		// No bound on connections: an open-model client must not queue on
		// its own side, or it hides the server's latency.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4096}, Timeout: 60 * time.Second},
		runID:  hex.EncodeToString(b[:]),
	}, nil
}

// post places one order and returns its status (0 for a transport error).
func (g *orderGen) post(ctx context.Context) (int, string) {
	n := g.seq.Add(1)
	body, _ := json.Marshal(ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: "Overload Guest", Email: fmt.Sprintf("overload-%s-%d@bench.example", g.runID, n), Phone: "+12125550100"},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       g.lines,
		Payment:     ladle.PaymentInput{Method: "card", Token: payment.TokenVisa},
	})
	req, err := http.NewRequestWithContext(ctx, "POST", g.url, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusCreated {
		g.created.Add(1)
		return resp.StatusCode, ""
	}
	return resp.StatusCode, string(b)
}

type closedResult struct {
	perSec   float64
	p50, p99 time.Duration
	firstErr string
}

func (g *orderGen) closedLoop(ctx context.Context, clients int, d time.Duration) closedResult {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lats     []time.Duration
		firstErr string
	)
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Go(func() {
			var local []time.Duration
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				status, body := g.post(ctx)
				if status == http.StatusCreated {
					local = append(local, time.Since(t0))
				} else {
					mu.Lock()
					if firstErr == "" {
						firstErr = fmt.Sprintf("%d %s", status, body)
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lats)
	return closedResult{perSec: float64(len(lats)) / time.Since(start).Seconds(),
		p50: percentile(lats, 0.5), p99: percentile(lats, 0.99), firstErr: firstErr}
}

type openResult struct {
	sent, accepted, shed, other int
	acceptedInWindow            int
	otherSample                 string
	p50, p99, max, shedP99      time.Duration
}

// openLoop sends requests at a constant rate for d, each on its own
// goroutine whatever the server does (the open model of vegeta), and
// measures each from the time it was due.
func (g *orderGen) openLoop(ctx context.Context, rate float64, d time.Duration) openResult {
	type result struct {
		status int
		lat    time.Duration
		end    time.Time
		body   string
	}
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	results := make([]result, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			status, body := g.post(ctx)
			now := time.Now()
			results[i] = result{status: status, lat: now.Sub(due), end: now, body: body}
		})
	}
	wg.Wait()
	var o openResult
	var acc, shedLats []time.Duration
	windowEnd := start.Add(d)
	for _, r := range results {
		if r.end.IsZero() {
			continue
		}
		o.sent++
		switch r.status {
		case http.StatusCreated:
			o.accepted++
			acc = append(acc, r.lat)
			if !r.end.After(windowEnd) {
				o.acceptedInWindow++
			}
		case http.StatusServiceUnavailable:
			o.shed++
			shedLats = append(shedLats, r.lat)
		default:
			o.other++
			if o.otherSample == "" {
				o.otherSample = fmt.Sprintf("%d %.300s", r.status, r.body)
			}
		}
	}
	slices.Sort(acc)
	slices.Sort(shedLats)
	o.p50, o.p99 = percentile(acc, 0.5), percentile(acc, 0.99)
	if len(acc) > 0 {
		o.max = acc[len(acc)-1]
	}
	o.shedP99 = percentile(shedLats, 0.99)
	return o
}

// countOrders counts the benchmark's orders and the guests with more than
// one (each request had its own guest).
func countOrders(ctx context.Context, driver, url string) (orders, duplicates int, err error) {
	db, err := sql.Open(driver, url)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM orders WHERE customer_email LIKE 'overload-%'`).Scan(&orders); err != nil {
		return 0, 0, fmt.Errorf("count orders: %w", err)
	}
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT customer_email FROM orders WHERE customer_email LIKE 'overload-%'
		GROUP BY customer_email HAVING count(*) > 1) d`).Scan(&duplicates)
	if err != nil {
		return 0, 0, fmt.Errorf("count duplicates: %w", err)
	}
	return orders, duplicates, nil
}
