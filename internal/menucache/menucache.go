// Package menucache serves menu documents from memory: it sits in front of
// the store as a ladle.MenuReader for the storefront and the menu API.
//
// # How freshness works
//
// A menu is cached under (restaurant, version), and the version changes in
// the same transaction as every edit, so a cached document is never wrong
// for its key: the only question is which version is current. Asking the
// database on every request would cost a round trip per read, so each
// process keeps the current version of each restaurant in memory, and:
//
//   - The process that made an edit calls Invalidate after the commit: its
//     own copy of the version is dropped at once, so its next read asks the
//     database — the editor sees the edit on the next page load.
//   - Invalidate also publishes the restaurant id on a Bus (NATS core
//     pub/sub or Redis pub/sub); every other process drops its copy when the
//     message arrives, milliseconds later.
//   - Messages can be lost (a broker restart, a partition), so a remembered
//     version is trusted for at most VersionTTL (default 1 s) whatever
//     happens; it is re-read in the background after half of that, so a
//     busy key never waits on the database. An edit is therefore visible to
//     every process within one second even with the bus down.
//   - otter discards a load that an invalidation overtook, so a version
//     read before the edit committed can never be stored after the drop.
//
// One rebuild per key at a time: concurrent readers of a cold key wait for
// the one load otter runs (its loader is single-flight), whether the key is
// a version or a document.
//
// # Tiers
//
// Memory first (otter, bounded by bytes). With Redis configured, a memory
// miss asks Redis before the database, and a rebuild writes Redis, so a
// fleet of API processes rebuilds a new version about once, not once each.
// Redis is an optimisation only: when a Redis call fails the cache stops
// asking for RedisBackoff and reads from the database meanwhile; nothing
// else changes, and it uses Redis again once Redis answers.
//
// Checkout never reads through this package: it prices inside its own
// transaction from the tables, so a stale cache can show an old price but
// never charge one.
package menucache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ladle-dev/ladle"
)

// Source is what the cache reads from: ladle.Store satisfies it.
type Source interface {
	Menu(ctx context.Context, restaurantID int64) (*ladle.Menu, error)
	MenuVersion(ctx context.Context, restaurantID int64) (int64, error)
	RestaurantBySlug(ctx context.Context, slug string) (*ladle.Restaurant, error)
}

// Config configures a Cache. Only Source is required.
type Config struct {
	Source Source
	// ImageURL maps an item's image key to the URL clients load; the
	// document is encoded with it applied (Item.Image). Nil leaves Image
	// empty.
	ImageURL func(key string) string
	// Redis, if set, is the second tier (see OpenRedis for a client with
	// suitable timeouts). Keys start with RedisPrefix (default "ladle:").
	Redis       redis.UniversalClient
	RedisPrefix string
	// RedisTTL is how long Redis keeps a document (default 24 h); versions
	// never change, so this only bounds the memory old versions take.
	RedisTTL time.Duration
	// RedisBackoff is how long the cache leaves Redis alone after a failed
	// call (default 1 s).
	RedisBackoff time.Duration
	// Bus carries invalidations to the other processes; nil for a single
	// process.
	Bus Bus
	// VersionTTL bounds how long a remembered version is trusted without
	// news from the bus (default 1 s; must be at least 10 ms).
	VersionTTL time.Duration
	// MaxBytes bounds the memory tier, counted as three times each encoded
	// document (the bytes and the decoded tree). Default 64 MiB.
	MaxBytes uint64
	// Registerer, if set, gets the cache's Prometheus metrics.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Document is one version of a restaurant's menu, as served.
type Document struct {
	RestaurantID int64
	Version      int64
	// ETag is the strong entity tag of JSON: httpcache.VersionETag("menu",
	// RestaurantID, Version).
	ETag string
	// JSON is the encoded menu, Item.Image filled: the menu API writes it
	// as is, so a cache hit costs no encoding.
	JSON []byte
	// Menu is the same document decoded, for pages that render it. It is
	// shared by every reader and must not be modified.
	Menu *ladle.Menu
}

type docKey struct {
	restaurantID int64
	version      int64
}

// Cache is the menu cache. It is safe for concurrent use.
type Cache struct {
	src      Source
	imageURL func(string) string
	log      *slog.Logger
	origin   string // this process, to skip its own bus messages

	versions *otter.Cache[int64, int64]  // restaurant → current menu version
	slugs    *otter.Cache[string, int64] // slug → restaurant id (0: no such slug)
	docs     *otter.Cache[docKey, *Document]

	// The loaders, made once: a method value made per call would allocate
	// on the hot path.
	versionLoader otter.Loader[int64, int64]
	slugLoader    otter.Loader[string, int64]
	docLoader     otter.Loader[docKey, *Document]

	redis        redis.UniversalClient
	redisPrefix  string
	redisTTL     time.Duration
	redisBackoff time.Duration
	redisDown    atomic.Int64 // unix nanos until which Redis is not asked

	bus         Bus
	unsubscribe func()

	st counters
}

// New builds a Cache and, if cfg.Bus is set, subscribes to it. Close
// releases it.
func New(cfg Config) (*Cache, error) {
	if cfg.Source == nil {
		return nil, fmt.Errorf("menucache: Config.Source is required")
	}
	if cfg.VersionTTL == 0 {
		cfg.VersionTTL = time.Second
	}
	if cfg.VersionTTL < 10*time.Millisecond {
		return nil, fmt.Errorf("menucache: VersionTTL %v is below 10ms", cfg.VersionTTL)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.RedisPrefix == "" {
		cfg.RedisPrefix = "ladle:"
	}
	if cfg.RedisTTL == 0 {
		cfg.RedisTTL = 24 * time.Hour
	}
	if cfg.RedisBackoff == 0 {
		cfg.RedisBackoff = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	c := &Cache{
		src:          cfg.Source,
		imageURL:     cfg.ImageURL,
		log:          cfg.Logger,
		origin:       hex.EncodeToString(id[:]),
		redis:        cfg.Redis,
		redisTTL:     cfg.RedisTTL,
		redisBackoff: cfg.RedisBackoff,
		bus:          cfg.Bus,
	}
	// The Redis key names the encoding and the image URL base too: processes
	// with another CDN setting, or another build's document format, must not
	// share entries.
	c.versionLoader = otter.LoaderFunc[int64, int64](c.loadVersion)
	c.slugLoader = otter.LoaderFunc[string, int64](c.loadSlug)
	c.docLoader = otter.LoaderFunc[docKey, *Document](c.loadDocument)
	c.redisPrefix = cfg.RedisPrefix + "menu:" + formatVersion + ":" + shortHash(c.imageURLOf("img/x")) + ":"

	logger := otterLogger{cfg.Logger}
	var err error
	c.versions, err = otter.New(&otter.Options[int64, int64]{
		MaximumSize:       100_000,
		ExpiryCalculator:  otter.ExpiryWriting[int64, int64](cfg.VersionTTL),
		RefreshCalculator: otter.RefreshWriting[int64, int64](cfg.VersionTTL / 2),
		Logger:            logger,
	})
	if err != nil {
		return nil, err
	}
	c.slugs, err = otter.New(&otter.Options[string, int64]{
		MaximumSize: 100_000,
		// Slugs never change; an unknown slug is remembered briefly, so a
		// flood of bad URLs costs one query per slug per few seconds.
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, int64]) time.Duration {
			if e.Value == 0 {
				return 5 * time.Second
			}
			return 10 * time.Minute
		}),
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	c.docs, err = otter.New(&otter.Options[docKey, *Document]{
		MaximumWeight: cfg.MaxBytes,
		Weigher: func(_ docKey, d *Document) uint32 {
			return uint32(min(3*uint64(len(d.JSON))+256, math.MaxUint32))
		},
		// Superseded versions are never read again; let them go.
		ExpiryCalculator: otter.ExpiryAccessing[docKey, *Document](10 * time.Minute),
		Logger:           logger,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(collector{c}); err != nil {
			return nil, fmt.Errorf("menucache: registering metrics: %w", err)
		}
	}
	if c.bus != nil {
		unsub, err := c.bus.Subscribe(c.receive)
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("menucache: subscribing to invalidations: %w", err)
		}
		c.unsubscribe = unsub
	}
	return c, nil
}

// formatVersion changes whenever the Redis value's layout does.
const formatVersion = "f1"

// Close unsubscribes from the bus and stops the caches' goroutines. The
// Redis client and the bus's connection belong to the caller.
func (c *Cache) Close() error {
	if c.unsubscribe != nil {
		c.unsubscribe()
	}
	c.stop()
	return nil
}

func (c *Cache) stop() {
	c.versions.StopAllGoroutines()
	c.slugs.StopAllGoroutines()
	c.docs.StopAllGoroutines()
}

// Invalidate is called after an edit of the restaurant's menu has
// committed: this process forgets the version at once (so the editor's next
// read sees the edit) and the bus tells every other process to do the same.
// A failed publish is logged, not returned: the edit stands, and the other
// processes catch up within VersionTTL.
func (c *Cache) Invalidate(ctx context.Context, restaurantID int64) {
	c.forget(restaurantID, &c.st.invalidationsLocal)
	if c.bus == nil {
		return
	}
	if err := c.bus.Publish(ctx, Invalidation{RestaurantID: restaurantID, Origin: c.origin}); err != nil {
		c.log.WarnContext(ctx, "menucache: publishing invalidation", "restaurant_id", restaurantID, "err", err)
	}
}

// Forget drops this process's copy of the restaurant's version without
// telling anyone: for invalidations that arrive by another path (a
// menu.changed event consumer).
func (c *Cache) Forget(restaurantID int64) {
	c.forget(restaurantID, &c.st.invalidationsRemote)
}

func (c *Cache) forget(restaurantID int64, n *atomic.Int64) {
	n.Add(1)
	c.versions.Invalidate(restaurantID)
}

func (c *Cache) receive(inv Invalidation) {
	if inv.Origin == c.origin {
		return // this process already forgot, in Invalidate
	}
	c.forget(inv.RestaurantID, &c.st.invalidationsRemote)
}

func (c *Cache) imageURLOf(key string) string {
	if c.imageURL == nil || key == "" {
		return ""
	}
	return c.imageURL(key)
}

func shortHash(s string) string {
	// FNV-1a: this only tells configurations apart, it guards nothing.
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return strconv.FormatUint(uint64(h), 36)
}

// otterLogger sends otter's reports (failed background refreshes) to slog.
type otterLogger struct{ log *slog.Logger }

func (l otterLogger) Warn(ctx context.Context, msg string, err error) {
	l.log.WarnContext(ctx, "menucache: "+msg, "err", err)
}

func (l otterLogger) Error(ctx context.Context, msg string, err error) {
	l.log.ErrorContext(ctx, "menucache: "+msg, "err", err)
}
