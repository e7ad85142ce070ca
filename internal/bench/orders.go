// Package bench holds Ladle's whole-system benchmarks, run with
// `ladle bench …`. Each prints a table: the figure, the baseline measured in
// the same run (alternating A B A B), their ratio, and the conditions.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
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
	Out         io.Writer
}

// roundResult is one side of one round.
type roundResult struct {
	perSec   float64
	p50, p99 time.Duration
}

// Orders measures order placement over HTTP on PostgreSQL — a real
// loopback HTTP server running the JSON API, the ordering service and the
// test card provider, driven by Clients closed-loop clients with distinct
// Idempotency-Keys and distinct guests — beside pgbench executing, with the
// same number of clients, exactly the SQL statements one order placement
// executes (captured from the driver during one real placement). The target
// is at least 0.6 of pgbench's transactions per second.
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
	out := cfg.Out
	fmt.Fprintf(out, "# Order placement: HTTP POST /orders vs pgbench with the same SQL\n")
	fmt.Fprintf(out, "conditions: %d clients, %s per side per round, %d rounds alternating (pgbench, http), GOMAXPROCS=%d, payment: card via the test provider\n\n",
		cfg.Clients, cfg.Duration, cfg.Rounds, runtime.GOMAXPROCS(0))

	var rows [][]string
	if cfg.PostgresURL != "" {
		pg, bb, script, err := ordersPostgres(ctx, cfg)
		if err != nil {
			return err
		}
		hs, bs := summarize(pg), summarize(bb)
		rows = append(rows,
			[]string{"postgres http orders/s", fmtRange(hs.perSec), "pgbench tx/s (same SQL)", fmtRange(bs.perSec),
				fmt.Sprintf("%.2f", median(hs.perSec)/median(bs.perSec))},
			[]string{"postgres http p50 / p99", fmtLat(hs.p50) + " / " + fmtLat(hs.p99), "pgbench p50 / p99", "(latency avg only) " + fmtLat(bs.p50), ""},
		)
		fmt.Fprintf(out, "pgbench script (statements of one placement, %d lines): see %s\n", strings.Count(script, "\n"), scriptPath(script))
	}
	if cfg.SQLite {
		res, err := ordersSQLite(ctx, cfg)
		if err != nil {
			return err
		}
		s := summarize(res)
		rows = append(rows,
			[]string{"sqlite http orders/s", fmtRange(s.perSec), "", "", ""},
			[]string{"sqlite http p50 / p99", fmtLat(s.p50) + " / " + fmtLat(s.p99), "", "", ""})
	}
	printTable(out, []string{"figure", "median [min–max]", "baseline", "median [min–max]", "ratio"}, rows)
	return nil
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

// ordersPostgres runs the A/B rounds on PostgreSQL.
func ordersPostgres(ctx context.Context, cfg OrdersConfig) (httpRes, pgbenchRes []roundResult, script string, err error) {
	schemaURL, dropSchema, err := freshSchema(ctx, cfg.PostgresURL)
	if err != nil {
		return nil, nil, "", err
	}
	defer dropSchema()

	tracer := &recorder{}
	st, err := sqlstore.Open(ctx, schemaURL, sqlstore.WithPostgresTracer(tracer), sqlstore.WithMaxConns(cfg.Clients+4))
	if err != nil {
		return nil, nil, "", err
	}
	defer st.Close()
	srv, restaurantID, err := benchServer(ctx, st)
	if err != nil {
		return nil, nil, "", err
	}
	defer srv.Close()

	// Keep customer ids and order numbers far from every other integer in
	// the statements (restaurant and item ids, amounts), so the captured
	// values can be told apart when the script is written.
	if _, err := st.DB().ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('customers', 'id'), 7000000)`); err != nil {
		return nil, nil, "", err
	}
	if _, err := st.DB().ExecContext(ctx, `UPDATE restaurants SET next_order_number = 9000000 WHERE id = $1`, restaurantID); err != nil {
		return nil, nil, "", err
	}

	load := newLoad(srv.URL, demo.Slug, menuLines(ctx, st, restaurantID))
	// Capture one placement.
	tracer.on.Store(true)
	email, orderID, err := load.placeOne(ctx)
	tracer.on.Store(false)
	if err != nil {
		return nil, nil, "", err
	}
	o, err := st.Order(ctx, orderID)
	if err != nil {
		return nil, nil, "", err
	}
	script, err = pgbenchScript(tracer.take(), email, o.CustomerID, o.Number)
	if err != nil {
		return nil, nil, "", err
	}
	path := scriptPath(script)
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		return nil, nil, "", err
	}

	for round := range cfg.Rounds {
		b, err := runPGBench(ctx, cfg, schemaURL, path)
		if err != nil {
			return nil, nil, "", fmt.Errorf("pgbench round %d: %w", round+1, err)
		}
		pgbenchRes = append(pgbenchRes, b)
		h := load.run(ctx, cfg.Clients, cfg.Duration)
		if h.errors > 0 {
			return nil, nil, "", fmt.Errorf("http round %d: %d failed requests, first: %s", round+1, h.errors, h.firstErr)
		}
		httpRes = append(httpRes, h.roundResult)
		fmt.Fprintf(cfg.Out, "round %d: pgbench %.0f tx/s, http %.0f orders/s (p50 %s, p99 %s)\n",
			round+1, b.perSec, h.perSec, fmtLat([]time.Duration{h.p50}), fmtLat([]time.Duration{h.p99}))
	}
	fmt.Fprintln(cfg.Out)
	return httpRes, pgbenchRes, script, nil
}

func ordersSQLite(ctx context.Context, cfg OrdersConfig) ([]roundResult, error) {
	dir, err := os.MkdirTemp("", "ladle-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "bench.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return nil, err
	}
	srv, restaurantID, err := benchServer(ctx, st)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	load := newLoad(srv.URL, demo.Slug, menuLines(ctx, st, restaurantID))
	var res []roundResult
	for round := range cfg.Rounds {
		h := load.run(ctx, cfg.Clients, cfg.Duration)
		if h.errors > 0 {
			return nil, fmt.Errorf("sqlite round %d: %d failed requests, first: %s", round+1, h.errors, h.firstErr)
		}
		res = append(res, h.roundResult)
		fmt.Fprintf(cfg.Out, "round %d: sqlite http %.0f orders/s (p50 %s, p99 %s)\n", round+1, h.perSec,
			fmtLat([]time.Duration{h.p50}), fmtLat([]time.Duration{h.p99}))
	}
	fmt.Fprintln(cfg.Out)
	return res, nil
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
	svc := ordering.New(st, payment.NewTestProvider(), []byte("bench-secret-bench-secret"))
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

// load is a closed-loop HTTP load generator placing distinct orders.
type load struct {
	url    string
	lines  []ladle.LineRequest
	client *http.Client
	seq    atomic.Int64
	runID  string
}

func newLoad(base, slug string, lines []ladle.LineRequest) *load {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &load{
		url:    base + "/api/v1/restaurants/" + slug + "/orders",
		lines:  lines,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}, Timeout: 30 * time.Second},
		runID:  hex.EncodeToString(b[:]),
	}
}

func (l *load) body() ([]byte, string) {
	n := l.seq.Add(1)
	email := fmt.Sprintf("guest-%s-%d@bench.example", l.runID, n)
	b, _ := json.Marshal(ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: "Bench Guest", Email: email, Phone: "+12125550100"},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       l.lines,
		Tip:         200,
		Payment:     ladle.PaymentInput{Method: "card", Token: payment.TokenVisa},
	})
	return b, email
}

// placeOne places one order and returns the guest's email and the order id.
func (l *load) placeOne(ctx context.Context) (string, string, error) {
	body, email := l.body()
	status, resp, err := l.post(ctx, body)
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

func (l *load) post(ctx context.Context, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", l.url, bytes.NewReader(body))
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
				body, _ := l.body()
				t0 := time.Now()
				status, resp, err := l.post(ctx, body)
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
// per-run number, and the two values the database hands back (the customer
// id and the order number), which pgbench captures with \gset exactly as
// the application reads them from RETURNING.
func pgbenchScript(stmts []tracedStmt, email string, customerID, number int64) (string, error) {
	if len(stmts) == 0 {
		return "", fmt.Errorf("bench: no statements captured (is the tracer wired?)")
	}
	var b strings.Builder
	b.WriteString("-- One order placement through Ladle's HTTP API, as captured from the driver.\n")
	b.WriteString("\\set u random(1, 9000000000000000000)\n")
	uuids := map[string]int{}
	custSeen, numSeen := false, false
	for _, s := range stmts {
		q := strings.TrimSpace(s.sql)
		gset := ""
		switch {
		case strings.Contains(q, "INSERT INTO customers"):
			q = returningRe.ReplaceAllString(q, "RETURNING $1 AS id")
			gset, custSeen = "\\gset cust_", true
		case strings.Contains(q, "SET next_order_number = next_order_number + 1"):
			q = returningRe.ReplaceAllString(q, "RETURNING $1 AS n")
			gset, numSeen = "\\gset num_", true
		}
		for i := len(s.args); i >= 1; i-- { // from the highest, so $1 does not eat $10
			lit, err := literal(s.args[i-1], email, customerID, number, custSeen && !strings.Contains(q, "INSERT INTO customers"), numSeen && gset == "", uuids)
			if err != nil {
				return "", err
			}
			q = strings.ReplaceAll(q, "$"+strconv.Itoa(i), lit)
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
	}
	return b.String(), nil
}

func literal(v any, email string, customerID, number int64, afterCustomer, afterNumber bool, uuids map[string]int) (string, error) {
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
		return intLiteral(x, customerID, number, afterCustomer, afterNumber), nil
	case int:
		return intLiteral(int64(x), customerID, number, afterCustomer, afterNumber), nil
	case int32:
		return intLiteral(int64(x), customerID, number, afterCustomer, afterNumber), nil
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

func intLiteral(x, customerID, number int64, afterCustomer, afterNumber bool) string {
	switch {
	case afterCustomer && x == customerID:
		return ":cust_id"
	case afterNumber && x == number:
		return ":num_n"
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
	return filepath.Join(os.TempDir(), "ladle-bench-order-"+strconv.Itoa(len(script))+".sql")
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
