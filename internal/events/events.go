// Package events wires one process's part of Ladle's event system by role:
// the broker connection (or the embedded server), the outbox relay, the
// email workers and the live feed for screens. cmd/ladle calls Start and
// Stop; everything else is in the packages it wires (broker, outbox, worker,
// mail, live).
//
//	role    relay  email workers  live feed (SSE)
//	api     yes    no             yes
//	worker  yes    yes            no
//	all     yes    yes            yes
//
// The relay runs in every role: it is cheap, it wakes on this process's own
// commits, and several relays are safe (PostgreSQL: SKIP LOCKED; SQLite: one
// process writes, and the broker drops re-published ids). Separate api and
// worker processes need a broker both reach: an external NATS (--nats-url),
// or one process's embedded server opened with --nats-listen and the other
// pointed at it. A listening embedded server requires a token of every client
// (--nats-token, or one made once and kept in the data dir): whoever could
// publish could otherwise feed the workers events.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ladle-dev/ladle/internal/autoscale"
	"github.com/ladle-dev/ladle/internal/broker"
	"github.com/ladle-dev/ladle/internal/live"
	"github.com/ladle-dev/ladle/internal/mail"
	"github.com/ladle-dev/ladle/internal/outbox"
	"github.com/ladle-dev/ladle/internal/priority"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/sysstats"
	"github.com/ladle-dev/ladle/internal/worker"
)

// Config is the event system's share of `ladle serve`'s flags.
type Config struct {
	Role string // "api", "worker" or "all"

	DataDir    string        // --data-dir: the embedded broker's store goes under it
	NATSURL    string        // --nats-url: external NATS; empty runs the embedded server
	NATSListen string        // --nats-listen: the embedded server's TCP address; empty: none
	NATSSync   time.Duration // --nats-sync: broker.SyncAlways (default) or an interval
	// NATSToken is --nats-token: the token the embedded server requires on
	// its --nats-listen port, or the one sent to --nats-url. Empty with
	// NATSListen: the token kept in DataDir/nats-token, made on first use.
	NATSToken string
	// Stdout is where a newly made NATS token is shown, once (nil: not
	// shown; it is in the file).
	Stdout io.Writer
	// Stream and SubjectPrefix name this deployment's stream and subjects
	// (broker.Config; empty for the defaults). cmd/ladle derives them from
	// the database's instance id, so deployments sharing a NATS never
	// consume each other's events.
	Stream        string
	SubjectPrefix string
	// NATSReplicas is the stream's replicas on an external cluster
	// (--nats-replicas, default 1).
	NATSReplicas int

	SMTPURL       string // --smtp-url: empty for the dev mailbox
	MailFrom      string // --mail-from: sender address of every email
	MailTemplates string // --mail-templates: per-restaurant template overrides; empty: built-in only
	PublicURL     string // --public-url: base of the status links in emails
	// ConfirmURL, if set, makes double opt-in confirmation links and turns
	// on their consumer (worker.ConsumerConfirm).
	ConfirmURL worker.ConfirmLinker

	// WorkerConcurrency, when positive, fixes each email consumer's
	// handlers in this process (--worker-concurrency). Zero (the default)
	// autoscales each pool between WorkerMin and WorkerMax from its lag
	// (--worker-min, --worker-max; defaults 1 and 32).
	WorkerConcurrency int
	WorkerMin         int
	WorkerMax         int
	// WorkerScaleDown is the autoscaler's scale-down stabilization window
	// (--worker-scale-down-window, default 30s).
	WorkerScaleDown time.Duration
	// WorkerTarget is how soon an autoscaled pool aims to drain its lag
	// (--worker-drain-target, default 5s).
	WorkerTarget time.Duration
	// ShutdownGrace is how long Stop lets handlers in progress finish
	// before cancelling them (--shutdown-timeout; default 10s).
	ShutdownGrace time.Duration
	// Registerer, if set, gets the workers' metrics (ladle_consumer_*).
	Registerer prometheus.Registerer
	// AckWait is how soon the broker redelivers an event whose worker died
	// (--ack-wait, default 30s). A live worker keeps its events however
	// long it works on them (it reports progress).
	AckWait time.Duration
	// Backoff overrides the email consumers' retry schedule
	// (worker.DefaultBackoff); tests shorten it.
	Backoff []time.Duration
	// MaxAttempts overrides the deliveries an event gets before it becomes
	// a dead letter (default 8). Deliveries to a worker that died count:
	// that is what stops an event that crashes its worker every time.
	MaxAttempts int
	// SendTimeout bounds one hand-over to the SMTP server (--smtp-timeout,
	// default 30s). An email whose sender died stays reserved for twice
	// that (at most 10s more) before another worker sends it.
	SendTimeout time.Duration
	// Urgent, if set, is held by the relay's rounds and the email
	// handlers, and (worker role) expects each urgent event from its
	// publication until a handler takes it (worker.WatchUrgent), so
	// campaign sends in this process yield to them.
	Urgent *priority.Gate

	Logger *slog.Logger
}

// System is a running event system.
type System struct {
	Broker *broker.Broker
	Relay  *outbox.Relay
	Worker *worker.Worker // nil in the api role
	Hub    *live.Hub      // nil in the worker role: pass to web.Deps.Live
	Feed   *live.Feed     // nil in the worker role
	// Board is the System page's history (api, all): every worker
	// process's pools and the outbox, sampled each second.
	Board     *sysstats.Board
	Transport mail.Transport // nil in the api role

	stopPrune context.CancelFunc // the inbox pruner and the stats publisher (worker role)
	stopWatch func()             // WatchUrgent (worker role)
	pruned    sync.WaitGroup
}

// InboxRetention is how long a processed event id is remembered. It must
// outlive every way the event can come back: the stream keeps events 7 days
// (broker.Config.MaxAge), and a relay that died between publishing and
// marking republishes after the broker's duplicate window. Twice the
// stream's age covers both.
const InboxRetention = 2 * broker.DefaultMaxAge

// pruneInbox deletes inbox rows older than InboxRetention, hourly, in
// bounded batches so a large backlog never holds a long transaction.
func pruneInbox(ctx context.Context, store *sqlstore.Store, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		for {
			n, err := store.PruneInbox(ctx, time.Now().Add(-InboxRetention), 5000)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("prune inbox", "err", err)
				}
				break
			}
			if n < 5000 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Start starts the role's services against store. statusPath returns the
// path of an order's guest status page with its access token, for the links
// in emails; wire it as
//
//	func(id string) string { return ordering.StatusURL(id, orders.AccessToken(id)) }
//
// An external NATS that is down does not fail Start: the services retry
// until it is back, and orders are taken meanwhile (they wait in the
// outbox).
func Start(ctx context.Context, cfg Config, store *sqlstore.Store, statusPath func(orderID string) string) (*System, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch cfg.Role {
	case "api", "worker", "all":
	default:
		return nil, fmt.Errorf("events: unknown role %q", cfg.Role)
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.NATSURL != "" && cfg.NATSListen != "" {
		return nil, errors.New("events: --nats-listen is for the embedded server; it cannot be used with --nats-url")
	}
	natsToken := cfg.NATSToken
	madeToken := false
	if cfg.NATSListen != "" && natsToken == "" {
		var err error
		if natsToken, madeToken, err = dataDirToken(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	sys := &System{}
	ok := false
	defer func() {
		if !ok {
			sys.Stop()
		}
	}()
	var err error
	sys.Broker, err = broker.Open(ctx, broker.Config{URL: cfg.NATSURL, DataDir: cfg.DataDir, Listen: cfg.NATSListen,
		Token: natsToken, SyncInterval: cfg.NATSSync, Stream: cfg.Stream, SubjectPrefix: cfg.SubjectPrefix,
		Replicas: externalOnly(cfg.NATSURL, cfg.NATSReplicas),
		Name:     "ladle-" + cfg.Role, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}

	if iv := sys.Broker.Unsynced(); iv > 0 {
		if err := republishUnsynced(ctx, store, iv, cfg.Logger); err != nil {
			return nil, err
		}
		sys.Broker.Settle()
	}

	sys.Relay = outbox.New(outbox.Config{Store: store, Publisher: sys.Broker, Logger: cfg.Logger, Urgent: cfg.Urgent})
	store.OnEventsCommitted(sys.Relay.Wake)
	if err := sys.Relay.Start(ctx); err != nil {
		return nil, err
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(&outbox.Collector{Relay: sys.Relay, Backlog: store}); err != nil {
			return nil, err
		}
	}

	if cfg.Role != "api" {
		if sys.Transport, err = mail.Open(cfg.SMTPURL); err != nil {
			return nil, err
		}
		tpl, err := mail.NewTemplates(cfg.MailTemplates)
		if err != nil {
			return nil, err
		}
		from := cfg.MailFrom
		if from == "" {
			from = "Ladle <orders@localhost>"
		}
		var scale *autoscale.Config
		if cfg.WorkerConcurrency <= 0 {
			scale = &autoscale.Config{Min: cfg.WorkerMin, Max: cfg.WorkerMax, ScaleDownWindow: cfg.WorkerScaleDown, Target: cfg.WorkerTarget}
		}
		cons, err := worker.EmailConsumers(worker.EmailConfig{
			Store: store, Transport: sys.Transport, Templates: tpl, From: from,
			StatusURL: worker.StatusLinker(cfg.PublicURL, statusPath), PublicURL: cfg.PublicURL,
			Concurrency: cfg.WorkerConcurrency, Scale: scale, AckWait: cfg.AckWait, SendTimeout: cfg.SendTimeout, Backoff: cfg.Backoff,
			MaxAttempts: cfg.MaxAttempts, Urgent: cfg.Urgent, Confirm: store, ConfirmURL: cfg.ConfirmURL,
		})
		if err != nil {
			return nil, err
		}
		sys.Worker = worker.New(worker.Config{Broker: sys.Broker, DeadLetters: store, Logger: cfg.Logger,
			ShutdownGrace: cfg.ShutdownGrace}, cons...)
		if cfg.Registerer != nil {
			if err := cfg.Registerer.Register(sys.Worker); err != nil {
				return nil, err
			}
		}
		if err := sys.Worker.Start(ctx); err != nil {
			return nil, err
		}
		if cfg.Urgent != nil {
			// Campaign sends in this process yield to urgent events from
			// the moment any process publishes one.
			if sys.stopWatch, err = worker.WatchUrgent(sys.Broker, cfg.Urgent); err != nil {
				return nil, err
			}
		}
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		sys.stopPrune = cancel
		sys.pruned.Add(1)
		go func() { defer sys.pruned.Done(); pruneInbox(pctx, store, cfg.Logger) }()
		host, _ := os.Hostname()
		sys.pruned.Go(func() {
			sysstats.Publish(pctx, sys.Broker.Conn(), statsSubject(sys.Broker),
				sysstats.WorkerSnapshot(fmt.Sprintf("%s:%d:%s", host, os.Getpid(), cfg.Role), sys.Worker))
		})
	}
	if cfg.Role != "worker" {
		sys.Board = &sysstats.Board{Outbox: store, Logger: cfg.Logger}
		if err := sys.Board.Start(sys.Broker.Conn(), statsSubject(sys.Broker)); err != nil {
			return nil, err
		}
		sys.Hub = live.NewHub()
		sys.Feed = live.NewFeed(sys.Broker, sys.Hub, cfg.Logger)
		if err := sys.Feed.Start(ctx); err != nil {
			return nil, err
		}
	}
	if madeToken && cfg.Stdout != nil {
		fmt.Fprintf(cfg.Stdout, "NATS on %s requires a token, made now and kept in %s (shown this once).\n"+
			"Other Ladle processes: --nats-url %s\n", cfg.NATSListen, TokenFile(cfg.DataDir), sys.Broker.ClientURL())
	}
	cfg.Logger.Info("event system started", "role", cfg.Role, "nats", natsDesc(cfg, sys.Broker),
		"mail", transportName(sys.Transport))
	ok = true
	return sys, nil
}

// externalOnly returns n for an external NATS and 0 (the default, one
// replica) for the embedded single server.
func externalOnly(url string, n int) int {
	if url == "" {
		return 0
	}
	return n
}

// statsSubject is the core NATS subject worker processes report their pools
// on: the deployment's subject prefix with "_stats" (outside the event
// stream's subjects, prefix + ".>").
func statsSubject(b *broker.Broker) string {
	return strings.TrimSuffix(b.Subject("x"), ".x") + "_stats"
}

func natsDesc(cfg Config, b *broker.Broker) string {
	if b.Embedded() {
		if u := b.ClientURL(); u != "" {
			return "embedded, listening on " + broker.RedactURL(u) + " (token required)"
		}
		return "embedded (in-process only)"
	}
	return broker.RedactURL(cfg.NATSURL)
}

// TokenFile is where the embedded NATS server's token is kept when
// --nats-token is not given.
func TokenFile(dataDir string) string { return filepath.Join(dataDir, "nats-token") }

// dataDirToken reads the token kept in the data dir, making it (mode 0600)
// on first use; made reports that it was made now.
func dataDirToken(dataDir string) (token string, made bool, err error) {
	if dataDir == "" {
		return "", false, errors.New("events: --nats-listen needs a data dir for its token, or --nats-token")
	}
	path := TokenFile(dataDir)
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
		return "", false, fmt.Errorf("events: %s is empty; delete it to make a new NATS token", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("events: NATS token: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("events: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	token = hex.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return dataDirToken(dataDir) // another process made it just now
	}
	if err != nil {
		return "", false, fmt.Errorf("events: NATS token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("events: NATS token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("events: NATS token: %w", err)
	}
	return token, true, nil
}

func transportName(t mail.Transport) string {
	if t == nil {
		return "none (api role)"
	}
	return t.Name()
}

// Stop stops the services in the order that loses nothing: the workers
// finish what they hold, the relay stops publishing, the live feed stops,
// then the broker (and the embedded server) shut down.
func (s *System) Stop() {
	if s.stopWatch != nil {
		s.stopWatch()
	}
	if s.stopPrune != nil {
		s.stopPrune()
		s.pruned.Wait()
	}
	if s.Worker != nil {
		s.Worker.Stop()
	}
	if s.Relay != nil {
		s.Relay.Stop()
	}
	if s.Feed != nil {
		s.Feed.Stop()
	}
	if s.Board != nil {
		s.Board.Stop()
	}
	if s.Transport != nil {
		s.Transport.Close()
	}
	if s.Broker != nil {
		s.Broker.Close()
	}
}
