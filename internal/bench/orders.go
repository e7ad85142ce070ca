// Package bench holds Ladle's whole-system benchmarks, run with
// `ladle bench …`. Each prints a table: the figure, the baseline measured in
// the same run (alternating A B A B), their ratio, and the conditions.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/httpapi"
	"github.com/ladle-dev/ladle/internal/httpserver"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// OrdersConfig configures the order placement benchmark.
type OrdersConfig struct {
	PostgresURL string        // base URL; the benchmark works in a schema of its own, dropped after
	Clients     int           // concurrent clients (HTTP) and pgbench clients
	Duration    time.Duration // per round and side
	Rounds      int           // A B rounds; medians are over these
	PGBench     string        // the pgbench binary
	SQLite      bool          // also run the HTTP side on SQLite (no pgbench baseline there)
	// Restaurants is how many restaurants the many-restaurant sides spread
	// their clients over (default 20); every figure is also measured with
	// one.
	Restaurants int
	Out         io.Writer
}

// roundResult is one side of one round.
type roundResult struct {
	perSec   float64
	p50, p99 time.Duration
}

// Orders measures order placement over HTTP — a real loopback HTTP server
// running the JSON API, the ordering service and the test card provider,
// driven by Clients closed-loop clients with distinct Idempotency-Keys and
// distinct guests — with all clients ordering from one restaurant, spread
// over Restaurants restaurants, and paying at pickup. On PostgreSQL it runs
// beside pgbench executing, with the same number of clients, the SQL one
// card placement executes (captured from the driver during one real
// placement) two ways: statement by statement as Ladle sends them, and the
// same statements in two pipelined transactions with prepared statements
// (what the database allows for the same rows). Targets: HTTP card orders
// ≥ 0.6 (goal 0.8) of the pipelined pgbench.
func Orders(ctx context.Context, cfg OrdersConfig) error {
	if cfg.Clients <= 0 {
		cfg.Clients = 8
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.PGBench == "" {
		cfg.PGBench = "pgbench"
	}
	if cfg.Restaurants <= 0 {
		cfg.Restaurants = 20
	}
	out := cfg.Out
	fmt.Fprintf(out, "# Order placement: HTTP POST /orders vs pgbench with the same SQL\n")
	fmt.Fprintf(out, "conditions: %d clients, %s per side per round, %d rounds alternating, GOMAXPROCS=%d, "+
		"card payments via the test provider unless marked pay at pickup, 1 or %d restaurants\n\n",
		cfg.Clients, cfg.Duration, cfg.Rounds, runtime.GOMAXPROCS(0), cfg.Restaurants)

	var rows [][]string
	httpRows := func(db string, r ordersRun) {
		one, many, pickup := summarize(r.one), summarize(r.many), summarize(r.pickup)
		ratio := func(a, b summary) string {
			if len(b.perSec) == 0 {
				return ""
			}
			return fmt.Sprintf("%.2f", median(a.perSec)/median(b.perSec))
		}
		pipe, seq := summarize(r.pgPipelined), summarize(r.pgSequential)
		if len(pipe.perSec) > 0 {
			const baseName = "pgbench, same rows, 2 pipelined prepared tx, tx/s"
			rows = append(rows,
				[]string{db + " http card orders/s, 1 restaurant", fmtRange(one.perSec), baseName, fmtRange(pipe.perSec), ratio(one, pipe)},
				[]string{fmt.Sprintf("%s http card orders/s, %d restaurants", db, cfg.Restaurants), fmtRange(many.perSec), baseName, fmtRange(pipe.perSec), ratio(many, pipe)},
				[]string{db + " http card orders/s, 1 restaurant", fmtRange(one.perSec), "pgbench, same SQL as sent, tx/s", fmtRange(seq.perSec), ratio(one, seq)},
			)
		} else {
			rows = append(rows,
				[]string{db + " http card orders/s, 1 restaurant", fmtRange(one.perSec), "", "", ""},
				[]string{fmt.Sprintf("%s http card orders/s, %d restaurants", db, cfg.Restaurants), fmtRange(many.perSec), "", "", ""},
			)
		}
		rows = append(rows,
			[]string{db + " http pay-at-pickup orders/s, 1 restaurant", fmtRange(pickup.perSec), "", "", ""},
			[]string{db + " http card p50 / p99, 1 restaurant", fmtLat(one.p50) + " / " + fmtLat(one.p99), "", "", ""},
			[]string{fmt.Sprintf("%s http card p50 / p99, %d restaurants", db, cfg.Restaurants), fmtLat(many.p50) + " / " + fmtLat(many.p99), "", "", ""},
		)
		if len(pipe.perSec) > 0 {
			rows = append(rows, []string{"pgbench latency average, pipelined / as sent", fmtLat(pipe.p50) + " / " + fmtLat(seq.p50), "", "", ""})
		}
		if r.groupTx > 0 {
			rows = append(rows, []string{db + " write transactions per commit (group commit)",
				fmt.Sprintf("%.1f", float64(r.groupTx)/float64(r.groupCommits)), "", "", ""})
		}
	}
	if cfg.PostgresURL != "" {
		r, err := ordersPostgres(ctx, cfg)
		if err != nil {
			return err
		}
		httpRows("postgres", r)
		fmt.Fprintf(out, "pgbench scripts: %s (as sent), %s (pipelined)\n", r.scripts[0], r.scripts[1])
	}
	if cfg.SQLite {
		r, err := ordersSQLite(ctx, cfg)
		if err != nil {
			return err
		}
		httpRows("sqlite", r)
	}
	printTable(out, []string{"figure", "median [min–max]", "baseline", "median [min–max]", "ratio"}, rows)
	return nil
}

// ordersRun is every side of every round on one database.
type ordersRun struct {
	one, many, pickup         []roundResult
	pgSequential, pgPipelined []roundResult
	groupCommits, groupTx     int64
	scripts                   [2]string
}

type summary struct {
	perSec   []float64
	p50, p99 []time.Duration
}

func summarize(rs []roundResult) summary {
	var s summary
	for _, r := range rs {
		s.perSec = append(s.perSec, r.perSec)
		s.p50 = append(s.p50, r.p50)
		s.p99 = append(s.p99, r.p99)
	}
	return s
}

// ordersPostgres runs the rounds on PostgreSQL.
func ordersPostgres(ctx context.Context, cfg OrdersConfig) (ordersRun, error) {
	var run ordersRun
	schemaURL, dropSchema, err := freshSchema(ctx, cfg.PostgresURL)
	if err != nil {
		return run, err
	}
	defer dropSchema()

	tracer := &recorder{}
	st, err := sqlstore.Open(ctx, schemaURL, sqlstore.WithPostgresTracer(tracer), sqlstore.WithMaxConns(cfg.Clients+4))
	if err != nil {
		return run, err
	}
	defer st.Close()
	srv, restaurantID, err := benchServer(ctx, st)
	if err != nil {
		return run, err
	}
	defer srv.Close()

	// Keep customer ids far from every other integer in the statements
	// (restaurant and item ids, amounts), so the captured values can be
	// told apart when the script is written.
	if _, err := st.DB().ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('customers', 'id'), 7000000)`); err != nil {
		return run, err
	}

	one := newLoad(srv.URL, []target{{demo.Slug, menuLines(ctx, st, restaurantID)}})
	// Capture one placement.
	tracer.on.Store(true)
	email, orderID, err := one.placeOne(ctx)
	tracer.on.Store(false)
	if err != nil {
		return run, err
	}
	o, err := st.Order(ctx, orderID)
	if err != nil {
		return run, err
	}
	stmts := tracer.take()
	for i, pipelined := range []bool{false, true} {
		script, err := pgbenchScript(stmts, email, o.CustomerID, pipelined)
		if err != nil {
			return run, err
		}
		run.scripts[i] = scriptPath(script)
		if err := os.WriteFile(run.scripts[i], []byte(script), 0o644); err != nil {
			return run, err
		}
	}
	many, err := manyRestaurants(ctx, st, srv.URL, cfg.Restaurants)
	if err != nil {
		return run, err
	}
	pickup := newLoad(srv.URL, one.targets)
	pickup.method = "pay_at_pickup"

	for round := range cfg.Rounds {
		seq, err := runPGBench(ctx, cfg, schemaURL, run.scripts[0])
		if err != nil {
			return run, fmt.Errorf("pgbench round %d: %w", round+1, err)
		}
		pipe, err := runPGBench(ctx, cfg, schemaURL, run.scripts[1])
		if err != nil {
			return run, fmt.Errorf("pgbench (pipelined) round %d: %w", round+1, err)
		}
		run.pgSequential, run.pgPipelined = append(run.pgSequential, seq), append(run.pgPipelined, pipe)
		if err := httpRound(ctx, cfg, "postgres", round, &run, one, many, pickup); err != nil {
			return run, err
		}
		fmt.Fprintf(cfg.Out, "          pgbench as sent %.0f tx/s, pipelined %.0f tx/s\n", seq.perSec, pipe.perSec)
	}
	fmt.Fprintln(cfg.Out)
	return run, nil
}

// httpRound runs the three HTTP sides of one round.
func httpRound(ctx context.Context, cfg OrdersConfig, db string, round int, run *ordersRun, one, many, pickup *load) error {
	for _, side := range []struct {
		name string
		l    *load
		res  *[]roundResult
	}{{"card, 1 restaurant", one, &run.one}, {fmt.Sprintf("card, %d restaurants", cfg.Restaurants), many, &run.many},
		{"pay at pickup, 1 restaurant", pickup, &run.pickup}} {
		h := side.l.run(ctx, cfg.Clients, cfg.Duration)
		if h.errors > 0 {
			return fmt.Errorf("%s http round %d (%s): %d failed requests, first: %s", db, round+1, side.name, h.errors, h.firstErr)
		}
		*side.res = append(*side.res, h.roundResult)
		fmt.Fprintf(cfg.Out, "round %d: %s http %s: %.0f orders/s (p50 %s, p99 %s)\n", round+1, db, side.name, h.perSec,
			fmtLat([]time.Duration{h.p50}), fmtLat([]time.Duration{h.p99}))
	}
	return nil
}

func ordersSQLite(ctx context.Context, cfg OrdersConfig) (ordersRun, error) {
	var run ordersRun
	dir, err := os.MkdirTemp("", "ladle-bench-")
	if err != nil {
		return run, err
	}
	defer os.RemoveAll(dir)
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "bench.db"))
	if err != nil {
		return run, err
	}
	defer st.Close()
	srv, restaurantID, err := benchServer(ctx, st)
	if err != nil {
		return run, err
	}
	defer srv.Close()
	one := newLoad(srv.URL, []target{{demo.Slug, menuLines(ctx, st, restaurantID)}})
	many, err := manyRestaurants(ctx, st, srv.URL, cfg.Restaurants)
	if err != nil {
		return run, err
	}
	pickup := newLoad(srv.URL, one.targets)
	pickup.method = "pay_at_pickup"
	c0, t0 := st.GroupCommitStats()
	for round := range cfg.Rounds {
		if err := httpRound(ctx, cfg, "sqlite", round, &run, one, many, pickup); err != nil {
			return run, err
		}
	}
	c1, t1 := st.GroupCommitStats()
	run.groupCommits, run.groupTx = c1-c0, t1-t0
	fmt.Fprintln(cfg.Out)
	return run, nil
}

// manyRestaurants creates n restaurants (or finds them), each with a small
// menu like the demo's first items, and returns a load spread over them.
func manyRestaurants(ctx context.Context, st ladle.Store, base string, n int) (*load, error) {
	var targets []target
	for i := range n {
		slug := fmt.Sprintf("bench-%02d", i+1)
		r, err := st.RestaurantBySlug(ctx, slug)
		if ladle.ErrorKind(err) == ladle.KindNotFound {
			r = &ladle.Restaurant{Slug: slug, Name: "Bench " + slug, Currency: "USD", TaxRateBP: 875, TimeZone: "America/New_York"}
			if err := st.CreateRestaurant(ctx, r); err != nil {
				return nil, err
			}
			if err := seedBenchMenu(ctx, st, r.ID); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
		targets = append(targets, target{slug, menuLines(ctx, st, r.ID)})
	}
	return newLoad(base, targets), nil
}

// seedBenchMenu gives a restaurant an item with a required choice and one
// without, as menuLines orders.
func seedBenchMenu(ctx context.Context, st ladle.Store, restaurantID int64) error {
	c := &ladle.Category{RestaurantID: restaurantID, Name: "Soups"}
	if err := st.CreateCategory(ctx, c); err != nil {
		return err
	}
	g := &ladle.ModifierGroup{RestaurantID: restaurantID, Name: "Size", Min: 1, Max: 1,
		Modifiers: []ladle.Modifier{{Name: "Cup"}, {Name: "Bowl", Price: 250, Position: 1}}}
	if err := st.CreateModifierGroup(ctx, g); err != nil {
		return err
	}
	soup := &ladle.Item{RestaurantID: restaurantID, CategoryID: c.ID, Name: "Tomato Basil", Price: 650, Available: true}
	if err := st.CreateItem(ctx, soup); err != nil {
		return err
	}
	if err := st.SetItemModifierGroups(ctx, restaurantID, soup.ID, []int64{g.ID}); err != nil {
		return err
	}
	bread := &ladle.Item{RestaurantID: restaurantID, CategoryID: c.ID, Name: "Bread", Price: 300, Available: true, Position: 1}
	return st.CreateItem(ctx, bread)
}

// benchServer migrates st, seeds the demo restaurant and serves the JSON API
// on a loopback port, as `ladle serve` does.
func benchServer(ctx context.Context, st *sqlstore.Store) (*httptest.Server, int64, error) {
	if err := st.Migrate(ctx); err != nil {
		return nil, 0, err
	}
	if _, err := demo.Seed(ctx, st, func(pw string) (string, error) { return auth.HashPassword(pw, auth.TestParams) }); err != nil {
		return nil, 0, err
	}
	r, err := st.RestaurantBySlug(ctx, demo.Slug)
	if err != nil {
		return nil, 0, err
	}
	svc := ordering.New(st, payment.NewTestProvider(st), []byte("bench-secret-bench-secret"))
	menus, err := menucache.New(menucache.Config{Source: st})
	if err != nil {
		return nil, 0, err
	}
	mux := http.NewServeMux()
	httpapi.Register(mux, httpapi.Deps{Store: st, Menus: menus, Ordering: svc})
	return httptest.NewServer(httpserver.Wrap(mux, slog.New(slog.DiscardHandler))), r.ID, nil
}

// menuLines picks a realistic two-line order from the demo menu: an item
// with a required choice and one without.
func menuLines(ctx context.Context, st ladle.Store, restaurantID int64) []ladle.LineRequest {
	m, err := st.Menu(ctx, restaurantID)
	if err != nil {
		panic(err)
	}
	var lines []ladle.LineRequest
	var withChoice, plain bool
	for _, c := range m.Categories {
		for _, it := range c.Items {
			if !it.Available {
				continue
			}
			if len(it.ModifierGroups) == 0 && !plain {
				plain = true
				lines = append(lines, ladle.LineRequest{ItemID: it.ID, Quantity: 1})
			}
			if len(it.ModifierGroups) > 0 && !withChoice {
				var mods []int64
				for _, g := range it.ModifierGroups {
					for i := 0; i < g.Min; i++ {
						mods = append(mods, g.Modifiers[i].ID)
					}
				}
				withChoice = true
				lines = append(lines, ladle.LineRequest{ItemID: it.ID, Quantity: 2, ModifierIDs: mods})
			}
		}
	}
	return lines
}

// target is one restaurant a load orders from.
type target struct {
	slug  string
	lines []ladle.LineRequest
}

// load is a closed-loop HTTP load generator placing distinct orders,
// spread round-robin over its targets.
type load struct {
	base    string
	targets []target
	method  string // "card" (default) or "pay_at_pickup"
	client  *http.Client
	seq     atomic.Int64
	runID   string
}

func newLoad(base string, targets []target) *load {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &load{
		base:    base,
		targets: targets,
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}, Timeout: 30 * time.Second},
		runID:   hex.EncodeToString(b[:]),
	}
}

// body returns the next order's body, its guest's email and its URL.
func (l *load) body() ([]byte, string, string) {
	n := l.seq.Add(1)
	t := l.targets[int(n)%len(l.targets)]
	email := fmt.Sprintf("guest-%s-%d@bench.example", l.runID, n)
	pay := ladle.PaymentInput{Method: "card", Token: payment.TokenVisa}
	if l.method == "pay_at_pickup" {
		pay = ladle.PaymentInput{Method: "pay_at_pickup"}
	}
	b, _ := json.Marshal(ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: "Bench Guest", Email: email, Phone: "+12125550100"},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       t.lines,
		Tip:         200,
		Payment:     pay,
	})
	return b, email, l.base + "/api/v1/restaurants/" + t.slug + "/orders"
}

// placeOne places one order and returns the guest's email and the order id.
func (l *load) placeOne(ctx context.Context) (string, string, error) {
	body, email, url := l.body()
	status, resp, err := l.post(ctx, url, body)
	if err != nil {
		return "", "", err
	}
	if status != http.StatusCreated {
		return "", "", fmt.Errorf("placing an order: %d %s", status, resp)
	}
	var o struct{ ID string }
	if err := json.Unmarshal(resp, &o); err != nil {
		return "", "", err
	}
	return email, o.ID, nil
}

func (l *load) post(ctx context.Context, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

type loadResult struct {
	roundResult
	errors   int64
	firstErr string
}

// run drives `clients` concurrent clients for d and returns the rate of
// 201s and their latency percentiles.
func (l *load) run(ctx context.Context, clients int, d time.Duration) loadResult {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lats     []time.Duration
		errs     atomic.Int64
		firstErr atomic.Value
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range clients {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1024)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				body, _, url := l.body()
				t0 := time.Now()
				status, resp, err := l.post(ctx, url, body)
				if err != nil || status != http.StatusCreated {
					if errs.Add(1) == 1 {
						firstErr.Store(fmt.Sprintf("%d %s %v", status, resp, err))
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lats)
	r := loadResult{errors: errs.Load()}
	if s, ok := firstErr.Load().(string); ok {
		r.firstErr = s
	}
	r.perSec = float64(len(lats)) / elapsed.Seconds()
	r.p50, r.p99 = percentile(lats, 0.50), percentile(lats, 0.99)
	return r
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// recorder is a pgx tracer that records statements while switched on.
type recorder struct {
	on    atomic.Bool
	mu    sync.Mutex
	stmts []tracedStmt
}

type tracedStmt struct {
	sql  string
	args []any
}

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if r.on.Load() {
		args := make([]any, 0, len(d.Args))
		for _, a := range d.Args {
			switch a.(type) {
			case pgx.QueryResultFormats, pgx.QueryResultFormatsByOID, pgx.QueryExecMode:
				continue // options to pgx, not statement arguments
			}
			args = append(args, a)
		}
		r.mu.Lock()
		r.stmts = append(r.stmts, tracedStmt{d.SQL, args})
		r.mu.Unlock()
	}
	return ctx
}

func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// The store sends some of a placement's statements as pgx batches; each
// is recorded, in order, as its result is read.
func (r *recorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (r *recorder) TraceBatchQuery(ctx context.Context, c *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.TraceQueryStart(ctx, c, pgx.TraceQueryStartData{SQL: d.SQL, Args: d.Args})
}

func (r *recorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (r *recorder) take() []tracedStmt {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stmts
	r.stmts = nil
	return s
}

var (
	uuidRe      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	uuidInRe    = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	hex64Re     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	returningRe = regexp.MustCompile(`(?is)RETURNING\s+(.+)$`)
)

// pgbenchScript turns one traced placement into a pgbench script running the
// same statements in the same transactions. Arguments become literals,
// except the values that must differ per placement (ids, keys, the guest's
// email, the content fingerprint), which become expressions of a random
// per-run number, and the value the database hands back that a later
// statement uses (the customer id), which pgbench captures with \gset
// exactly as the application reads it from RETURNING.
//
// pipelined writes each transaction (the first with the restaurant lookup
// before it) as one pgbench pipeline: all its statements are sent before
// any answer is read, so a transaction costs about one round trip. A
// pipeline cannot feed a result to a later statement, so there the order's
// customer id is a subquery on the row the upsert just wrote: the same
// rows, written by the same statements plus that lookup.
func pgbenchScript(stmts []tracedStmt, email string, customerID int64, pipelined bool) (string, error) {
	if len(stmts) == 0 {
		return "", fmt.Errorf("bench: no statements captured (is the tracer wired?)")
	}
	var b strings.Builder
	if pipelined {
		b.WriteString("-- One order placement's statements, each transaction one pipeline (prepared).\n")
	} else {
		b.WriteString("-- One order placement through Ladle's HTTP API, as captured from the driver.\n")
	}
	b.WriteString("\\set u random(1, 9000000000000000000)\n")
	if pipelined {
		b.WriteString("\\startpipeline\n")
	}
	uuids := map[string]int{}
	custSeen := false
	custRef := ":cust_id"
	for _, s := range stmts {
		q := strings.TrimSpace(s.sql)
		if strings.Contains(q, "pg_notify") {
			// The store's notifier, outside the placement's transactions and
			// shared by the commits of a few milliseconds: not per order.
			continue
		}
		gset := ""
		isCustomer := strings.Contains(q, "INSERT INTO customers")
		if isCustomer {
			q = returningRe.ReplaceAllString(q, "RETURNING $1 AS id")
			gset, custSeen = "\\gset cust_", true
		}
		for i := len(s.args); i >= 1; i-- { // from the highest, so $1 does not eat $10
			lit, err := literal(s.args[i-1], email, customerID, custRef, custSeen && !isCustomer, uuids)
			if err != nil {
				return "", err
			}
			q = strings.ReplaceAll(q, "$"+strconv.Itoa(i), lit)
		}
		if isCustomer && pipelined {
			// restaurant_id and email are its first two values.
			if len(s.args) >= 2 {
				rid, _ := literal(s.args[0], email, customerID, custRef, false, uuids)
				em, _ := literal(s.args[1], email, customerID, custRef, false, uuids)
				custRef = "(SELECT id FROM customers WHERE restaurant_id = " + rid + " AND email = " + em + ")"
			}
			gset = ""
		}
		// pgbench reads one statement per line unless it ends with ';'.
		q = strings.Join(strings.Fields(q), " ")
		b.WriteString(q)
		if gset != "" {
			b.WriteString(" " + gset)
		} else {
			b.WriteString(";")
		}
		b.WriteString("\n")
		if pipelined && strings.EqualFold(q, "commit") {
			b.WriteString("\\endpipeline\n\\startpipeline\n")
		}
	}
	if pipelined {
		b.WriteString("\\endpipeline\n")
	}
	return strings.ReplaceAll(b.String(), "\\startpipeline\n\\endpipeline\n", ""), nil
}

func literal(v any, email string, customerID int64, custRef string, afterCustomer bool, uuids map[string]int) (string, error) {
	switch x := v.(type) {
	case nil:
		return "NULL", nil
	case string:
		switch {
		case x == email:
			return "(:u::text || '@bench.example')", nil
		case uuidRe.MatchString(x):
			n, ok := uuids[x]
			if !ok {
				n = len(uuids)
				uuids[x] = n
			}
			return fmt.Sprintf("(:u::text || '-%d')", n), nil
		case hex64Re.MatchString(x):
			return "(:u::text || '-fingerprint')", nil
		case !strings.HasPrefix(x, "{") && !strings.HasPrefix(x, "[") && uuidInRe.MatchString(x):
			// A key derived from an id, like the payment's "order:<id>".
			parts := []string{}
			rest := x
			for {
				loc := uuidInRe.FindStringIndex(rest)
				if loc == nil {
					break
				}
				id := rest[loc[0]:loc[1]]
				n, ok := uuids[id]
				if !ok {
					n = len(uuids)
					uuids[id] = n
				}
				parts = append(parts, quote(rest[:loc[0]]), fmt.Sprintf(":u::text || '-%d'", n))
				rest = rest[loc[1]:]
			}
			parts = append(parts, quote(rest))
			return "(" + strings.Join(parts, " || ") + ")", nil
		}
		return quote(x), nil
	case []byte:
		return `'\x` + hex.EncodeToString(x) + `'`, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return intLiteral(x, customerID, custRef, afterCustomer), nil
	case int:
		return intLiteral(int64(x), customerID, custRef, afterCustomer), nil
	case int32:
		return intLiteral(int64(x), customerID, custRef, afterCustomer), nil
	case ladle.Money:
		return strconv.FormatInt(int64(x), 10), nil
	case time.Time:
		return quote(x.UTC().Format("2006-01-02 15:04:05.999999Z07:00")), nil
	case *time.Time:
		if x == nil {
			return "NULL", nil
		}
		return quote(x.UTC().Format("2006-01-02 15:04:05.999999Z07:00")), nil
	case json.RawMessage:
		return quote(string(x)), nil
	case fmt.Stringer:
		return quote(x.String()), nil
	}
	return "", fmt.Errorf("bench: cannot write a %T argument as a literal", v)
}

func intLiteral(x, customerID int64, custRef string, afterCustomer bool) string {
	if afterCustomer && x == customerID {
		return custRef
	}
	return strconv.FormatInt(x, 10)
}

// quote writes s as an SQL string literal. pgbench reads every ":name" in a
// script as a variable, quotes or not, so a colon is written as an escape
// in an E” literal: the server still sees the same constant.
func quote(s string) string {
	if !strings.Contains(s, ":") {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	r := strings.NewReplacer(`\`, `\\`, "'", `\'`, ":", `\x3a`)
	return "E'" + r.Replace(s) + "'"
}

func scriptPath(script string) string {
	sum := sha256.Sum256([]byte(script))
	return filepath.Join(os.TempDir(), "ladle-bench-order-"+hex.EncodeToString(sum[:6])+".sql")
}

var tpsRe = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
var latRe = regexp.MustCompile(`latency average = ([0-9.]+) ms`)

func runPGBench(ctx context.Context, cfg OrdersConfig, schemaURL, script string) (roundResult, error) {
	u, err := url.Parse(schemaURL)
	if err != nil {
		return roundResult{}, err
	}
	schema := u.Query().Get("search_path")
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	secs := max(1, int(cfg.Duration.Seconds()))
	cmd := exec.CommandContext(ctx, cfg.PGBench, "-n", "-M", "prepared", "-c", strconv.Itoa(cfg.Clients),
		"-j", strconv.Itoa(min(cfg.Clients, runtime.GOMAXPROCS(0))), "-T", strconv.Itoa(secs), "-f", script, u.String())
	cmd.Env = append(os.Environ(), "PGOPTIONS=-c search_path="+schema)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return roundResult{}, fmt.Errorf("%v: %s", err, out)
	}
	m := tpsRe.FindSubmatch(out)
	if m == nil {
		return roundResult{}, fmt.Errorf("no tps in pgbench output: %s", out)
	}
	if bytes.Contains(out, []byte("failed: ")) && !bytes.Contains(out, []byte("failed: 0 ")) {
		return roundResult{}, fmt.Errorf("pgbench transactions failed: %s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	r := roundResult{perSec: tps}
	if l := latRe.FindSubmatch(out); l != nil {
		ms, _ := strconv.ParseFloat(string(l[1]), 64)
		r.p50 = time.Duration(ms * float64(time.Millisecond))
	}
	return r, nil
}

// freshSchema creates a schema of its own under base and returns a URL that
// uses it, and a func that drops it.
func freshSchema(ctx context.Context, base string) (string, func(), error) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("bench: create schema: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		_, _ = db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	}, nil
}
