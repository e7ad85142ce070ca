// Command events measures Ladle's event path against raw JetStream in the
// same run, alternating the two (A B A B …), and prints the median, the
// min–max and the ratio.
//
//	go run ./bench/events                         # embedded NATS, SQLite, 5 runs
//	go run ./bench/events -n 4000 -runs 7
//	go run ./bench/events -nats-url nats://127.0.0.1:4222
//
// Figures:
//
//	throughput  events through the whole path per second: N order.placed
//	            rows in the outbox → relay → JetStream → receipt consumer →
//	            email recorded and inbox row committed (dev mailbox). Baseline:
//	            raw JetStream, the same N messages of the same size published
//	            asynchronously with Nats-Msg-Id and consumed with a pull
//	            consumer and explicit acks, concurrently. Target ratio ≥ 0.5.
//	latency     commit-to-receipt p50/p99: orders committed at a constant rate
//	            (open model), until the receipt is recorded sent (dev mailbox)
//	            or received by an SMTP server on loopback (go-smtp). Baseline:
//	            raw JetStream publish-to-receive at the same rate.
//
// Each run gets a fresh SQLite file and a fresh broker (embedded, in a new
// directory, or a new stream on -nats-url). Durability is the default on
// both sides (SQLite synchronous=FULL, JetStream SyncAlways) unless -sync
// or -sqlite-normal say otherwise; the conditions are printed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
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

var (
	flagN        = flag.Int("n", 2000, "events per throughput run")
	flagRuns     = flag.Int("runs", 5, "runs of each variant (median reported)")
	flagRate     = flag.Int("rate", 50, "orders per second in the latency runs")
	flagLatN     = flag.Int("latency-n", 150, "orders per latency run")
	flagNATS     = flag.String("nats-url", "", "external NATS (default: embedded)")
	flagSync     = flag.String("sync", "always", "embedded JetStream sync: always or an interval such as 1s")
	flagNormal   = flag.Bool("sqlite-normal", false, "SQLite synchronous=NORMAL instead of FULL")
	flagConc     = flag.Int("concurrency", 32, "receipt consumer concurrency (the worker's default is 32)")
	flagSkipLat  = flag.Bool("skip-latency", false, "only the throughput figure")
	flagSkipThru = flag.Bool("skip-throughput", false, "only the latency figures")
	flagProfile  = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
)

var quiet = slog.New(slog.DiscardHandler)

func main() {
	flag.Parse()
	if *flagProfile != "" {
		f, err := os.Create(*flagProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "events bench:", err)
		os.Exit(1)
	}
}

func run() error {
	syncInterval, err := broker.ParseSync(*flagSync)
	if err != nil {
		return err
	}
	cond := conditions(syncInterval)
	fmt.Println("conditions:", cond)
	var rows [][]string
	if !*flagSkipThru {
		var pipe, raw []float64
		for i := range *flagRuns {
			p, err := pipelineThroughput(syncInterval)
			if err != nil {
				return fmt.Errorf("pipeline run %d: %w", i+1, err)
			}
			r, err := rawThroughput(syncInterval)
			if err != nil {
				return fmt.Errorf("raw run %d: %w", i+1, err)
			}
			pipe, raw = append(pipe, p), append(raw, r)
			fmt.Printf("run %d: whole path %.0f events/s, raw JetStream %.0f msgs/s\n", i+1, p, r)
		}
		rows = append(rows, []string{"events/s, whole path (outbox→relay→JetStream→receipt committed)",
			span(pipe, "%.0f"), span(raw, "%.0f") + " raw JetStream pub+consume", fmt.Sprintf("%.2f", median(pipe)/median(raw))})
	}
	if !*flagSkipLat {
		var mbox50, mbox99, smtp50, smtp99, raw50, raw99 []float64
		for i := range *flagRuns {
			m, err := pipelineLatency(syncInterval, false)
			if err != nil {
				return fmt.Errorf("mailbox latency run %d: %w", i+1, err)
			}
			s, err := pipelineLatency(syncInterval, true)
			if err != nil {
				return fmt.Errorf("smtp latency run %d: %w", i+1, err)
			}
			r, err := rawLatency(syncInterval)
			if err != nil {
				return fmt.Errorf("raw latency run %d: %w", i+1, err)
			}
			mbox50, mbox99 = append(mbox50, ms(pct(m, 50))), append(mbox99, ms(pct(m, 99)))
			smtp50, smtp99 = append(smtp50, ms(pct(s, 50))), append(smtp99, ms(pct(s, 99)))
			raw50, raw99 = append(raw50, ms(pct(r, 50))), append(raw99, ms(pct(r, 99)))
			fmt.Printf("run %d: commit→receipt p50/p99 mailbox %.1f/%.1f ms, smtp %.1f/%.1f ms; raw JetStream %.2f/%.2f ms\n",
				i+1, ms(pct(m, 50)), ms(pct(m, 99)), ms(pct(s, 50)), ms(pct(s, 99)), ms(pct(r, 50)), ms(pct(r, 99)))
		}
		base := func(v []float64) string { return span(v, "%.2f") + " ms raw JetStream pub→recv" }
		rows = append(rows,
			[]string{"commit→receipt p50, dev mailbox (ms)", span(mbox50, "%.1f"), base(raw50), fmt.Sprintf("%.0f×", median(mbox50)/median(raw50))},
			[]string{"commit→receipt p99, dev mailbox (ms)", span(mbox99, "%.1f"), base(raw99), fmt.Sprintf("%.0f×", median(mbox99)/median(raw99))},
			[]string{"commit→receipt p50, SMTP on loopback (ms)", span(smtp50, "%.1f"), base(raw50), fmt.Sprintf("%.0f×", median(smtp50)/median(raw50))},
			[]string{"commit→receipt p99, SMTP on loopback (ms)", span(smtp99, "%.1f"), base(raw99), fmt.Sprintf("%.0f×", median(smtp99)/median(raw99))},
		)
	}
	fmt.Println()
	fmt.Printf("%-66s | %-26s | %-48s | %s\n", "figure (median [min–max] of runs)", "value", "baseline, same run", "ratio")
	fmt.Println(strings.Repeat("-", 160))
	for _, r := range rows {
		fmt.Printf("%-66s | %-26s | %-48s | %s\n", r[0], r[1], r[2], r[3])
	}
	fmt.Println("conditions:", cond)
	return nil
}

func conditions(syncIv time.Duration) string {
	nats := "embedded nats-server (in-process connection)"
	if *flagNATS != "" {
		nats = "external NATS " + *flagNATS
	}
	js := "JetStream SyncAlways"
	if syncIv != broker.SyncAlways {
		js = "JetStream sync_interval " + syncIv.String()
	}
	if *flagNATS != "" {
		js = "JetStream sync as the server is configured"
	}
	sq := "SQLite synchronous=FULL"
	if *flagNormal {
		sq = "SQLite synchronous=NORMAL"
	}
	return fmt.Sprintf("%s, %s, %s, %d CPUs, GOMAXPROCS %d, N=%d events/run, receipt concurrency %d, latency %d orders at %d/s, %d runs alternating",
		nats, js, sq, runtime.NumCPU(), runtime.GOMAXPROCS(0), *flagN, *flagConc, *flagLatN, *flagRate, *flagRuns)
}

// ---- setup ---------------------------------------------------------------------

type rig struct {
	dir   string
	store *sqlstore.Store
	b     *broker.Broker
	rest  *ladle.Restaurant
	order *ladle.Order // a real order, whose payload every event carries
	close []func()
}

func (r *rig) Close() {
	for i := len(r.close) - 1; i >= 0; i-- {
		r.close[i]()
	}
	os.RemoveAll(r.dir)
}

func newRig(syncIv time.Duration) (*rig, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ladle-bench-events-")
	if err != nil {
		return nil, err
	}
	r := &rig{dir: dir}
	opts := []sqlstore.Option{sqlstore.WithLogger(quiet)}
	if *flagNormal {
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
	if r.b, err = openBroker(dir, syncIv); err != nil {
		r.Close()
		return nil, err
	}
	r.close = append(r.close, func() { closeBroker(r.b) })
	if r.order, err = r.place(0); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func openBroker(dir string, syncIv time.Duration) (*broker.Broker, error) {
	id := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	cfg := broker.Config{URL: *flagNATS, DataDir: dir, SyncInterval: syncIv, Logger: quiet,
		Stream: "BENCH_" + strings.ToUpper(id), SubjectPrefix: "bench" + id + ".events"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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

func closeBroker(b *broker.Broker) {
	if !b.Embedded() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.JetStream().DeleteStream(ctx, b.StreamName())
	}
	b.Close()
}

// place places one pay-at-pickup order of the first available item.
func (r *rig) place(n int) (*ladle.Order, error) {
	ctx := context.Background()
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
func (r *rig) start(tr mail.Transport) error {
	ctx := context.Background()
	relay := outbox.New(outbox.Config{Store: r.store, Publisher: r.b, Logger: quiet})
	r.store.OnEventsCommitted(relay.Wake)
	tpl, err := mail.NewTemplates("")
	if err != nil {
		return err
	}
	cons, err := worker.EmailConsumers(worker.EmailConfig{Store: r.store, Transport: tr, Templates: tpl,
		From: "Ladle <orders@bench.ladle.test>", StatusURL: func(id string) string { return "https://bench.ladle.test/orders/" + id },
		Concurrency: *flagConc})
	if err != nil {
		return err
	}
	w := worker.New(worker.Config{Broker: r.b, DeadLetters: r.store, Logger: quiet}, cons...)
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

func (r *rig) sentReceipts() (int, error) {
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
func pipelineThroughput(syncIv time.Duration) (float64, error) {
	r, err := newRig(syncIv)
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
	want := *flagN + 1
	db := r.store.DB()
	const batch = 200
	for i := 0; i < *flagN; i += batch {
		tx, err := db.Begin()
		if err != nil {
			return 0, err
		}
		for j := i; j < min(i+batch, *flagN); j++ {
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
	if err := r.start(mail.DevMailbox{}); err != nil {
		return 0, err
	}
	deadline := start.Add(5 * time.Minute)
	var lastLog time.Time
	for {
		n, err := r.sentReceipts()
		if err != nil {
			return 0, err
		}
		if n >= want {
			break
		}
		if time.Now().After(deadline) {
			backlog, _, _ := r.store.OutboxBacklog(context.Background())
			return 0, fmt.Errorf("only %d of %d receipts after 5 minutes (outbox backlog %d)", n, want, backlog)
		}
		if os.Getenv("BENCH_DEBUG") != "" && time.Since(lastLog) > 2*time.Second {
			backlog, _, _ := r.store.OutboxBacklog(context.Background())
			fmt.Fprintf(os.Stderr, "  %d/%d receipts, outbox backlog %d\n", n, want, backlog)
			lastLog = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return float64(want) / time.Since(start).Seconds(), nil
}

// rawThroughput publishes N messages of the same size with Nats-Msg-Id
// asynchronously while a pull consumer fetches and acks them, and times
// until the consumer has acked all N.
func rawThroughput(syncIv time.Duration) (float64, error) {
	dir, err := os.MkdirTemp("", "ladle-bench-raw-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	b, err := openBroker(dir, syncIv)
	if err != nil {
		return 0, err
	}
	defer closeBroker(b)
	ctx := context.Background()
	body := make([]byte, sampleEventSize())
	for i := range body {
		body[i] = 'x'
	}
	subject := b.Subject(ladle.EventOrderPlaced)
	cons, err := b.Consumer(ctx, jetstream.ConsumerConfig{Durable: "raw", FilterSubject: subject,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 1000})
	if err != nil {
		return 0, err
	}
	n := *flagN
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

var sampleSize atomic.Int64

// sampleEventSize is the size of an order.placed message as the relay
// publishes it (measured once from a real order).
func sampleEventSize() int {
	if n := sampleSize.Load(); n > 0 {
		return int(n)
	}
	return 1500
}

// ---- latency -------------------------------------------------------------------

// pipelineLatency places orders at a constant rate (each in its own
// goroutine, so a slow commit does not delay the next arrival) and measures
// from each commit to its receipt: recorded sent in the dev mailbox, or
// received by the SMTP server.
func pipelineLatency(syncIv time.Duration, viaSMTP bool) ([]time.Duration, error) {
	r, err := newRig(syncIv)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if payload, err := json.Marshal(ladle.Event{ID: uuid.NewString(), Type: ladle.EventOrderPlaced, Payload: mustJSON(r.order), CreatedAt: ladle.Now()}); err == nil {
		sampleSize.Store(int64(len(payload)))
	}
	var tr mail.Transport = mail.DevMailbox{}
	var srv *smtptest.Server
	if viaSMTP {
		if srv, err = smtptest.Listen(); err != nil {
			return nil, err
		}
		defer srv.Close()
		if tr, err = mail.Open(srv.URL() + "&pool=" + fmt.Sprint(*flagConc)); err != nil {
			return nil, err
		}
		defer tr.Close()
	}
	if err := r.start(tr); err != nil {
		return nil, err
	}
	// Let the fixture order's receipt through first.
	if err := waitUntil(30*time.Second, func() bool { n, _ := r.sentReceipts(); return n >= 1 }); err != nil {
		return nil, err
	}
	n := *flagLatN
	committed := make([]time.Time, n+1)
	ids := make([]string, n+1)
	var wg sync.WaitGroup
	var failed atomic.Value
	tick := time.NewTicker(time.Second / time.Duration(*flagRate))
	for i := 1; i <= n; i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := r.place(i)
			if err != nil {
				failed.Store(err)
				return
			}
			committed[i], ids[i] = time.Now(), o.ID
		}()
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
	if err := waitUntil(time.Minute, func() bool { c, _ := r.sentReceipts(); return c >= n+1 }); err != nil {
		return nil, err
	}
	rows, err := r.store.ReadDB().Query(`SELECT order_id, sent_at FROM emails WHERE consumer = 'receipt' AND status = 'sent'`)
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
func rawLatency(syncIv time.Duration) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "ladle-bench-rawlat-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := openBroker(dir, syncIv)
	if err != nil {
		return nil, err
	}
	defer closeBroker(b)
	ctx := context.Background()
	subject := b.Subject(ladle.EventOrderPlaced)
	cons, err := b.Consumer(ctx, jetstream.ConsumerConfig{Durable: "rawlat", FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return nil, err
	}
	n := *flagLatN
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
	body := make([]byte, sampleEventSize())
	tick := time.NewTicker(time.Second / time.Duration(*flagRate))
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
	if err := waitUntil(time.Minute, func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) >= n }); err != nil {
		return nil, err
	}
	return lat, nil
}

// ---- helpers -------------------------------------------------------------------

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func waitUntil(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

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

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func span(v []float64, f string) string {
	return fmt.Sprintf(f+" ["+f+"–"+f+"]", median(v), slices.Min(v), slices.Max(v))
}
