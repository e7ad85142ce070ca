package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/redact"
)

// config is every setting of `ladle serve` and `ladle migrate`.
type config struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	// DatabaseReplicaURL is a PostgreSQL streaming replica for reads that
	// tolerate lag; ReplicaMaxLag is the most lag they tolerate.
	DatabaseReplicaURL string
	ReplicaMaxLag      time.Duration
	Demo               bool
	Role               string
	Secret             string
	LogLevel           string
	PublicURL          string
	Shutdown           time.Duration
	RedisURL           string
	RedisPrefix        string
	BlobURL            string
	CDNURL             string
	// TrustedProxies lists the proxies whose X-Forwarded-For names the
	// client (login rate limits).
	TrustedProxies string

	NATSURL           string
	NATSListen        string
	NATSToken         string
	NATSSync          string
	NATSStream        string
	NATSReplicas      int
	SMTPURL           string
	MailFrom          string
	MailTemplates     string
	WorkerConcurrency int
	WorkerMin         int
	WorkerMax         int
	WorkerScaleDown   time.Duration
	WorkerTarget      time.Duration
	AckWait           time.Duration
	SMTPTimeout       time.Duration
	CampaignRate      float64
	CampaignWorkers   int
	CampaignLease     time.Duration

	// Limits and deadlines at the HTTP edge (internal/limit).
	MaxInflightOrders   int
	OrderQueue          int
	OrderQueueWait      time.Duration
	OrderTimeout        time.Duration
	RequestTimeout      time.Duration
	MaxInflightStaff    int
	MaxInflightUploads  int
	MaxInflightMenu     int
	MaxStreams          int
	MaxStreamsPerClient int
	MetricsAddr         string

	// Payments (internal/payment).
	PaymentProvider      string
	StripeSecretKey      string
	StripePublishableKey string
	StripeWebhookSecret  string
	StripeAPIURL         string
	PlatformFeeBP        int

	getenv func(string) string // for settings read from the environment only (AWS credentials)
}

// parseConfig reads flags, falling back to LADLE_* environment variables for
// flags not given on the command line.
func parseConfig(cmd string, args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{getenv: getenv}
	fset := flag.NewFlagSet("ladle "+cmd, flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.StringVar(&c.Addr, "addr", ":8080", "HTTP listen address")
	fset.StringVar(&c.DataDir, "data-dir", "./data", "folder for the SQLite database, the embedded broker, files and the dev mailbox")
	fset.StringVar(&c.DatabaseURL, "database-url", "", "empty: SQLite file in the data dir; postgres://user@host/db: PostgreSQL")
	fset.StringVar(&c.DatabaseReplicaURL, "database-replica-url", "", "a PostgreSQL streaming replica of --database-url for reads that tolerate lag (menus, restaurant lookups, order lists); a client's own writes are always visible to it, and a replica that is down or lagging is replaced by the primary (empty: every read on the primary)")
	fset.DurationVar(&c.ReplicaMaxLag, "database-replica-max-lag", 10*time.Second, "reads go to the primary while the replica has not replayed what the primary wrote this long ago")
	fset.BoolVar(&c.Demo, "demo", false, "seed a demo restaurant with a menu, a coupon and a staff login (once; printed at start-up)")
	fset.StringVar(&c.Role, "role", "all", "what this process runs: api (HTTP), worker (background work), or all")
	fset.StringVar(&c.Secret, "secret", "", "key for guests' order links; every process must share it (empty: made once and kept in the data dir)")
	fset.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fset.StringVar(&c.PublicURL, "public-url", "http://localhost:8080", "the URL guests reach Ladle at, for links in emails")
	fset.DurationVar(&c.Shutdown, "shutdown-timeout", 20*time.Second, "how long a graceful shutdown may take")
	fset.StringVar(&c.NATSURL, "nats-url", "", "external NATS with JetStream, e.g. nats://host:4222 (empty: run the embedded server, file store in the data dir)")
	fset.StringVar(&c.NATSListen, "nats-listen", "", "also let other processes reach the embedded NATS at this address, e.g. 127.0.0.1:4222 (empty: in-process only)")
	fset.StringVar(&c.NATSToken, "nats-token", "", "token the embedded NATS requires on --nats-listen, or sent to --nats-url (a secret; empty with --nats-listen: made once, kept in the data dir as nats-token and shown at that start)")
	fset.StringVar(&c.NATSStream, "nats-stream", "", "name of the JetStream stream of events (empty: LADLE_EVENTS_ and the database's instance id); set it where an autoscaler must name the stream, e.g. KEDA")
	fset.IntVar(&c.NATSReplicas, "nats-replicas", 1, "replicas of the event stream on an external NATS cluster (3 survives losing one server)")
	fset.StringVar(&c.NATSSync, "nats-sync", "always", "embedded JetStream fsync: always (every message is on disk before it is acknowledged) or an interval such as 1s (faster; after a power loss the next start publishes that interval again from the outbox)")
	fset.StringVar(&c.SMTPURL, "smtp-url", "", "send email through smtp://user:pass@host:587 (STARTTLS), smtps://… or ?tls=none, ?pool=N (empty: the dev mailbox at /admin/…/mailbox)")
	fset.StringVar(&c.MailFrom, "mail-from", "Ladle <orders@ladle.localhost>", "the From address of every email")
	fset.StringVar(&c.MailTemplates, "mail-templates", "", "folder of per-restaurant email template overrides (empty: the built-in templates)")
	fset.IntVar(&c.WorkerConcurrency, "worker-concurrency", 0, "fix the handlers per email consumer in this process (0: autoscale between --worker-min and --worker-max)")
	fset.IntVar(&c.WorkerMin, "worker-min", 1, "fewest handlers per email consumer in this process when autoscaling")
	fset.IntVar(&c.WorkerMax, "worker-max", 32, "most handlers per email consumer in this process when autoscaling")
	fset.DurationVar(&c.WorkerTarget, "worker-drain-target", 5*time.Second, "an autoscaled pool grows to drain its consumer's lag within this time")
	fset.DurationVar(&c.WorkerScaleDown, "worker-scale-down-window", 30*time.Second, "an autoscaled pool shrinks only to the largest size asked for within this window")
	fset.DurationVar(&c.AckWait, "ack-wait", 30*time.Second, "how soon an event whose worker died is delivered again")
	fset.DurationVar(&c.SMTPTimeout, "smtp-timeout", 30*time.Second, "bound on one hand-over to the SMTP server")
	fset.Float64Var(&c.CampaignRate, "campaign-rate", 100, "campaign emails per second, across every worker process (shared through Redis when --redis-url is set)")
	fset.IntVar(&c.CampaignWorkers, "campaign-workers", 4, "campaign batches this process sends at once (each up to 100 messages in flight)")
	fset.DurationVar(&c.CampaignLease, "campaign-lease", 2*time.Minute, "how long a worker's claim on campaign sends holds; if the worker dies, the sends it had in flight go out again after this (it must outlast one chunk's sending, --smtp-timeout included)")
	fset.StringVar(&c.RedisURL, "redis-url", "", "redis://host:6379/0: a second menu-cache tier shared by every API process (empty: in-process only)")
	fset.StringVar(&c.RedisPrefix, "redis-prefix", "ladle:", "start of every Redis key and channel (the database's instance id follows it)")
	fset.StringVar(&c.BlobURL, "blob-url", "", "where images go: file:///path, or s3://bucket/prefix?endpoint=host:port&region=…&path_style=true with credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (empty: a folder in the data dir)")
	fset.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs of proxies in front of Ladle whose X-Forwarded-For names the client, e.g. 10.0.0.0/8 (empty: the TCP peer is the client)")
	fset.StringVar(&c.CDNURL, "cdn-url", "", "serve images through this CDN base URL instead of /media/ (empty: served by Ladle)")
	fset.IntVar(&c.MaxInflightOrders, "max-inflight-orders", 16, "order placements (API and checkout) running at once in this process")
	fset.IntVar(&c.OrderQueue, "order-queue", 32, "order placements that may wait for one of those slots; more are refused at once with 503 and Retry-After")
	fset.DurationVar(&c.OrderQueueWait, "order-queue-wait", 300*time.Millisecond, "longest wait for an order slot before 503 and Retry-After")
	fset.DurationVar(&c.OrderTimeout, "order-timeout", ordering.DefaultOrderTimeout, "deadline for one order placement (key claim to stored response); past it 503 and Retry-After, and the key is free for the retry (a locked key is presumed abandoned after twice this)")
	fset.DurationVar(&c.RequestTimeout, "request-timeout", 5*time.Second, "deadline for the database work of one request (pages, menu, order lookups); past it, 503 and Retry-After")
	fset.IntVar(&c.MaxInflightStaff, "max-inflight-staff", 32, "staff page requests running at once (twice as many may wait up to 1s, then 503)")
	fset.IntVar(&c.MaxInflightUploads, "max-inflight-uploads", 4, "image uploads running at once (twice as many may wait up to 5s, then 503)")
	fset.IntVar(&c.MaxInflightMenu, "max-inflight-menu", 256, "menu API requests running at once (twice as many may wait up to 1s, then 503)")
	fset.IntVar(&c.MaxStreams, "max-streams", 2000, "live event streams (staff board, order status) open at once in this process; more get 503")
	fset.IntVar(&c.MaxStreamsPerClient, "max-streams-per-client", 16, "live event streams one client address may hold open; more get 429")
	fset.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve /metrics on this separate address, e.g. 127.0.0.1:9090 (empty: /metrics is off, except on the main listener with --demo)")
	fset.StringVar(&c.PaymentProvider, "payment-provider", "test", "who takes card payments: test (the built-in provider, no money moves; the demo's) or stripe")
	fset.StringVar(&c.StripeSecretKey, "stripe-secret-key", "", "Stripe secret API key, sk_test_… or sk_live_… (a secret; required with --payment-provider stripe)")
	fset.StringVar(&c.StripePublishableKey, "stripe-publishable-key", "", "Stripe publishable key, pk_…: the checkout collects cards and runs 3-D Secure with Stripe.js (empty: the checkout takes a payment method id as typed)")
	fset.StringVar(&c.StripeWebhookSecret, "stripe-webhook-secret", "", "signing secret of the Stripe webhook endpoint, whsec_… (a secret; empty: POST /webhooks/stripe answers 404)")
	fset.StringVar(&c.StripeAPIURL, "stripe-api-url", "", "Stripe API base URL, e.g. http://127.0.0.1:12111 for stripe-mock (empty: https://api.stripe.com)")
	fset.IntVar(&c.PlatformFeeBP, "stripe-platform-fee-bp", 0, "platform fee in basis points (250 = 2.5%) taken as the application fee of charges made on a restaurant's connected Stripe account")
	fset.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ladle %s [flags]\n\nFlags (each also read from the LADLE_* variable shown):\n", cmd)
		fset.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %q)", redactFlag(f.Name, f.DefValue))
			}
			fmt.Fprintf(stderr, "  --%s  [%s]\n      %s%s\n", f.Name, envName(f.Name), f.Usage, def)
		})
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fset.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fset.Arg(0))
	}
	set := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fset.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.WorkerConcurrency < 0 || c.WorkerMin < 1 || c.WorkerMax < c.WorkerMin {
		return nil, fmt.Errorf("need --worker-concurrency ≥ 0 and 1 ≤ --worker-min ≤ --worker-max (have %d, %d, %d)", c.WorkerConcurrency, c.WorkerMin, c.WorkerMax)
	}
	if c.CampaignRate <= 0 || c.CampaignWorkers < 1 {
		return nil, fmt.Errorf("need --campaign-rate > 0 and --campaign-workers ≥ 1")
	}
	if c.DatabaseReplicaURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return nil, errors.New("--database-replica-url needs a PostgreSQL --database-url (a replica of it)")
	}
	if c.CampaignLease <= c.SMTPTimeout {
		return nil, fmt.Errorf("--campaign-lease (%v) must be longer than --smtp-timeout (%v): a claim must outlast a send", c.CampaignLease, c.SMTPTimeout)
	}
	switch c.Role {
	case "all", "api", "worker":
	default:
		return nil, fmt.Errorf("--role must be api, worker or all, not %q", c.Role)
	}
	switch c.PaymentProvider {
	case "test":
	case "stripe":
		if c.StripeSecretKey == "" {
			return nil, errors.New("--payment-provider stripe needs --stripe-secret-key (or LADLE_STRIPE_SECRET_KEY)")
		}
	default:
		return nil, fmt.Errorf("--payment-provider must be test or stripe, not %q", c.PaymentProvider)
	}
	if c.PlatformFeeBP < 0 || c.PlatformFeeBP >= 10000 {
		return nil, fmt.Errorf("--stripe-platform-fee-bp must be between 0 and 9999, not %d", c.PlatformFeeBP)
	}
	return c, nil
}

// secretFlags hold credentials: their values are masked wherever they are
// shown (help text, logs, errors).
var secretFlags = map[string]bool{"database-url": true, "database-replica-url": true, "nats-url": true, "redis-url": true, "smtp-url": true, "secret": true, "nats-token": true}

// redactFlag returns the value of flag name fit to show.
func redactFlag(name, value string) string {
	switch {
	case (name == "secret" || name == "nats-token" || name == "stripe-secret-key" || name == "stripe-webhook-secret") && value != "":
		return redact.Mask
	case secretFlags[name]:
		return redact.URL(value)
	}
	return value
}

// secrets returns the secret parts of the configuration, for the log
// handler and for errors to mask.
func (c *config) secrets() []string {
	out := redact.Secrets(c.DatabaseURL, c.DatabaseReplicaURL, c.NATSURL, c.RedisURL, c.SMTPURL)
	for _, v := range []string{c.Secret, c.NATSToken, c.StripeSecretKey, c.StripeWebhookSecret} {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// errHelp is returned after --help printed the flags: not a failure.
var errHelp = errors.New("help requested")

func envName(flagName string) string {
	return "LADLE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// databaseURL is the configured database, or the SQLite file in the data dir.
func (c *config) databaseURL() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return "sqlite:" + filepath.Join(c.DataDir, "ladle.db")
}

// secret returns the configured secret, or the one kept in the data dir,
// making it on first use.
func (c *config) secret() ([]byte, error) {
	if c.Secret != "" {
		if len(c.Secret) < 16 {
			return nil, errors.New("--secret must be at least 16 characters")
		}
		return []byte(c.Secret), nil
	}
	path := filepath.Join(c.DataDir, "secret")
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	b = []byte(hex.EncodeToString(raw[:]))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("keep secret: %w", err)
	}
	return b, nil
}

// blobURL is the configured blob store, or a folder in the data dir.
func (c *config) blobURL() (string, error) {
	if c.BlobURL != "" {
		return c.BlobURL, nil
	}
	abs, err := filepath.Abs(filepath.Join(c.DataDir, "blobs"))
	if err != nil {
		return "", err
	}
	return "file://" + abs, nil
}

// holder names this process for the idempotency keys it locks: the same
// after a restart (so the new run can release what the old one held when it
// died), different for every process sharing the database (host, listen
// address, data directory).
func (c *config) holder() string {
	host, _ := os.Hostname()
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		dir = c.DataDir
	}
	return host + " " + c.Addr + " " + dir
}
