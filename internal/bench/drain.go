package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/autoscale"
	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/worker"
)

// DrainConfig configures `ladle bench drain`.
type DrainConfig struct {
	Out    io.Writer
	Binary string // the ladle binary for the child processes (default: this one)
	// Events is the backlog each run drains (default 20,000).
	Events int
	// Latency is each event's handling time: the downstream's (an SMTP
	// hand-over, a provider call), spent waiting, not computing.
	Latency time.Duration
	// Min and Max bound the autoscaled pool; the fixed pools run Min and
	// Max handlers.
	Min, Max int
	// Target is the autoscaler's drain target (autoscale.Config.Target,
	// default 5s as in ladle serve).
	Target time.Duration
	Rounds int
	// Child runs one drain in this process ("auto", "min" or "max") and
	// prints its result as JSON: how the parent runs each in a process of
	// its own, to measure its peak RSS alone.
	Child string
}

type drainResult struct {
	Seconds     float64 `json:"seconds"`
	PeakWorkers int     `json:"peak_workers"`
	Handled     int64   `json:"handled"`
	Duplicates  int64   `json:"duplicates"`
}

var drainModes = []string{"auto", "min", "max"}

// Drain times how long a worker takes to drain a backlog of Events events
// already in JetStream, with the autoscaled pool (Min..Max) beside fixed
// pools of Min and Max handlers, each run in a child process (for its peak
// RSS), alternating the three in every round.
func Drain(ctx context.Context, cfg DrainConfig) error {
	if cfg.Events <= 0 {
		cfg.Events = 20000
	}
	if cfg.Latency <= 0 {
		cfg.Latency = 2 * time.Millisecond
	}
	cfg.Min = max(cfg.Min, 1)
	cfg.Max = max(cfg.Max, cfg.Min)
	cfg.Rounds = max(cfg.Rounds, 1)
	if cfg.Target <= 0 {
		cfg.Target = 5 * time.Second
	}
	if cfg.Child != "" {
		return drainChild(ctx, cfg)
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.Binary = exe
	}
	secs := map[string][]float64{}
	rss := map[string][]float64{}
	peak := map[string][]float64{}
	for round := range cfg.Rounds {
		for i := range drainModes {
			mode := drainModes[(i+round)%len(drainModes)] // rotate who goes first
			res, maxRSS, err := runDrainChild(ctx, cfg, mode)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, mode, err)
			}
			if res.Handled != int64(cfg.Events) || res.Duplicates != 0 {
				return fmt.Errorf("round %d, %s: handled %d of %d, %d duplicates", round+1, mode, res.Handled, cfg.Events, res.Duplicates)
			}
			secs[mode] = append(secs[mode], res.Seconds)
			rss[mode] = append(rss[mode], maxRSS)
			peak[mode] = append(peak[mode], float64(res.PeakWorkers))
			fmt.Fprintf(os.Stderr, "round %d %-4s %.2fs peak %d workers, %.0f MiB\n", round+1, mode, res.Seconds, res.PeakWorkers, maxRSS)
		}
	}
	fmt.Fprintf(cfg.Out, "Drain of %d events already in JetStream (embedded, sync 1s), %v per event (downstream wait), autoscaler target %v, %d rounds, each run a child process; medians [min–max]\n\n",
		cfg.Events, cfg.Latency, cfg.Target, cfg.Rounds)
	names := map[string]string{
		"auto": fmt.Sprintf("autoscaled %d–%d", cfg.Min, cfg.Max),
		"min":  fmt.Sprintf("fixed %d (minimum)", cfg.Min),
		"max":  fmt.Sprintf("fixed %d (maximum)", cfg.Max),
	}
	f2 := func(xs []float64) string {
		return fmt.Sprintf("%.2f [%.2f–%.2f]", median(xs), slices.Min(xs), slices.Max(xs))
	}
	var rows [][]string
	for _, m := range drainModes {
		rows = append(rows, []string{names[m], f2(secs[m]),
			fmt.Sprintf("%.2f", median(secs[m])/median(secs["max"])),
			fmt.Sprintf("%.0f", float64(cfg.Events)/median(secs[m])),
			fmt.Sprintf("%.0f", median(peak[m])), fmtRange(rss[m])})
	}
	printTable(cfg.Out, []string{"pool", "drain s", "vs fixed max", "events/s", "peak workers", "peak RSS MiB"}, rows)
	return nil
}

// runDrainChild runs one drain in a child process and returns its result
// and peak RSS in MiB.
func runDrainChild(ctx context.Context, cfg DrainConfig, mode string) (drainResult, float64, error) {
	var res drainResult
	cmd := exec.CommandContext(ctx, cfg.Binary, "bench", "drain", "--child", mode,
		"--events", strconv.Itoa(cfg.Events), "--latency", cfg.Latency.String(),
		"--min", strconv.Itoa(cfg.Min), "--max", strconv.Itoa(cfg.Max), "--target", cfg.Target.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return res, 0, err
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, 0, fmt.Errorf("child said %q: %w", strings.TrimSpace(string(out)), err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return res, 0, fmt.Errorf("no rusage")
	}
	return res, float64(ru.Maxrss) / 1024, nil // Linux: KiB
}

// noDeadLetters is the drain's dead-letter store: a drain has no failing
// events, and one would make the run fail.
type noDeadLetters struct{ n atomic.Int64 }

func (d *noDeadLetters) AddDeadLetter(context.Context, *ladle.DeadLetter) (bool, error) {
	d.n.Add(1)
	return true, nil
}

func drainChild(ctx context.Context, cfg DrainConfig) error {
	dir, err := os.MkdirTemp("", "ladle-drain-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)
	b, err := broker.Open(ctx, broker.Config{DataDir: dir, SyncInterval: time.Second, Stream: "DRAIN",
		SubjectPrefix: "drain.events", Name: "ladle-drain", Logger: quiet})
	if err != nil {
		return err
	}
	defer b.Close()

	// The backlog, published before any worker runs.
	const batch = 1000
	evs := make([]ladle.Event, 0, batch)
	for i := range cfg.Events {
		evs = append(evs, ladle.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: "bench.drain", RestaurantID: 1,
			AggregateID: strconv.Itoa(i), Payload: json.RawMessage(`{}`), CreatedAt: time.Now()})
		if len(evs) == batch || i == cfg.Events-1 {
			if acked, err := b.PublishEvents(ctx, evs); err != nil || len(acked) != len(evs) {
				return fmt.Errorf("publish: %d of %d acked: %v", len(acked), len(evs), err)
			}
			evs = evs[:0]
		}
	}

	// The effect: each event id recorded once; a second delivery of a done
	// event counts as a duplicate (and fails the bench).
	var seen sync.Map
	var handled, dups atomic.Int64
	done := make(chan struct{})
	c := worker.Consumer{Name: "drain", EventTypes: []string{"bench.drain"}, AckWait: 30 * time.Second,
		Handle: func(ctx context.Context, ev ladle.Event) error {
			select {
			case <-time.After(cfg.Latency):
			case <-ctx.Done():
				return ctx.Err()
			}
			if _, dup := seen.LoadOrStore(ev.ID, true); dup {
				dups.Add(1)
				return nil
			}
			if handled.Add(1) == int64(cfg.Events) {
				close(done)
			}
			return nil
		}}
	switch cfg.Child {
	case "auto":
		c.Scale = &autoscale.Config{Min: cfg.Min, Max: cfg.Max, Target: cfg.Target}
	case "min":
		c.Concurrency = cfg.Min
	case "max":
		c.Concurrency = cfg.Max
	default:
		return fmt.Errorf("--child %q: want auto, min or max", cfg.Child)
	}
	w := worker.New(worker.Config{Broker: b, DeadLetters: &noDeadLetters{}, Logger: quiet}, c)
	start := time.Now()
	if err := w.Start(ctx); err != nil {
		return err
	}
	peak := 0
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	limit := time.After(10 * time.Minute)
wait:
	for {
		select {
		case <-done:
			break wait
		case <-tick.C:
			for _, p := range w.Pools() {
				if p.Durable == "drain" {
					peak = max(peak, p.Workers)
				}
			}
		case <-limit:
			w.Stop()
			return fmt.Errorf("not drained after 10 minutes: %d of %d", handled.Load(), cfg.Events)
		case <-ctx.Done():
			w.Stop()
			return ctx.Err()
		}
	}
	took := time.Since(start)
	w.Stop()
	return json.NewEncoder(os.Stdout).Encode(drainResult{Seconds: took.Seconds(), PeakWorkers: peak,
		Handled: handled.Load(), Duplicates: dups.Load()})
}
