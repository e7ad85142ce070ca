package events_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/events"
	"github.com/ladle-dev/ladle/internal/mail/smtptest"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
	"github.com/ladle-dev/ladle/internal/worker"
)

var quiet = slog.New(slog.DiscardHandler)

// TestMain doubles as the worker process of TestKillWorkerProcess: run with
// LADLE_EVENTS_CHILD=worker, the test binary is `ladle serve --role worker`
// in all that matters here (events.Start with the worker role, a database
// URL, an external NATS URL, an SMTP URL), until it is killed.
func TestMain(m *testing.M) {
	switch os.Getenv("LADLE_EVENTS_CHILD") {
	case "worker":
		os.Exit(childWorker())
	case "embedded":
		os.Exit(childEmbedded())
	}
	os.Exit(m.Run())
}

// runChild is the body of a child process: it opens LADLE_DATABASE_URL,
// starts the event system with start, prints ready, and runs until SIGTERM
// (or a SIGKILL from the test).
func runChild(ready string, start func(ctx context.Context, store *sqlstore.Store) (*events.System, error)) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	store, err := sqlstore.Open(ctx, os.Getenv("LADLE_DATABASE_URL"), sqlstore.WithLogger(quiet))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	defer store.Close()
	sys, err := start(ctx, store)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	fmt.Println(ready)
	<-ctx.Done()
	sys.Stop()
	return 0
}

// spawnChild starts this test binary as a child process (LADLE_EVENTS_CHILD
// = kind, with env) and waits, at most 30 s, until it prints ready. The
// process is returned whenever it started, so the caller can kill it even
// when the wait failed.
func spawnChild(kind, ready string, env ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "LADLE_EVENTS_CHILD="+kind), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == ready {
				up <- true
			}
		}
		close(up)
	}()
	select {
	case ok := <-up:
		if !ok {
			return cmd, fmt.Errorf("the %s process ended before it was ready", kind)
		}
		return cmd, nil
	case <-time.After(30 * time.Second):
		return cmd, fmt.Errorf("the %s process did not start in 30s", kind)
	}
}

func childWorker() int {
	return runChild("worker ready", func(ctx context.Context, store *sqlstore.Store) (*events.System, error) {
		orders := ordering.New(store, nil, []byte(os.Getenv("LADLE_SECRET")))
		ackWait, _ := time.ParseDuration(os.Getenv("LADLE_ACK_WAIT"))
		sendTimeout, _ := time.ParseDuration(os.Getenv("LADLE_SMTP_TIMEOUT"))
		return events.Start(ctx, events.Config{Role: "worker", NATSURL: os.Getenv("LADLE_NATS_URL"),
			SMTPURL: os.Getenv("LADLE_SMTP_URL"), MailFrom: "Ladle <orders@ladle.test>", PublicURL: "https://ladle.test",
			AckWait: ackWait, SendTimeout: sendTimeout, Logger: quiet,
			// The test kills this process every second or so, far more often
			// than any real deployment: with the default of 8, an event held
			// through eight kills in a row would be taken for one that crashes
			// its worker, and become a dead letter.
			MaxAttempts: 50,
			Backoff:     []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, time.Second}}, store,
			func(id string) string { return ordering.StatusURL(id, orders.AccessToken(id)) })
	})
}

func openStore(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), url, sqlstore.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func place(t *testing.T, s *sqlstore.Store, f *storetest.Fixture, n int) *ladle.Order {
	t.Helper()
	req := f.Request()
	req.Customer.Email = fmt.Sprintf("guest%d@example.com", n)
	req.ConfirmDuplicate = true
	o, err := s.CreateOrder(context.Background(), ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(),
		RestaurantID: f.Restaurant.ID, Request: req, Now: ladle.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func sentReceipts(t *testing.T, s *sqlstore.Store) int {
	t.Helper()
	var n int
	if err := s.ReadDB().QueryRow(`SELECT count(*) FROM inbox WHERE consumer = 'receipt'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRolesWorkTogether runs an api process and a worker process (two
// Systems, each with its own store handle and broker connection) the way
// `ladle serve --role api --nats-listen …` and `ladle serve --role worker
// --nats-url …` run: orders taken by the api get their receipts from the
// worker, and the api's live feed sees them.
func TestRolesWorkTogether(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	url := "sqlite:" + filepath.Join(dir, "ladle.db")
	apiStore, workerStore := openStore(t, url), openStore(t, url)
	f := storetest.Seed(t, apiStore)
	svc := ordering.New(apiStore, nil, []byte("secret"))
	path := func(id string) string { return ordering.StatusURL(id, svc.AccessToken(id)) }
	ctx := context.Background()
	api, err := events.Start(ctx, events.Config{Role: "api", DataDir: dir, NATSListen: "127.0.0.1:0", Logger: quiet}, apiStore, path)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Stop()
	if api.Worker != nil || api.Hub == nil {
		t.Fatal("the api role runs workers, or no live feed")
	}
	wrk, err := events.Start(ctx, events.Config{Role: "worker", NATSURL: api.Broker.ClientURL(), PublicURL: "https://ladle.test",
		Logger: quiet}, workerStore, path)
	if err != nil {
		t.Fatal(err)
	}
	defer wrk.Stop()
	if wrk.Hub != nil || wrk.Worker == nil {
		t.Fatal("the worker role serves screens, or runs no workers")
	}
	// The live feed makes its consumer (new events only) in the
	// background: an order published before it exists never reaches the
	// board, so wait for the consumer rather than a fixed moment.
	waitLiveConsumer(t, api)
	board := api.Hub.Subscribe(f.Restaurant.ID, "")
	o := place(t, apiStore, f, 1)
	select {
	case u := <-board.C():
		if u.OrderID != o.ID {
			t.Fatalf("board got %+v", u)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the api's board did not see the order")
	}
	eventually(t, 30*time.Second, "the receipt from the worker", func() bool { return sentReceipts(t, apiStore) == 1 })
	emails, _ := apiStore.OrderEmails(ctx, f.Restaurant.ID, o.ID)
	if len(emails) != 1 || !strings.Contains(emails[0].Text, "https://ladle.test/orders/"+o.ID+"?token=") {
		t.Fatalf("receipt %+v", emails)
	}
	if _, err := events.Start(ctx, events.Config{Role: "cook"}, apiStore, path); err == nil {
		t.Fatal("an unknown role started")
	}
}

// waitLiveConsumer waits until sys's live feed has its consumer on the
// stream (internal/live names it live_…).
func waitLiveConsumer(t *testing.T, sys *events.System) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := sys.Broker
	for {
		st, err := b.JetStream().Stream(ctx, b.StreamName())
		if err == nil {
			names := st.ConsumerNames(ctx)
			found := false
			for name := range names.Name() {
				found = found || strings.HasPrefix(name, "live_")
			}
			if found {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no live feed consumer on the stream after a minute (%v)", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestKillWorkerProcess places orders while a real worker process is
// killed with SIGKILL at random moments and started again. Every order must
// get exactly one receipt at the SMTP server (one Message-ID per guest), and
// none may be lost. It reports how many redeliveries the kills caused.
func TestKillWorkerProcess(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "process test")
	n := 300
	if v, err := strconv.Atoi(os.Getenv("LADLE_KILL_ORDERS")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	url := "sqlite:" + filepath.Join(dir, "ladle.db")
	store := openStore(t, url)
	f := storetest.Seed(t, store)
	smtp := smtptest.Start(t)
	svc := ordering.New(store, nil, []byte("kill-test-secret"))
	ctx := context.Background()
	// This process is the api: it takes orders and runs the embedded NATS
	// on a loopback port for the worker process.
	api, err := events.Start(ctx, events.Config{Role: "api", DataDir: dir, NATSListen: "127.0.0.1:0", Logger: quiet}, store,
		func(id string) string { return ordering.StatusURL(id, svc.AccessToken(id)) })
	if err != nil {
		t.Fatal(err)
	}
	defer api.Stop()

	var mu sync.Mutex
	var child *exec.Cmd
	startChild := func() {
		// Kill it only once it is up: a worker killed before it ever
		// finishes anything keeps taking the same events, and after
		// MaxAttempts such deliveries they become dead letters (the
		// protection against an event that crashes its worker).
		cmd, err := spawnChild("worker", "worker ready", "LADLE_DATABASE_URL="+url,
			"LADLE_NATS_URL="+api.Broker.ClientURL(), "LADLE_SMTP_URL="+smtp.URL(), "LADLE_SECRET=kill-test-secret",
			"LADLE_ACK_WAIT=1s", "LADLE_SMTP_TIMEOUT=4s")
		if cmd != nil {
			mu.Lock()
			child = cmd
			mu.Unlock()
		}
		if err != nil {
			t.Error(err)
		}
	}
	kill := func() {
		mu.Lock()
		defer mu.Unlock()
		if child != nil {
			_ = child.Process.Kill() // SIGKILL: no shutdown, no acks, leases left held
			_ = child.Wait()
			child = nil
		}
	}
	defer kill()
	startChild()

	kills := 0
	stopKiller := make(chan struct{})
	var killer sync.WaitGroup
	killer.Add(1)
	go func() {
		defer killer.Done()
		rng := rand.New(rand.NewPCG(7, 11))
		for {
			select {
			case <-stopKiller:
				return
			case <-time.After(time.Duration(300+rng.IntN(900)) * time.Millisecond):
			}
			kill()
			kills++
			startChild()
		}
	}()

	start := time.Now()
	for i := range n {
		place(t, store, f, i)
		time.Sleep(10 * time.Millisecond) // ~100 orders/s, spread across the kills
	}
	placed := time.Since(start)
	time.Sleep(time.Second)
	close(stopKiller)
	killer.Wait()
	var last time.Time
	defer func() {
		if !t.Failed() {
			return
		}
		// What is stuck, and where.
		rows, err := store.ReadDB().Query(`SELECT id, status, attempts, error, lease_until FROM emails WHERE status <> 'sent'`)
		if err == nil {
			for rows.Next() {
				var id, attempts int64
				var status, errText string
				var lease *int64
				_ = rows.Scan(&id, &status, &attempts, &errText, &lease)
				t.Logf("email %d: %s, %d attempts, lease %v, error %q", id, status, attempts, lease, errText)
			}
			rows.Close()
		}
		for _, name := range []string{worker.ConsumerReceipt, worker.ConsumerReceipt + "-replay"} {
			if c, err := api.Broker.JetStream().Consumer(ctx, api.Broker.StreamName(), name); err == nil {
				if info, err := c.Info(ctx); err == nil {
					t.Logf("consumer %s: pending %d, ack pending %d, redelivered %d, waiting %d, delivered %d",
						name, info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting, info.Delivered.Consumer)
				}
			}
		}
		dls, _ := store.DeadLetters(ctx, f.Restaurant.ID, true, 50)
		for _, d := range dls {
			t.Logf("dead letter %d: %s after %d deliveries", d.ID, d.Error, d.Deliveries)
		}
	}()
	eventually(t, 2*time.Minute, "every receipt", func() bool {
		got := sentReceipts(t, store)
		if time.Since(last) > 10*time.Second {
			backlog, _, _ := store.OutboxBacklog(ctx)
			t.Logf("%d of %d receipts sent, outbox backlog %d, %d messages at the server", got, n, backlog, smtp.Count())
			last = time.Now()
		}
		return got >= n
	})
	done := time.Since(start)
	time.Sleep(time.Second) // any straggling duplicate

	msgs := smtp.Messages()
	ids := map[string]map[string]bool{}
	for _, m := range msgs {
		if ids[m.To] == nil {
			ids[m.To] = map[string]bool{}
		}
		ids[m.To][m.MessageID] = true
	}
	for i := range n {
		to := fmt.Sprintf("guest%d@example.com", i)
		if len(ids[to]) != 1 {
			t.Errorf("%s received %d distinct receipts", to, len(ids[to]))
		}
	}
	if c, _ := store.CountDeadLetters(ctx, f.Restaurant.ID); c != 0 {
		t.Errorf("%d dead letters", c)
	}
	var attempts int
	for before := int64(0); ; {
		page, err := store.Emails(ctx, f.Restaurant.ID, before, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.Status != ladle.EmailSent {
				t.Errorf("email %d is %s", e.ID, e.Status)
			}
			attempts += e.Attempts
		}
		if len(page) < 500 {
			break
		}
		before = page[len(page)-1].ID
	}
	cons, err := api.Broker.JetStream().Consumer(ctx, api.Broker.StreamName(), worker.ConsumerReceipt)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	redeliveries := int(info.Delivered.Consumer) - n
	t.Logf("%d orders placed in %v with %d SIGKILLs of the worker process; all receipts out after %v",
		n, placed.Round(time.Millisecond), kills, done.Round(time.Millisecond))
	t.Logf("receipt consumer: %d deliveries for %d events (%d redeliveries); %d SMTP hand-overs; %d messages at the server, %d duplicate copies (same Message-ID)",
		info.Delivered.Consumer, n, redeliveries, attempts, len(msgs), len(msgs)-n)
	if kills == 0 {
		t.Error("the worker was never killed")
	}
}
