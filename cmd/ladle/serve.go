package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/blob"
	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/events"
	"github.com/ladle-dev/ladle/internal/httpapi"
	"github.com/ladle-dev/ladle/internal/httpserver"
	"github.com/ladle-dev/ladle/internal/imaging"
	"github.com/ladle-dev/ladle/internal/limit"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/priority"
	"github.com/ladle-dev/ladle/internal/readpos"
	"github.com/ladle-dev/ladle/internal/redact"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/web"
)

// startDebugProfiles writes a CPU profile (LADLE_DEBUG_CPUPROFILE), an
// execution trace (LADLE_DEBUG_TRACE: which goroutine ran, waited and
// blocked when; read it with go tool trace) and an allocation profile
// (LADLE_DEBUG_ALLOCPROFILE: where the process allocated since it started,
// written when it stops; go tool pprof -sample_index=alloc_space reads it)
// of the whole process to the paths the environment names, until the
// returned stop is called (at the end of serve). They are debugging aids
// read from the environment only, not flags: `ladle bench campaign
// --child-cpuprofile`, `--child-trace` and `--child-allocprofile` set them
// for its child. An unset variable starts nothing.
func startDebugProfiles(getenv func(string) string) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, f := range stops {
			f()
		}
	}
	for _, p := range []struct {
		env   string
		start func(io.Writer) error
		stop  func(io.Writer)
	}{
		{"LADLE_DEBUG_CPUPROFILE", pprof.StartCPUProfile, func(io.Writer) { pprof.StopCPUProfile() }},
		{"LADLE_DEBUG_TRACE", trace.Start, func(io.Writer) { trace.Stop() }},
		// The runtime samples allocations all along (one per 512 KiB by
		// default); there is nothing to start, only the profile to write.
		{"LADLE_DEBUG_ALLOCPROFILE", func(io.Writer) error { return nil },
			func(w io.Writer) { _ = pprof.Lookup("allocs").WriteTo(w, 0) }},
	} {
		path := getenv(p.env)
		if path == "" {
			continue
		}
		f, err := os.Create(path)
		if err == nil {
			if err = p.start(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			stop()
			return nil, fmt.Errorf("%s: %w", p.env, err)
		}
		stops = append(stops, func() { p.stop(f); f.Close() })
	}
	return stop, nil
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	// Secrets inside the configured URLs never reach the log, whichever
	// component (or driver error) would print them.
	return slog.New(redact.Handler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), cfg.secrets()))
}

// openStore opens and migrates the configured database.
func openStore(ctx context.Context, cfg *config, log *slog.Logger) (*sqlstore.Store, error) {
	if cfg.DatabaseURL == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, err
		}
	}
	opts := []sqlstore.Option{sqlstore.WithLogger(log)}
	if cfg.DatabaseReplicaURL != "" {
		opts = append(opts, sqlstore.WithReplica(cfg.DatabaseReplicaURL, cfg.ReplicaMaxLag))
	}
	store, err := sqlstore.Open(ctx, cfg.databaseURL(), opts...)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return store, nil
}

// payments returns the configured payment provider and the ordering
// options it needs.
func (c *config) payments(store *sqlstore.Store) (ladle.PaymentProvider, []ordering.Option, error) {
	if c.PaymentProvider != "stripe" {
		return payment.NewTestProvider(store), []ordering.Option{ordering.WithRefunder(payment.NewTestRefunder(store))}, nil
	}
	p, err := payment.NewStripe(payment.StripeConfig{SecretKey: c.StripeSecretKey, APIURL: c.StripeAPIURL})
	if err != nil {
		return nil, nil, err
	}
	return p, []ordering.Option{ordering.WithConnect(c.PlatformFeeBP), ordering.WithRefunder(p)}, nil
}

func migrate(ctx context.Context, cfg *config, stdout io.Writer) error {
	store, err := openStore(ctx, cfg, newLogger(cfg, io.Discard))
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Fprintln(stdout, "migrations applied to", store.Dialect())
	return nil
}

// serve runs the server until ctx is done, then shuts down gracefully:
// stop accepting, finish in-flight requests, stop background work, close the
// database.
//
// Every role serves /healthz, /readyz and /metrics; the api and all roles
// also serve the JSON API, the storefront and the staff pages, and the
// worker and all roles run the background work.
func serve(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	stopProfile, err := startDebugProfiles(cfg.getenv)
	if err != nil {
		return err
	}
	defer stopProfile()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return err
	}
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()

	secret, err := cfg.secret()
	if err != nil {
		return err
	}
	proxies, err := auth.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	authMgr := auth.New(store, auth.WithLogger(log), auth.WithSecureCookies(strings.HasPrefix(cfg.PublicURL, "https://")),
		auth.WithSecret(secret), auth.WithTrustedProxies(proxies))
	// The blob store (item photos) is for the roles that serve HTTP.
	var blobs blob.Store
	if cfg.Role != "worker" {
		blobURL, err := cfg.blobURL()
		if err != nil {
			return err
		}
		if blobs, err = blob.Open(ctx, blobURL, cfg.getenv); err != nil {
			return fmt.Errorf("blob store: %w", err)
		}
	}
	if cfg.Demo {
		var opts []demo.Option
		if blobs != nil {
			opts = append(opts, demo.WithPhotos(blobs))
		}
		created, err := demo.Seed(ctx, store, authMgr.HashPassword, opts...)
		if err != nil {
			return err
		}
		if created {
			log.Info("seeded the demo restaurant", "slug", demo.Slug)
		}
	}
	payments, payOpts, err := cfg.payments(store)
	if err != nil {
		return err
	}
	// Receipts, order-ready emails, the relay feeding them and order
	// placement hold this gate; campaign sends yield to them
	// (internal/priority).
	urgent := priority.New()
	orders := ordering.New(store, payments, secret, append(payOpts, ordering.WithLogger(log), ordering.WithHolder(cfg.holder()), ordering.WithUrgent(urgent),
		ordering.WithOrderTimeout(cfg.OrderTimeout))...)

	var bg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer func() { stopBG(); bg.Wait() }()
	if cfg.Role != "api" {
		bg.Go(func() { orders.Run(bgCtx, 5*time.Second) })
	}

	// The event system: the outbox relay (every role), the email workers
	// (worker, all) and the live feed for screens (api, all).
	natsSync, err := broker.ParseSync(cfg.NATSSync)
	if err != nil {
		return fmt.Errorf("--nats-sync: %w", err)
	}
	instance, err := store.InstanceID(ctx)
	if err != nil {
		return err
	}
	// Components of this server register on their own registry, so that
	// several servers can run in one process (the tests do); /metrics shows
	// it beside the process-wide default one.
	reg := prometheus.NewRegistry()
	// One stream per database: deployments that share a NATS but not a
	// database never see each other's events.
	ev, err := events.Start(ctx, events.Config{Role: cfg.Role, DataDir: cfg.DataDir, Urgent: urgent,
		NATSURL: cfg.NATSURL, NATSListen: cfg.NATSListen, NATSToken: cfg.NATSToken, Stdout: stdout, NATSSync: natsSync,
		Stream: cmp.Or(cfg.NATSStream, "LADLE_EVENTS_"+strings.ToUpper(instance[:12])), SubjectPrefix: "ladle." + instance[:12] + ".events",
		NATSReplicas: cfg.NATSReplicas,
		SMTPURL:      cfg.SMTPURL, MailFrom: cfg.MailFrom, MailTemplates: cfg.MailTemplates,
		PublicURL: cfg.PublicURL, ConfirmURL: confirmLinker(cfg.PublicURL, secret), WorkerConcurrency: cfg.WorkerConcurrency,
		WorkerMin: cfg.WorkerMin, WorkerMax: cfg.WorkerMax, WorkerScaleDown: cfg.WorkerScaleDown, WorkerTarget: cfg.WorkerTarget, Registerer: reg, ShutdownGrace: cfg.Shutdown,
		AckWait: cfg.AckWait, SendTimeout: cfg.SMTPTimeout, Logger: log}, store,
		func(id string) string { return ordering.StatusURL(id, orders.AccessToken(id)) })
	if err != nil {
		return err
	}
	defer ev.Stop()
	camps, err := startCampaigns(ctx, cfg, store, ev.Broker, secret, instance, urgent, log)
	if err != nil {
		return err
	}
	defer camps.stop()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	// /readyz answers within a second, ok or not ready; the cause is logged.
	mux.Handle("GET /readyz", httpserver.Ready(store.Ping, time.Second, log))
	// /metrics (reg, above) is not public: it is served on --metrics-addr,
	// or (the demo only) on the main listener.
	metrics := promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, reg}, promhttp.HandlerOpts{})
	if cfg.MetricsAddr == "" && cfg.Demo {
		mux.Handle("GET /metrics", metrics)
	}
	limits := limit.NewSet()
	reg.MustRegister(limits)
	reg.MustRegister(authMgr) // sign-in hash slots and refusals

	if cfg.Role != "worker" {
		imageURL := imaging.URLFunc(cfg.CDNURL)
		menus, err := newMenuCache(ctx, cfg, store, imageURL, reg, log)
		if err != nil {
			return err
		}
		defer menus.Close()
		orderLimit := limits.New(limit.Config{Name: "orders", MaxInFlight: cfg.MaxInflightOrders,
			MaxQueue: cfg.OrderQueue, MaxWait: cfg.OrderQueueWait, RetryAfter: 1})
		httpapi.Register(mux, httpapi.Deps{Store: store, Menus: menus, Ordering: orders, Logger: log,
			OrderLimit: orderLimit, RequestTimeout: cfg.RequestTimeout, StripeWebhookSecret: cfg.StripeWebhookSecret,
			MenuLimit: limits.New(limit.Config{Name: "menu", MaxInFlight: cfg.MaxInflightMenu,
				MaxQueue: 2 * cfg.MaxInflightMenu, MaxWait: time.Second})})
		mux.Handle("GET /media/", imaging.Handler(blobs, log))
		camps.routes(mux, cfg, store, orders, log) // campaigns.go
		// The storefront and staff pages own everything the patterns above do not.
		mux.Handle("/", web.New(web.Deps{Store: store, Menus: menus, Ordering: orders, Auth: authMgr, Logger: log,
			ImageURL: imageURL, Images: blobs, StripePublishableKey: cfg.StripePublishableKey, MenuChanged: menus.Invalidate, Live: ev.Hub, Deliveries: store, System: ev.Board, Campaigns: camps.svc,
			Limits: web.Limits{
				Orders: orderLimit,
				Staff: limits.New(limit.Config{Name: "staff", MaxInFlight: cfg.MaxInflightStaff,
					MaxQueue: 2 * cfg.MaxInflightStaff, MaxWait: time.Second}),
				Uploads: limits.New(limit.Config{Name: "uploads", MaxInFlight: cfg.MaxInflightUploads,
					MaxQueue: 2 * cfg.MaxInflightUploads, MaxWait: 5 * time.Second, RetryAfter: 5}),
				Streams:          limits.New(limit.Config{Name: "streams", MaxInFlight: cfg.MaxStreams, RetryAfter: 5}),
				StreamsPerClient: limits.NewPerClient("streams_per_client", cfg.MaxStreamsPerClient, 5),
				RequestTimeout:   cfg.RequestTimeout,
			}}))
	}

	handler := httpserver.Wrap(mux, log)
	if cfg.DatabaseReplicaURL != "" {
		// Read-your-writes across the replica: a client's last write
		// position travels in a signed cookie (internal/readpos).
		handler = readpos.Middleware(secret, strings.HasPrefix(cfg.PublicURL, "https://"), handler)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if ev.Hub != nil {
		// Live streams never end on their own: closing the hub ends them, so
		// a graceful shutdown does not wait its whole timeout for them.
		srv.RegisterOnShutdown(ev.Hub.Close)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Ladle is listening on http://%s (database: %s, role: %s)\n", displayAddr(ln.Addr()), store.Dialect(), cfg.Role)
	if cfg.Demo {
		fmt.Fprintf(stdout, "Demo storefront: http://%s/r/%s\nDemo staff login: http://%s/admin/login  email %s  password %s  (coupon %s)\n",
			displayAddr(ln.Addr()), demo.Slug, displayAddr(ln.Addr()), demo.StaffEmail, demo.StaffPassword, demo.CouponCode)
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", metrics)
		msrv := &http.Server{Handler: mmux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		defer msrv.Close()
		go func() {
			if err := msrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		}()
		fmt.Fprintf(stdout, "Metrics on http://%s/metrics\n", displayAddr(mln.Addr()))
	}

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func displayAddr(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", ta.Port)
	}
	return a.String()
}

// newMenuCache builds the menu cache: in-process, plus Redis as a second
// tier (and the invalidation channel between API processes) when
// --redis-url is set.
func newMenuCache(ctx context.Context, cfg *config, store *sqlstore.Store, imageURL func(string) string, reg prometheus.Registerer, log *slog.Logger) (*menucache.Cache, error) {
	mc := menucache.Config{Source: store, ImageURL: imageURL, Registerer: reg, Logger: log}
	if cfg.RedisURL != "" {
		rc, err := menucache.OpenRedis(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		// Keys and the invalidation channel carry the database's instance
		// id: processes of one deployment share them, and two deployments
		// that share a Redis but not a database never see each other's menus.
		id, err := store.InstanceID(ctx)
		if err != nil {
			return nil, err
		}
		prefix := cfg.RedisPrefix + id + ":"
		mc.Redis, mc.RedisPrefix = rc, prefix
		mc.Bus = menucache.NewRedisBus(rc, prefix+"menucache:invalidate")
	}
	return menucache.New(mc)
}
