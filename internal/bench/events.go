package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/outbox"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/worker"
)

// EventsConfig configures the event path benchmark.
type EventsConfig struct {
	N              int    // events per throughput run
	Runs           int    // runs of each variant; medians are over these
	Rate           int    // orders per second in the latency runs
	LatencyN       int    // orders per latency run
	NATSURL        string // external NATS; empty runs an embedded server
	Sync           string // embedded JetStream sync: "always" or an interval such as "1s"
	SQLiteNormal   bool   // SQLite synchronous=NORMAL instead of FULL
	Concurrency    int    // receipt consumer concurrency (the worker's default is 32)
	SkipLatency    bool   // only the throughput figure
	SkipThroughput bool   // only the latency figures
	CPUProfile     string // write a CPU profile of the whole run to this file
	Out            io.Writer
	// Debug, when set, gets the receipt count and outbox backlog every 2s
	// of a throughput run (for a run that seems stuck).
	Debug io.Writer
}

// Events measures Ladle's event path against raw JetStream in the same run,
// alternating the two (A B A B …).
//
// Throughput: events through the whole path per second — N order.placed rows
// in the outbox → relay → JetStream → receipt consumer → email recorded and
// inbox row committed (dev mailbox). Baseline: raw JetStream, the same N
// messages of the same size published asynchronously with Nats-Msg-Id and
// consumed with a pull consumer and explicit acks, concurrently. Target
// ratio ≥ 0.5.
//
// Latency: commit-to-receipt p50/p99 — orders committed at a constant rate
// (open model), until the receipt is recorded sent (dev mailbox) or received
// by an SMTP server on loopback (go-smtp). Baseline: raw JetStream
// publish-to-receive at the same rate.
//
// Each run gets a fresh SQLite file and a fresh broker (embedded, in a new
// directory, or a new stream on NATSURL). Durability is the default on both
// sides (SQLite synchronous=FULL, JetStream SyncAlways) unless Sync or
// SQLiteNormal say otherwise; the conditions are printed.
func Events(ctx context.Context, cfg EventsConfig) error {
	if cfg.N <= 0 {
		cfg.N = 2000
	}
	if cfg.Runs <= 0 {
		cfg.Runs = 5
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 50
	}
	if cfg.LatencyN <= 0 {
		cfg.LatencyN = 150
	}
	if cfg.Sync == "" {
		cfg.Sync = "always"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	syncIv, err := broker.ParseSync(cfg.Sync)
	if err != nil {
		return err
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	e := &eventsBench{cfg: cfg, syncIv: syncIv}
	out := cfg.Out
	fmt.Fprintf(out, "# Events: the whole event path vs raw JetStream publish+consume\n")
	fmt.Fprintf(out, "conditions: %s\n\n", e.conditions())

	var rows [][]string
	if !cfg.SkipThroughput {
		var pipe, raw []float64
		for i := range cfg.Runs {
			p, err := e.pipelineThroughput(ctx)
			if err != nil {
				return fmt.Errorf("pipeline run %d: %w", i+1, err)
			}
			r, err := e.rawThroughput(ctx)
			if err != nil {
				return fmt.Errorf("raw run %d: %w", i+1, err)
			}
			pipe, raw = append(pipe, p), append(raw, r)
			fmt.Fprintf(out, "round %d: whole path %.0f events/s, raw JetStream %.0f msgs/s\n", i+1, p, r)
		}
		rows = append(rows, []string{"events/s, whole path (outbox→relay→JetStream→receipt committed)", fmtRange(pipe),
			"msgs/s, raw JetStream pub+consume", fmtRange(raw), fmt.Sprintf("%.2f", median(pipe)/median(raw))})
	}
	if !cfg.SkipLatency {
		var mbox50, mbox99, smtp50, smtp99, raw50, raw99 []float64
		for i := range cfg.Runs {
			m, err := e.pipelineLatency(ctx, false)
			if err != nil {
				return fmt.Errorf("mailbox latency run %d: %w", i+1, err)
			}
			s, err := e.pipelineLatency(ctx, true)
			if err != nil {
				return fmt.Errorf("smtp latency run %d: %w", i+1, err)
			}
			r, err := e.rawLatency(ctx)
			if err != nil {
				return fmt.Errorf("raw latency run %d: %w", i+1, err)
			}
			mbox50, mbox99 = append(mbox50, ms(pct(m, 50))), append(mbox99, ms(pct(m, 99)))
			smtp50, smtp99 = append(smtp50, ms(pct(s, 50))), append(smtp99, ms(pct(s, 99)))
			raw50, raw99 = append(raw50, ms(pct(r, 50))), append(raw99, ms(pct(r, 99)))
			fmt.Fprintf(out, "round %d: commit→receipt p50/p99 mailbox %.1f/%.1f ms, smtp %.1f/%.1f ms; raw JetStream %.2f/%.2f ms\n",
				i+1, ms(pct(m, 50)), ms(pct(m, 99)), ms(pct(s, 50)), ms(pct(s, 99)), ms(pct(r, 50)), ms(pct(r, 99)))
		}
		// Latencies keep their decimals: raw JetStream is well under a
		// millisecond, which fmtRange's whole numbers would show as 0.
		row := func(figure string, v []float64, base string, b []float64) []string {
			return []string{figure, fmtRangeF(v, "%.1f"), base, fmtRangeF(b, "%.2f"), fmt.Sprintf("%.0f×", median(v)/median(b))}
		}
		rows = append(rows,
			row("commit→receipt p50, dev mailbox (ms)", mbox50, "raw JetStream pub→recv p50 (ms)", raw50),
			row("commit→receipt p99, dev mailbox (ms)", mbox99, "raw JetStream pub→recv p99 (ms)", raw99),
			row("commit→receipt p50, SMTP on loopback (ms)", smtp50, "raw JetStream pub→recv p50 (ms)", raw50),
			row("commit→receipt p99, SMTP on loopback (ms)", smtp99, "raw JetStream pub→recv p99 (ms)", raw99),
		)
	}
	fmt.Fprintln(out)
	printTable(out, []string{"figure", "median [min–max]", "baseline", "median [min–max]", "ratio"}, rows)
	return nil
}

// eventsBench is one run of the benchmark: its settings, and the size of an
// order.placed message as the relay publishes it (measured from a real order
// in the first latency run; 1500 bytes until then).
type eventsBench struct {
	cfg        EventsConfig
	syncIv     time.Duration
	sampleSize atomic.Int64
}

var eventsLog = slog.New(slog.DiscardHandler)

func (e *eventsBench) conditions() string {
	cfg := e.cfg
	nats := "embedded nats-server (in-process connection)"
	if cfg.NATSURL != "" {
		nats = "external NATS " + cfg.NATSURL
	}
	js := "JetStream SyncAlways"
	if e.syncIv != broker.SyncAlways {
		js = "JetStream sync_interval " + e.syncIv.String()
	}
	if cfg.NATSURL != "" {
		js = "JetStream sync as the server is configured"
	}
	sq := "SQLite synchronous=FULL"
	if cfg.SQLiteNormal {
		sq = "SQLite synchronous=NORMAL"
	}
	return fmt.Sprintf("%s, %s, %s, %d CPUs, GOMAXPROCS %d, N=%d events/run, receipt concurrency %d, latency %d orders at %d/s, %d runs alternating",
		nats, js, sq, runtime.NumCPU(), runtime.GOMAXPROCS(0), cfg.N, cfg.Concurrency, cfg.LatencyN, cfg.Rate, cfg.Runs)
}

// ---- setup ---------------------------------------------------------------------

// eventsRig is one run's store, broker and fixture order.
type eventsRig struct {
	e     *eventsBench
	dir   string
	store *sqlstore.Store
	b     *broker.Broker
	rest  *ladle.Restaurant
	order *ladle.Order // a real order, whose payload every event carries
	close []func()
}

func (r *eventsRig) Close() {
	for i := len(r.close) - 1; i >= 0; i-- {
		r.close[i]()
	}
	os.RemoveAll(r.dir)
}

func (e *eventsBench) newRig(ctx context.Context) (*eventsRig, error) {
	dir, err := os.MkdirTemp("", "ladle-bench-events-")
	if err != nil {
		return nil, err
	}
	r := &eventsRig{e: e, dir: dir}
	opts := []sqlstore.Option{sqlstore.WithLogger(eventsLog)}
	if e.cfg.SQLiteNormal {
		opts = append(opts, sqlstore.WithSQLiteSynchronousNormal())
	}
	if r.store, err = sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "ladle.db"), opts...); err != nil {
		r.Close()
		return nil, err
	}
	r.close = append(r.close, func() { r.store.Close() })
	if err := r.store.Migrate(ctx); err != nil {
		r.Close()
		return nil, err
	}
	if _, err := demo.Seed(ctx, r.store, func(string) (string, error) { return "$argon2id$bench", nil }); err != nil {
		r.Close()
		return nil, err
	}
	if r.rest, err = r.store.RestaurantBySlug(ctx, demo.Slug); err != nil {
		r.Close()
		return nil, err
	}
	if r.b, err = e.openBroker(ctx, dir); err != nil {
		r.Close()
		return nil, err
	}
	r.close = append(r.close, func() { closeEventsBroker(r.b) })
	if r.order, err = r.place(ctx, 0); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// openBroker opens a broker with a stream and subjects of its own, so runs
// on a shared external NATS do not see each other's messages.
func (e *eventsBench) openBroker(ctx context.Context, dir string) (*broker.Broker, error) {
	id := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	cfg := broker.Config{URL: e.cfg.NATSURL, DataDir: dir, SyncInterval: e.syncIv, Logger: eventsLog,
		Stream: "BENCH_" + strings.ToUpper(id), SubjectPrefix: "bench" + id + ".events"}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := b.Ready(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// closeEventsBroker deletes the run's stream on an external NATS (an
// embedded server's directory is removed with the run) and closes b. It
// runs on its own context: cleanup must happen even after a cancel.
func closeEventsBroker(b *broker.Broker) {
	if !b.Embedded() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.JetStream().DeleteStream(ctx, b.StreamName())
	}
	b.Close()
}

// place places one pay-at-pickup order of the first available item.
func (r *eventsRig) place(ctx context.Context, n int) (*ladle.Order, error) {
	menu, err := r.store.Menu(ctx, r.rest.ID)
	if err != nil {
		return nil, err
	}
	var item *ladle.Item
	for ci := range menu.Categories {
		for ii := range menu.Categories[ci].Items {
			it := &menu.Categories[ci].Items[ii]
			if it.Available && len(it.ModifierGroups) == 0 && item == nil {
				item = it
			}
		}
	}
	if item == nil {
		return nil, fmt.Errorf("the demo menu has no plain item")
	}
	req := &ladle.OrderRequest{
		Customer:         ladle.CustomerInput{Name: fmt.Sprintf("Guest %d", n), Email: fmt.Sprintf("guest%d@example.com", n)},
		Fulfillment:      ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:            []ladle.LineRequest{{ItemID: item.ID, Quantity: 2}},
		Payment:          ladle.PaymentInput{Method: "pay_at_pickup"},
		ConfirmDuplicate: true,
	}
	req.Normalize()
	return r.store.CreateOrder(ctx, ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(), RestaurantID: r.rest.ID, Request: req, Now: ladle.Now()})
}

// start runs the relay and the email consumers over transport.
func (r *eventsRig) start(ctx context.Context, tr mail.Transport) error {
	relay := outbox.New(outbox.Config{Store: r.store, Publisher: r.b, Logger: eventsLog})
	r.store.OnEventsCommitted(relay.Wake)
	tpl, err := mail.NewTemplates("")
	if err != nil {
		return err
	}
	cons, err := worker.EmailConsumers(worker.EmailConfig{Store: r.store, Transport: tr, Templates: tpl,
		From: "Ladle <orders@bench.ladle.test>", StatusURL: func(id string) string { return "https://bench.ladle.test/orders/" + id },
		Concurrency: r.e.cfg.Concurrency})
	if err != nil {
		return err
	}
	w := worker.New(worker.Config{Broker: r.b, DeadLetters: r.store, Logger: eventsLog}, cons...)
	if err := w.Start(ctx); err != nil {
		return err
	}
	r.close = append(r.close, w.Stop)
	if err := relay.Start(ctx); err != nil {
		return err
	}
	r.close = append(r.close, relay.Stop)
	relay.Wake()
	return nil
}

func (r *eventsRig) sentReceipts() (int, error) {
	var n int
	// The inbox row commits with the email (narrow rows, so counting them
	// costs the run little).
	err := r.store.ReadDB().QueryRow(`SELECT count(*) FROM inbox WHERE consumer = 'receipt'`).Scan(&n)
	return n, err
}

// ---- throughput ----------------------------------------------------------------

// pipelineThroughput fills the outbox with N order.placed events (the
// payload of a real order, each its own event id), then times relay +
// consumers until every receipt is committed.
func (e *eventsBench) pipelineThroughput(ctx context.Context) (float64, error) {
	r, err := e.newRig(ctx)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	payload, err := json.Marshal(r.order)
	if err != nil {
		return 0, err
	}
	// The fixture order's own event is in the outbox already: the run
	// handles N+1 receipts.
	n := e.cfg.N
	want := n + 1
	db := r.store.DB()
	const batch = 200
	for i := 0; i < n; i += batch {
		tx, err := db.Begin()
		if err != nil {
			return 0, err
		}
		for j := i; j < min(i+batch, n); j++ {
			_, err := tx.Exec(`INSERT INTO outbox (id, type, restaurant_id, aggregate_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				uuid.Must(uuid.NewV7()).String(), ladle.EventOrderPlaced, r.rest.ID, r.order.ID, string(payload), ladle.Now())
			if err != nil {
				tx.Rollback()
				return 0, err
			}
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	if err := r.start(ctx, mail.DevMailbox{}); err != nil {
		return 0, err
	}
	deadline := start.Add(5 * time.Minute)
	var lastLog time.Time
	for {
		got, err := r.sentReceipts()
		if err != nil {
			return 0, err
		}
		if got >= want {
			break
		}
		if time.Now().After(deadline) {
			backlog, _, _ := r.store.OutboxBacklog(ctx)
			return 0, fmt.Errorf("only %d of %d receipts after 5 minutes (outbox backlog %d)", got, want, backlog)
		}
		if e.cfg.Debug != nil && time.Since(lastLog) > 2*time.Second {
			backlog, _, _ := r.store.OutboxBacklog(ctx)
			fmt.Fprintf(e.cfg.Debug, "  %d/%d receipts, outbox backlog %d\n", got, want, backlog)
			lastLog = time.Now()
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return float64(want) / time.Since(start).Seconds(), nil
}

// rawThroughput publishes N messages of the same size with Nats-Msg-Id
// asynchronously while a pull consumer fetches and acks them, and times
// until the consumer has acked all N.
func (e *eventsBench) rawThroughput(ctx context.Context) (float64, error) {
	dir, err := os.MkdirTemp("", "ladle-bench-raw-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	b, err := e.openBroker(ctx, dir)
	if err != nil {
		return 0, err
	}
	defer closeEventsBroker(b)
	body := make([]byte, e.eventSize())
	for i := range body {
		body[i] = 'x'
	}
	subject := b.Subject(ladle.EventOrderPlaced)
	cons, err := b.Consumer(ctx, jetstream.ConsumerConfig{Durable: "raw", FilterSubject: subject,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 1000})
	if err != nil {
		return 0, err
	}
	n := e.cfg.N
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		got := 0
		for got < n {
			batch, err := cons.Fetch(100, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				done <- err
				return
			}
			for m := range batch.Messages() {
				_ = m.Ack()
				got++
			}
			if batch.Error() != nil && got < n {
				done <- batch.Error()
				return
			}
		}
		done <- nil
	}()
	js := b.JetStream()
	futures := make([]jetstream.PubAckFuture, 0, 256)
	for i := range n {
		msg := nats.NewMsg(subject)
		msg.Data = body
		f, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(fmt.Sprintf("raw-%d", i)))
		if err != nil {
			return 0, err
		}
		futures = append(futures, f)
		if len(futures) == cap(futures) { // the relay's batch: publish, then wait for the acks
			if err := waitAcks(futures); err != nil {
				return 0, err
			}
			futures = futures[:0]
		}
	}
	if err := waitAcks(futures); err != nil {
		return 0, err
	}
	if err := <-done; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func waitAcks(fs []jetstream.PubAckFuture) error {
	for _, f := range fs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		}
	}
	return nil
}

// eventSize is the size of the raw side's messages: that of an order.placed
// message as the relay publishes it, once a latency run has measured it.
func (e *eventsBench) eventSize() int {
	if n := e.sampleSize.Load(); n > 0 {
		return int(n)
	}
	return 1500
}

// ---- latency -------------------------------------------------------------------

// pipelineLatency places orders at a constant rate (each in its own
// goroutine, so a slow commit does not delay the next arrival) and measures
// from each commit to its receipt: recorded sent in the dev mailbox, or
// received by the SMTP server.
func (e *eventsBench) pipelineLatency(ctx context.Context, viaSMTP bool) ([]time.Duration, error) {
	r, err := e.newRig(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if payload, err := json.Marshal(ladle.Event{ID: uuid.NewString(), Type: ladle.EventOrderPlaced, Payload: mustJSON(r.order), CreatedAt: ladle.Now()}); err == nil {
		e.sampleSize.Store(int64(len(payload)))
	}
	var tr mail.Transport = mail.DevMailbox{}
	var srv *smtptest.Server
	if viaSMTP {
		if srv, err = smtptest.Listen(); err != nil {
			return nil, err
		}
		defer srv.Close()
		if tr, err = mail.Open(srv.URL() + "&pool=" + fmt.Sprint(e.cfg.Concurrency)); err != nil {
			return nil, err
		}
		defer tr.Close()
	}
	if err := r.start(ctx, tr); err != nil {
		return nil, err
	}
	// Let the fixture order's receipt through first.
	if err := waitUntil(ctx, 30*time.Second, func() bool { n, _ := r.sentReceipts(); return n >= 1 }); err != nil {
		return nil, err
	}
	n := e.cfg.LatencyN
	committed := make([]time.Time, n+1)
	ids := make([]string, n+1)
	var wg sync.WaitGroup
	var failed atomic.Value
	tick := time.NewTicker(time.Second / time.Duration(e.cfg.Rate))
	for i := 1; i <= n; i++ {
		<-tick.C
		wg.Go(func() {
			o, err := r.place(ctx, i)
			if err != nil {
				failed.Store(err)
				return
			}
			committed[i], ids[i] = time.Now(), o.ID
		})
	}
	tick.Stop()
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, n)
	if viaSMTP {
		msgs := srv.Wait(n+1, time.Minute)
		at := map[string]time.Time{}
		for _, m := range msgs {
			at[m.To] = m.At
		}
		for i := 1; i <= n; i++ {
			t, ok := at[fmt.Sprintf("guest%d@example.com", i)]
			if !ok {
				return nil, fmt.Errorf("no receipt for guest %d", i)
			}
			lat = append(lat, t.Sub(committed[i]))
		}
		return lat, nil
	}
	if err := waitUntil(ctx, time.Minute, func() bool { c, _ := r.sentReceipts(); return c >= n+1 }); err != nil {
		return nil, err
	}
	rows, err := r.store.ReadDB().QueryContext(ctx, `SELECT order_id, sent_at FROM emails WHERE consumer = 'receipt' AND status = 'sent'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	sent := map[string]time.Time{}
	for rows.Next() {
		var id string
		var us int64
		if err := rows.Scan(&id, &us); err != nil {
			return nil, err
		}
		sent[id] = time.UnixMicro(us)
	}
	for i := 1; i <= n; i++ {
		t, ok := sent[ids[i]]
		if !ok {
			return nil, fmt.Errorf("no receipt for order %s", ids[i])
		}
		lat = append(lat, t.Sub(committed[i]))
	}
	return lat, rows.Err()
}

// rawLatency publishes one message at a time at the same rate and measures
// publish-to-receive on a pull consumer.
func (e *eventsBench) rawLatency(ctx context.Context) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "ladle-bench-rawlat-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := e.openBroker(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer closeEventsBroker(b)
	subject := b.Subject(ladle.EventOrderPlaced)
	cons, err := b.Consumer(ctx, jetstream.ConsumerConfig{Durable: "rawlat", FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return nil, err
	}
	n := e.cfg.LatencyN
	sentAt := make([]time.Time, n)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, n)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var i int
		fmt.Sscanf(m.Headers().Get(jetstream.MsgIDHeader), "lat-%d", &i)
		mu.Lock()
		lat = append(lat, time.Since(sentAt[i]))
		mu.Unlock()
		_ = m.Ack()
	})
	if err != nil {
		return nil, err
	}
	defer cc.Stop()
	body := make([]byte, e.eventSize())
	tick := time.NewTicker(time.Second / time.Duration(e.cfg.Rate))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		msg := nats.NewMsg(subject)
		msg.Data = body
		mu.Lock()
		sentAt[i] = time.Now()
		mu.Unlock()
		if _, err := b.JetStream().PublishMsgAsync(msg, jetstream.WithMsgID(fmt.Sprintf("lat-%d", i))); err != nil {
			return nil, err
		}
	}
	if err := waitUntil(ctx, time.Minute, func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) >= n }); err != nil {
		return nil, err
	}
	return lat, nil
}

// ---- helpers -------------------------------------------------------------------

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// waitUntil polls cond every 2ms (fine enough not to blur the latencies)
// until it holds, timeout passes or ctx is done.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pct is the nearest-rank p-th percentile of d (unsorted).
func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtRangeF is fmtRange with the number format f, for figures whose
// decimals matter.
func fmtRangeF(xs []float64, f string) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf(f+" ["+f+"–"+f+"]", median(xs), slices.Min(xs), slices.Max(xs))
}
