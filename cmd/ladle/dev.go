package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/devcluster"
	"github.com/ladle-dev/ladle/internal/redact"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

const devUsage = `Usage:
  ladle dev cluster --database-url postgres://… [flags]

Runs the scaled-out shape on this machine: three nats-server nodes clustered
on loopback (JetStream, the event stream at three replicas), API and worker
processes (this binary re-executed as "ladle serve") sharing the PostgreSQL
database, and a load generator: a burst of orders committed at start,
guest orders through the API at a constant rate, and a campaign. It prints
where everything is and, every 5 s, what happened. Ctrl-C (or SIGTERM, or
--duration) stops the load, then every process (workers first, each given
--shutdown-timeout to finish what it holds), then NATS.
`

// selfExec is how dev cluster runs ladle: this binary. Tests replace it
// with the test binary re-executing itself (TestHelperServe).
var selfExec = func() ([]string, error) {
	exe, err := os.Executable()
	return []string{exe}, err
}

func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "cluster" {
		fmt.Fprint(stderr, devUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errors.New("ladle dev: the only subcommand is cluster")
	}
	fs := flag.NewFlagSet("ladle dev cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", getenv("LADLE_DATABASE_URL"), "PostgreSQL database every process shares (required; also LADLE_DATABASE_URL)")
	dir := fs.String("dir", "", "folder for the NATS stores, the processes' data dirs and cluster.log (empty: a temporary one, removed at exit)")
	apis := fs.Int("apis", 2, "API processes")
	workers := fs.Int("workers", 2, "worker processes")
	wmin := fs.Int("worker-min", 1, "each worker's fewest handlers per email consumer")
	wmax := fs.Int("worker-max", 16, "each worker's most handlers per email consumer")
	scaleDown := fs.Duration("worker-scale-down-window", 10*time.Second, "each worker's scale-down window")
	burst := fs.Int("burst", 2000, "orders committed straight to the database at start (a backlog for the workers)")
	rate := fs.Float64("order-rate", 10, "guest orders per second through the API processes, at a constant arrival rate (0: none)")
	recipients := fs.Int("campaign", 500, "recipients of a campaign imported and sent through the staff API at start (0: none)")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until Ctrl-C or SIGTERM)")
	grace := fs.Duration("shutdown-timeout", 20*time.Second, "how long each process may take to stop before it is killed")
	fs.Usage = func() { fmt.Fprint(stderr, devUsage+"\nFlags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if !strings.HasPrefix(*dbURL, "postgres://") && !strings.HasPrefix(*dbURL, "postgresql://") {
		return errors.New("ladle dev cluster needs --database-url postgres://… (or LADLE_DATABASE_URL): every API and worker process shares that PostgreSQL database")
	}
	if *apis < 1 || *workers < 1 || *wmin < 1 || *wmax < *wmin || *burst < 0 || *rate < 0 || *recipients < 0 {
		return errors.New("need --apis ≥ 1, --workers ≥ 1, 1 ≤ --worker-min ≤ --worker-max, and no negative load")
	}
	err := devCluster(ctx, devOptions{dbURL: *dbURL, dir: *dir, apis: *apis, workers: *workers,
		workerArgs: []string{"--worker-min", strconv.Itoa(*wmin), "--worker-max", strconv.Itoa(*wmax),
			"--worker-scale-down-window", scaleDown.String()},
		burst: *burst, rate: *rate, recipients: *recipients, duration: *duration, grace: *grace}, stdout)
	if err != nil {
		return errors.New(redact.String(err.Error(), redact.Secrets(*dbURL)))
	}
	return nil
}

type devOptions struct {
	dbURL, dir        string
	apis, workers     int
	workerArgs        []string
	burst, recipients int
	rate              float64
	duration, grace   time.Duration
}

func devCluster(ctx context.Context, o devOptions, stdout io.Writer) error {
	if o.dir == "" {
		d, err := os.MkdirTemp("", "ladle-dev-cluster-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	logPath := filepath.Join(o.dir, "cluster.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	exe, err := selfExec()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Starting three NATS nodes, %d API and %d worker processes (logs: %s)…\n", o.apis, o.workers, logPath)
	c, err := devcluster.Start(devcluster.Config{DatabaseURL: o.dbURL, Dir: o.dir, Exec: exe, APIs: o.apis, Workers: o.workers,
		WorkerArgs: o.workerArgs, Log: logf, Env: map[string]string{"LADLE_SHUTDOWN_TIMEOUT": o.grace.String()}})
	if err != nil {
		return err
	}
	// Bounded: each process gets the grace, then is killed; NATS stops last.
	defer func() {
		fmt.Fprintln(stdout, "Stopping: workers, then API processes, then NATS…")
		c.Stop(o.grace + 5*time.Second)
		fmt.Fprintln(stdout, "Stopped.")
	}()
	fmt.Fprintf(stdout, "NATS (JetStream, stream %s at 3 replicas): %s\n", c.Stream, c.NATS.URL)
	for _, p := range c.APIs {
		fmt.Fprintf(stdout, "%s: %s  (metrics %s)\n", p.Name, p.Base, p.Metrics)
	}
	for _, p := range c.Workers {
		fmt.Fprintf(stdout, "%s: metrics %s\n", p.Name, p.Metrics)
	}
	fmt.Fprintf(stdout, "Storefront: %s/r/%s   Staff: %s/admin/login  (%s / %s; System page under the restaurant)\n",
		c.APIs[0].Base, demo.Slug, c.APIs[0].Base, demo.StaffEmail, demo.StaffPassword)

	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	st, err := sqlstore.Open(ctx, o.dbURL, sqlstore.WithLogger(slog.New(slog.NewJSONHandler(logf, nil))), sqlstore.WithMaxConns(12))
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := st.RestaurantBySlug(ctx, demo.Slug)
	if err != nil {
		return err
	}
	item, err := devcluster.PlainItem(ctx, st, r.ID)
	if err != nil {
		return err
	}
	token := ""
	if o.recipients > 0 {
		if token, err = devcluster.NewOwnerToken(ctx, st); err != nil {
			return err
		}
	}
	var bases []string
	for _, p := range c.APIs {
		bases = append(bases, p.Base)
	}
	var placed atomic.Int64
	var stats devcluster.LoadStats
	loadErr := make(chan error, 2)
	go func() { loadErr <- devcluster.Burst(ctx, st, o.burst, 8, &placed) }()
	go func() {
		loadErr <- devcluster.RunLoad(ctx, devcluster.LoadConfig{APIs: bases, OrderRate: o.rate, Recipients: o.recipients, Token: token},
			item.ID, &stats)
	}()
	fmt.Fprintf(stdout, "Load: a burst of %d orders, %.3g orders/s through the API, a campaign to %d. Ctrl-C stops.\n", o.burst, o.rate, o.recipients)

	db := st.DB()
	report := func() {
		fmt.Fprintf(stdout, "%s  burst %d/%d  api orders %d created, %d shed, %d failed, %d dropped  receipts sent %d  campaign sent %d",
			time.Now().Format("15:04:05"), placed.Load(), o.burst, stats.Created.Load(), stats.Shed.Load(), stats.Failed.Load(),
			stats.Dropped.Load(), count(db, `SELECT count(*) FROM emails WHERE kind = 'receipt' AND status = 'sent'`),
			count(db, `SELECT count(*) FROM campaign_sends WHERE status = 'sent'`))
		for _, p := range c.Workers {
			fmt.Fprintf(stdout, "  %s receipt pool %d", p.Name, p.Workers("receipt"))
		}
		if len(c.Workers) > 0 {
			fmt.Fprintf(stdout, " (pending %d)", c.Workers[0].Gauge("ladle_consumer_pending", "receipt"))
		}
		fmt.Fprintln(stdout)
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	running := 2
	for {
		select {
		case err := <-loadErr:
			running--
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("load: %w", err)
			}
			continue
		case <-tick.C:
			report()
			continue
		case <-ctx.Done():
		}
		break
	}
	for ; running > 0; running-- {
		<-loadErr // both end with ctx, within a request's timeout
	}
	report()
	return nil
}

// count runs a count query, -1 on error (a figure for the status line).
func count(db *sql.DB, q string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n int64
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return -1
	}
	return n
}
