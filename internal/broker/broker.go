// Package broker connects Ladle to NATS JetStream: by default a nats-server
// embedded in the process (JetStream on a file store under the data
// directory, reached through an in-process connection, no TCP port unless a
// listen address is given), or an external server or cluster by URL.
//
// It owns the one stream that carries Ladle's events, creates or updates it
// (and the consumers the workers ask for) idempotently, and publishes events
// with Nats-Msg-Id set to the event id, so a re-publish inside the stream's
// duplicate window is dropped by the server.
package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for Config fields left zero.
const (
	DefaultStream          = "LADLE_EVENTS"
	DefaultSubjectPrefix   = "ladle.events"
	DefaultMaxAge          = 7 * 24 * time.Hour
	DefaultDuplicateWindow = 10 * time.Minute
)

// SyncAlways is the SyncInterval value that makes the embedded server fsync
// every write before it acknowledges it. It is the default.
const SyncAlways time.Duration = 0

// Config says which NATS to use and how the event stream looks.
type Config struct {
	// URL is an external NATS server or cluster ("nats://a:4222,nats://b:4222").
	// Empty runs an embedded server instead.
	URL string

	// DataDir is where the embedded server keeps JetStream's file store
	// (DataDir/jetstream). Required for the embedded server.
	DataDir string
	// Listen makes the embedded server also accept TCP clients on this
	// host:port (for example so a separate worker process can use it).
	// Empty: no port is opened at all; only this process can connect.
	// A listening server always requires Token: anyone who could publish
	// to it could feed the workers events.
	Listen string
	// Token is the credential: the one the embedded server requires of
	// every client (its own in-process connection included), or the one
	// sent to an external server whose URL carries no user information.
	// An embedded server that listens with no Token set makes a random one
	// for its lifetime (see ClientURL); pass a fixed one (Ladle keeps it in
	// the data dir) for other processes to be configured with.
	Token string
	// SyncInterval is the embedded server's durability setting (JetStream's
	// sync_interval). SyncAlways (0, the default) fsyncs every message and
	// every consumer ack before the server acknowledges it: a publish that
	// was acknowledged survives power loss, so the relay may mark the outbox
	// row published. A positive interval fsyncs in the background that often
	// instead: several times the throughput (see DESIGN.md: ~2.4k vs ~90k
	// publishes/s here), but a machine crash (not a process crash: the OS
	// still has the data) can lose up to that much acknowledged data; the
	// next start reports it (Unsynced) and the event system publishes that
	// interval again from the outbox (see unsynced.go). For an
	// external server this field is ignored: its own configuration rules
	// (sync_interval in its jetstream block; a replicated cluster is the usual
	// answer there).
	SyncInterval time.Duration

	// Stream is the JetStream stream name (default LADLE_EVENTS).
	Stream string
	// SubjectPrefix is prepended to event types: an event of type
	// "order.placed" is published on SubjectPrefix + ".order.placed"
	// (default "ladle.events"). Tests sharing one server use their own.
	SubjectPrefix string
	// MaxAge bounds how long events are kept in the stream (default 7 days).
	// Consumers that fall further behind than this lose events, so it is
	// long on purpose.
	MaxAge time.Duration
	// DuplicateWindow is how long the server remembers message ids to drop
	// re-publishes (default 10 minutes). A relay that crashed between a
	// publish and marking the row published and comes back later than this
	// publishes the event again; consumers' inboxes absorb that.
	DuplicateWindow time.Duration
	// Replicas of the stream on an external cluster (default 1).
	Replicas int

	// Name identifies this connection in the server's monitoring.
	Name   string
	Logger *slog.Logger
}

// Broker is a live connection to JetStream with the event stream set up.
type Broker struct {
	cfg   Config
	log   *slog.Logger
	srv   *server.Server // nil when connected to an external server
	nc    *nats.Conn
	js    jetstream.JetStream
	ready atomic.Bool // the stream is known to exist as configured
	// unsynced is what the embedded store's previous run may have lost
	// (see unsynced.go); marked says this run keeps the marker, which a
	// clean Close clears once the store is synced and, if unsynced > 0,
	// Settle was called.
	unsynced time.Duration
	marked   bool
	settled  atomic.Bool
	mu       sync.Mutex // serialises stream setup
	closed   atomic.Bool
}

// ParseSync parses a --nats-sync flag value: "always" (or "") for
// SyncAlways, or a Go duration such as "1s" for a background sync interval.
func ParseSync(s string) (time.Duration, error) {
	if s == "" || strings.EqualFold(s, "always") {
		return SyncAlways, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("nats sync: %q is neither \"always\" nor a positive duration", s)
	}
	return d, nil
}

// Open starts the embedded server (when cfg.URL is empty) or connects to the
// external one, then creates or updates the event stream.
//
// An external server that is down at start is not an error: the connection
// keeps retrying in the background, Open returns a Broker whose Ready fails
// until the server is back, and the relay and workers wait on Ready. That is
// what lets the API keep taking orders while NATS is unavailable.
func Open(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}
	cfg.SubjectPrefix = strings.TrimSuffix(cfg.SubjectPrefix, ".")
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = DefaultDuplicateWindow
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Name == "" {
		cfg.Name = "ladle"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SyncInterval < 0 {
		return nil, errors.New("broker: negative SyncInterval")
	}
	b := &Broker{cfg: cfg, log: cfg.Logger.With("component", "broker")}

	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// Keep publishes made while disconnected out of the reconnect
		// buffer: the outbox is the buffer, and an unacknowledged publish
		// must fail fast so the relay retries it rather than wait.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil && !b.closed.Load() {
				b.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			b.log.Warn("nats async error", "subject", subject, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			// The server may have lost its state (a dev server without
			// storage): set the stream up again before the next use.
			b.ready.Store(false)
			b.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
	}
	if cfg.URL == "" && cfg.Listen != "" && cfg.Token == "" {
		cfg.Token = randomToken()
		b.cfg.Token = cfg.Token
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	var err error
	if cfg.URL == "" {
		if err := b.mark(); err != nil {
			return nil, err
		}
		if b.srv, err = startEmbedded(cfg, b.log); err != nil {
			return nil, err
		}
		b.nc, err = nats.Connect("", append(opts, nats.InProcessServer(b.srv))...)
	} else {
		b.nc, err = nats.Connect(cfg.URL, append(opts, nats.RetryOnFailedConnect(true))...)
	}
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("broker: connect: %w", err)
	}
	// An ack that never comes (lost in a reconnect) must not hold the relay
	// forever: the publish fails after the timeout and is retried.
	if b.js, err = jetstream.New(b.nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(10*time.Second)); err != nil {
		b.Close()
		return nil, fmt.Errorf("broker: jetstream: %w", err)
	}
	if cfg.URL == "" {
		// The embedded server is right here: failing to set up the stream
		// is a real error (a bad data directory), not an outage.
		if err := b.Ready(ctx); err != nil {
			b.Close()
			return nil, err
		}
	} else if b.nc.IsConnected() {
		if err := b.Ready(ctx); err != nil {
			b.log.Warn("event stream not set up yet; will retry", "err", err)
		}
	} else {
		b.log.Warn("nats not reachable yet; will keep trying", "url", RedactURL(cfg.URL))
	}
	return b, nil
}

func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("broker: the embedded server needs a data directory")
	}
	dir := filepath.Join(cfg.DataDir, "jetstream")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	opts := &server.Options{
		ServerName: "ladle-embedded",
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		DontListen: cfg.Listen == "",
		// Bound memory use of the tiny in-memory streams the server keeps
		// for itself; events live on disk.
		JetStreamMaxMemory: 64 << 20,
		// Every client, the in-process one included, presents the token
		// (Open makes one when listening without it).
		Authorization: cfg.Token,
	}
	if cfg.SyncInterval == SyncAlways {
		opts.SyncAlways = true
	} else {
		opts.SyncInterval = cfg.SyncInterval
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("broker: listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("broker: listen address %q: bad port", cfg.Listen)
		}
		if host == "" {
			host = "127.0.0.1"
		}
		if p == 0 {
			p = server.RANDOM_PORT // nats-server reads 0 as its default, 4222
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("broker: embedded server: %w", err)
	}
	srv.SetLoggerV2(&serverLog{log: log.With("nats", "embedded")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("broker: embedded server did not start within 30s")
	}
	log.Info("embedded nats started", "store", dir, "listen", cfg.Listen, "sync_always", opts.SyncAlways)
	return srv, nil
}

// Ready makes sure the event stream exists with this configuration. It is
// cheap once it has succeeded (until a reconnect), so loops call it before
// each round of work.
func (b *Broker) Ready(ctx context.Context) error {
	if b.ready.Load() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ready.Load() {
		return nil
	}
	if !b.nc.IsConnected() {
		return ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	want := jetstream.StreamConfig{
		Name:        b.cfg.Stream,
		Description: "Ladle domain events (transactional outbox relay)",
		Subjects:    []string{b.cfg.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      b.cfg.MaxAge,
		Duplicates:  b.cfg.DuplicateWindow,
		Replicas:    b.cfg.Replicas,
		Discard:     jetstream.DiscardOld,
	}
	// Every process runs this at start: look first, and update only what
	// differs, so processes starting together do not update the stream
	// under each other's feet (nor log a config change each time).
	s, err := b.js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = b.js.CreateOrUpdateStream(ctx, want)
	case err == nil && !sameStream(s.CachedInfo().Config, want):
		_, err = b.js.UpdateStream(ctx, want)
	}
	if err != nil {
		return fmt.Errorf("broker: stream %s: %w", b.cfg.Stream, err)
	}
	b.ready.Store(true)
	return nil
}

// sameStream reports whether the server's stream has the settings we set.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention &&
		have.Storage == want.Storage && have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates &&
		have.Replicas == want.Replicas && have.Discard == want.Discard && have.Description == want.Description
}

// ErrUnavailable is returned while the connection to NATS is down.
var ErrUnavailable = errors.New("broker: nats unavailable")

// Consumer creates or updates a durable consumer on the event stream (its
// Durable name is required) and returns it.
func (b *Broker) Consumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if err := b.Ready(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := b.js.CreateOrUpdateConsumer(ctx, b.cfg.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("broker: consumer %s: %w", cfg.Durable+cfg.Name, err)
	}
	return c, nil
}

// DeleteConsumer removes a consumer; a missing one is not an error.
func (b *Broker) DeleteConsumer(ctx context.Context, name string) error {
	err := b.js.DeleteConsumer(ctx, b.cfg.Stream, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	return err
}

// Subject is the subject events of the given type are published on.
func (b *Broker) Subject(eventType string) string { return b.cfg.SubjectPrefix + "." + eventType }

// EventType is the inverse of Subject: the event type of a message subject.
func (b *Broker) EventType(subject string) string {
	return strings.TrimPrefix(subject, b.cfg.SubjectPrefix+".")
}

// StreamName is the configured stream's name.
func (b *Broker) StreamName() string { return b.cfg.Stream }

// Embedded reports whether this broker runs its own server.
func (b *Broker) Embedded() bool { return b.srv != nil }

// ClientURL is the URL another process can connect to: the external URL, or
// the embedded server's listen address with its token as the URL's user
// ("nats://TOKEN@127.0.0.1:4222"; "" when it listens on no port). It is a
// secret: log RedactURL(ClientURL()).
func (b *Broker) ClientURL() string {
	if b.srv == nil {
		return b.cfg.URL
	}
	if b.cfg.Listen == "" {
		return ""
	}
	u, err := url.Parse(b.srv.ClientURL())
	if err != nil {
		return b.srv.ClientURL()
	}
	if b.cfg.Token != "" {
		u.User = url.User(b.cfg.Token)
	}
	return u.String()
}

// RedactURL returns a NATS URL list (comma-separated) with every user,
// password or token replaced by "redacted", for logs and error messages.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		} else if err != nil && strings.Contains(p, "@") {
			parts[i] = "redacted"
		}
	}
	return strings.Join(parts, ",")
}

// randomToken is a fresh 256-bit token, hex-encoded.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Conn is the underlying NATS connection.
func (b *Broker) Conn() *nats.Conn { return b.nc }

// JetStream is the underlying JetStream context (benchmarks use it for the
// raw baseline).
func (b *Broker) JetStream() jetstream.JetStream { return b.js }

// Connected reports whether the connection to NATS is up.
func (b *Broker) Connected() bool { return b.nc.IsConnected() }

// Close drains the connection and stops the embedded server.
func (b *Broker) Close() {
	if b.closed.Swap(true) {
		return
	}
	if b.nc != nil {
		b.nc.Close()
	}
	b.shutdownServer()
}

func (b *Broker) shutdownServer() {
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
	}
	if b.marked && (b.unsynced == 0 || b.settled.Load()) {
		// A clean stop: put the store on disk, then say so.
		err := syncTree(filepath.Join(b.cfg.DataDir, "jetstream"))
		if err == nil {
			err = clearMarker(b.cfg.DataDir)
		}
		if err != nil {
			b.log.Warn("embedded nats store not synced at stop; the next start republishes its last interval", "err", err)
		}
	}
}

// mark reads the marker an earlier run of the embedded server left and
// writes this run's (see unsynced.go), before the server starts.
func (b *Broker) mark() error {
	if b.cfg.DataDir == "" {
		return nil // startEmbedded refuses it
	}
	if err := os.MkdirAll(b.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	prev, err := readMarker(b.cfg.DataDir)
	if err != nil {
		return err
	}
	b.unsynced = prev
	if iv := max(prev, b.cfg.SyncInterval); iv > 0 {
		if err := writeMarker(b.cfg.DataDir, iv); err != nil {
			return err
		}
		b.marked = true
	}
	if prev > 0 {
		b.log.Warn("embedded nats did not stop cleanly; events of its last sync interval will be published again",
			"interval", prev)
	}
	return nil
}

// Unsynced returns how much acknowledged data the embedded server's store
// may have lost in its previous run: the sync interval that run used, when
// it did not stop cleanly; 0 when it did, when it synced every write, and
// for an external server (whose durability is its own configuration). The
// event system republishes that window, then calls Settle.
func (b *Broker) Unsynced() time.Duration { return b.unsynced }

// Settle records that what Unsynced reported has been dealt with, so a
// clean Close may clear the marker. Until then the marker stays, and the
// next start reports the window again.
func (b *Broker) Settle() { b.settled.Store(true) }

// serverLog sends the embedded server's log lines to slog. Its notices are
// chatty at start, so they go to debug; warnings and errors stay visible.
type serverLog struct{ log *slog.Logger }

func (l *serverLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLog) Tracef(format string, v ...any)  {}
