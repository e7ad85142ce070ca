package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ladle-dev/ladle/internal/bench"
)

const benchUsage = `Usage: ladle bench NAME [flags]

Benchmarks print a Markdown table: the figure, the baseline measured in the
same run (alternating rounds), the ratio, and the conditions.

  orders   order placement over HTTP on PostgreSQL beside pgbench running the
           same SQL statements; the same HTTP load on SQLite
  menu     the cached menu API beside a bare net/http handler writing the
           same bytes; also 304s and the uncached endpoint
  overload order placement past capacity: the sustainable rate (closed
           loop), then twice that at a constant arrival rate for 30 s against
           a ladle serve child process; shed, accepted p50/p99, throughput vs
           capacity, peak RSS, duplicates
  drain    time to drain a backlog of 20,000 events with the autoscaled pool
           beside fixed pools of its minimum and its maximum, with the peak
           RSS of each (every run a child process)
  campaign a campaign from a ladle serve child process into a counting SMTP
           server: emails/s beside raw SMTP, CPU per email, peak RSS, every
           recipient exactly once, receipt latency at rest vs while sending
  events   events through the whole path (outbox, relay, JetStream, receipt
           email committed) beside raw JetStream publish+consume; and
           commit-to-receipt latency, dev mailbox and SMTP on loopback
`

// runBench runs `ladle bench NAME [flags]`.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, benchUsage)
		return nil
	}
	name, args := args[0], args[1:]
	fset := flag.NewFlagSet("ladle bench "+name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	switch name {
	case "orders":
		cfg := bench.OrdersConfig{Out: stdout}
		fset.StringVar(&cfg.PostgresURL, "postgres-url", getenv("LADLE_TEST_POSTGRES_URL"),
			"PostgreSQL to run on (a schema of its own is made and dropped); empty skips PostgreSQL [LADLE_TEST_POSTGRES_URL]")
		fset.IntVar(&cfg.Clients, "clients", 8, "concurrent clients, HTTP and pgbench alike")
		fset.DurationVar(&cfg.Duration, "duration", 5*time.Second, "length of each side of each round")
		fset.IntVar(&cfg.Rounds, "rounds", 5, "alternating rounds; the table shows medians over them")
		fset.StringVar(&cfg.PGBench, "pgbench", "pgbench", "the pgbench binary")
		fset.BoolVar(&cfg.SQLite, "sqlite", true, "also run the HTTP load on SQLite")
		fset.IntVar(&cfg.Restaurants, "restaurants", 20, "restaurants the many-restaurant rounds spread their clients over (every figure is also measured with one)")
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		return bench.Orders(ctx, cfg)
	case "campaign":
		cfg := bench.CampaignConfig{Out: stdout}
		fset.IntVar(&cfg.Recipients, "recipients", 100_000, "recipients of the campaign (seeded as opted-in customers)")
		fset.StringVar(&cfg.PostgresURL, "postgres-url", getenv("LADLE_TEST_POSTGRES_URL"),
			"PostgreSQL to run on as well (a schema of its own is made and dropped); empty: SQLite only [LADLE_TEST_POSTGRES_URL]")
		fset.BoolVar(&cfg.SQLite, "sqlite", true, "run on SQLite (the embedded default)")
		fset.IntVar(&cfg.Rounds, "rounds", 1, "rounds per database; the table shows medians")
		fset.Float64Var(&cfg.OrderRate, "order-rate", 20, "pay-at-pickup orders per second placed for the receipt-latency figures")
		fset.IntVar(&cfg.Workers, "workers", 8, "--campaign-workers of the child")
		fset.IntVar(&cfg.Pool, "pool", 16, "SMTP connections of the child's campaign pool (and of the baseline)")
		fset.DurationVar(&cfg.Rest, "rest", 25*time.Second, "how long receipt latency is measured at rest, before the campaign and again after it")
		fset.StringVar(&cfg.Compare, "compare", "", "another ladle binary (an earlier build) to run the same way, alternating rounds with this one, and compare")
		fset.StringVar(&cfg.ChildCPUProfile, "child-cpuprofile", "", "write each round's CPU profile of the child (this build's) to PREFIX.<database>.<round>")
		fset.StringVar(&cfg.ChildAllocProfile, "child-allocprofile", "", "write each round's allocation profile of the child (this build's; everything it allocated, written when it stops) to PREFIX.<database>.<round> (go tool pprof -sample_index=alloc_space reads it)")
		fset.StringVar(&cfg.ChildTrace, "child-trace", "", "write each round's execution trace of the child (this build's) to PREFIX.<database>.<round> (go tool trace reads it; about 1 MB a second)")
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		return bench.Campaign(ctx, cfg)
	case "menu":
		cfg := bench.MenuConfig{Out: stdout}
		fset.IntVar(&cfg.Clients, "clients", 16, "concurrent keep-alive connections")
		fset.DurationVar(&cfg.Duration, "duration", 2*time.Second, "measured time per server per round")
		fset.DurationVar(&cfg.Warmup, "warmup", 300*time.Millisecond, "unmeasured warm-up per server per round")
		fset.IntVar(&cfg.Rounds, "rounds", 5, "alternating rounds; the table shows medians over them")
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		return bench.Menu(ctx, cfg)
	case "drain":
		cfg := bench.DrainConfig{Out: stdout}
		fset.IntVar(&cfg.Events, "events", 20000, "events in the backlog")
		fset.DurationVar(&cfg.Latency, "latency", 2*time.Millisecond, "each event's handling time (a downstream wait)")
		fset.IntVar(&cfg.Min, "min", 4, "the autoscaled pool's minimum, and the small fixed pool")
		fset.IntVar(&cfg.Max, "max", 64, "the autoscaled pool's maximum, and the large fixed pool")
		fset.DurationVar(&cfg.Target, "target", 5*time.Second, "the autoscaler's drain target (as in ladle serve)")
		fset.IntVar(&cfg.Rounds, "rounds", 5, "rounds of the three runs (alternating); the table shows medians")
		fset.StringVar(&cfg.Child, "child", "", "internal: run one drain (auto, min or max) and print it as JSON")
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		return bench.Drain(ctx, cfg)
	case "overload":
		cfg := bench.OverloadConfig{Out: stdout}
		var serverFlags string
		fset.StringVar(&cfg.PostgresURL, "postgres-url", getenv("LADLE_TEST_POSTGRES_URL"),
			"PostgreSQL to run on as well (a schema of its own is made and dropped); empty: SQLite only [LADLE_TEST_POSTGRES_URL]")
		fset.BoolVar(&cfg.SQLite, "sqlite", true, "run on SQLite (the embedded default)")
		fset.IntVar(&cfg.Clients, "clients", 16, "closed-loop clients that measure capacity")
		fset.DurationVar(&cfg.Capacity, "capacity-duration", 10*time.Second, "how long capacity is measured (after a 2 s warm-up)")
		fset.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long the overload is offered")
		fset.Float64Var(&cfg.Factor, "factor", 2, "offered rate as a multiple of the measured capacity")
		fset.IntVar(&cfg.Rounds, "rounds", 1, "rounds, each on a fresh server; the table shows medians")
		fset.StringVar(&serverFlags, "server-flags", "", "extra flags for ladle serve, space-separated (e.g. \"--max-inflight-orders 8\")")
		fset.BoolVar(&cfg.Unlimited, "unlimited", false, "also run against a server whose order limiter admits everything, for comparison")
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		cfg.ServerFlags = strings.Fields(serverFlags)
		return bench.Overload(ctx, cfg)
	case "events":
		cfg := bench.EventsConfig{Out: stdout}
		fset.IntVar(&cfg.N, "n", 2000, "events per throughput run")
		fset.IntVar(&cfg.Runs, "runs", 5, "runs of each variant (median reported)")
		fset.IntVar(&cfg.Rate, "rate", 50, "orders per second in the latency runs")
		fset.IntVar(&cfg.LatencyN, "latency-n", 150, "orders per latency run")
		fset.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS (default: embedded)")
		fset.StringVar(&cfg.Sync, "sync", "always", "embedded JetStream sync: always or an interval such as 1s")
		fset.BoolVar(&cfg.SQLiteNormal, "sqlite-normal", false, "SQLite synchronous=NORMAL instead of FULL")
		fset.IntVar(&cfg.Concurrency, "concurrency", 32, "receipt consumer concurrency (the worker's default is 32)")
		fset.BoolVar(&cfg.SkipLatency, "skip-latency", false, "only the throughput figure")
		fset.BoolVar(&cfg.SkipThroughput, "skip-throughput", false, "only the latency figures")
		fset.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		if getenv("BENCH_DEBUG") != "" {
			cfg.Debug = stderr
		}
		return bench.Events(ctx, cfg)
	default:
		fmt.Fprint(stderr, benchUsage)
		return fmt.Errorf("unknown benchmark %q", name)
	}
}
