package menucache_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// redisClient opens the production client (OpenRedis) on url.
func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	c, err := menucache.OpenRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// redisPrefix returns a key prefix private to the test, deleting its keys
// when the test ends (others share this Redis).
func redisPrefix(t *testing.T, rc *redis.Client) string {
	prefix := randomName("test:") + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rc.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rc.Del(ctx, keys...)
		}
	})
	return prefix
}

// A rebuild in one process fills Redis; another process with a cold memory
// tier reads it from there instead of the database, and loses nothing the
// JSON leaves out (image keys).
func TestRedisSecondTier(t *testing.T) {
	t.Parallel()
	url := testenv.RedisURL(t)
	s, f := seeded(t)
	rc := redisClient(t, url)
	prefix := redisPrefix(t, rc)

	srcA, srcB := &counting{Source: s}, &counting{Source: s}
	a := newCache(t, menucache.Config{Source: srcA, Redis: rc, RedisPrefix: prefix})
	b := newCache(t, menucache.Config{Source: srcB, Redis: redisClient(t, url), RedisPrefix: prefix})

	da, err := a.Document(t.Context(), f.Restaurant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Rebuilds != 1 || st.RedisMisses != 1 {
		t.Errorf("A: %+v, want one Redis miss and one rebuild", st)
	}
	db, err := b.Document(t.Context(), f.Restaurant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Rebuilds != 0 || st.RedisHits != 1 || srcB.menus.Load() != 0 {
		t.Errorf("B: %+v, %d menu queries; want a Redis hit and no rebuild", st, srcB.menus.Load())
	}
	if string(db.JSON) != string(da.JSON) || db.ETag != da.ETag || !reflect.DeepEqual(db.Menu, da.Menu) {
		t.Error("the document read from Redis differs from the one built")
	}
	if db.Menu.ItemByID(f.Burger.ID).ImageKey != "images/burger.jpg" {
		t.Error("the image key was lost on the way through Redis")
	}
}

// proxy is a TCP proxy to Redis that the test can cut and restore on the
// same address: Redis going away and coming back, as the cache sees it.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, addr: "127.0.0.1:0"}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(up, c); up.Close() })
			p.wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
}

// stop closes the listener and every connection through it.
func (p *proxy) stop() {
	p.mu.Lock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// Redis going away: reads fall back to the database and nothing breaks;
// when Redis comes back the cache uses it again.
func TestRedisGoesAway(t *testing.T) {
	t.Parallel()
	target := testenv.RedisURL(t)
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	direct := redisClient(t, target)
	prefix := redisPrefix(t, direct)
	px := startProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = px.addr
	rc := redisClient(t, viaProxy.String())

	s, f := seeded(t)
	const backoff = 200 * time.Millisecond
	c := newCache(t, menucache.Config{Source: s, Redis: rc, RedisPrefix: prefix, RedisBackoff: backoff, VersionTTL: time.Hour})
	ctx := t.Context()

	inRedis := func(version int64) bool {
		t.Helper()
		keys, err := direct.Keys(ctx, prefix+"*:"+strconv.FormatInt(f.Restaurant.ID, 10)+":"+strconv.FormatInt(version, 10)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys) == 1
	}
	// inCache is the time spent in the cache's own calls, not in the
	// test's writes to the database.
	var inCache time.Duration
	edit := func(price int64) int64 {
		t.Helper()
		setPrice(t, s, f.Fries, ladle.Money(price))
		start := time.Now()
		c.Invalidate(ctx, f.Restaurant.ID)
		d, err := c.Document(ctx, f.Restaurant.ID)
		inCache += time.Since(start)
		if err != nil {
			t.Fatalf("Document with price %d: %v", price, err)
		}
		if got := priceOf(t, d.Menu, f.Fries.ID); int64(got) != price {
			t.Fatalf("served price %d, want %d", got, price)
		}
		return d.Version
	}

	d, err := c.Document(ctx, f.Restaurant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !inRedis(d.Version) {
		t.Fatal("the rebuild was not written to Redis")
	}

	px.stop() // Redis is gone
	inCache = 0
	v1 := edit(501)
	v2 := edit(502) // within the backoff: Redis is not even asked
	// Only the cache's calls are timed: the price updates before them are
	// the test's writes, and on a loaded machine under the race detector
	// they alone took most of a second. A fallback that waited for Redis's
	// dial timeout (500 ms) on each read would still exceed this.
	if inCache > time.Second {
		t.Errorf("two reads with Redis down took %v in the cache; the fallback must be quick", inCache)
	}
	st := c.Stats()
	if st.RedisErrors == 0 || st.Rebuilds != 3 {
		t.Errorf("with Redis down: %+v, want Redis errors and a rebuild per version", st)
	}
	if inRedis(v1) || inRedis(v2) {
		t.Error("versions built while Redis was away are in Redis")
	}

	px.start() // Redis is back, on the same address
	time.Sleep(backoff + 50*time.Millisecond)
	var v3 int64
	deadline := time.Now().Add(30 * time.Second)
	for price := int64(503); ; price++ {
		v3 = edit(price)
		if inRedis(v3) {
			break // recovered: the new version went to Redis again
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache did not use Redis again after it came back: %+v", c.Stats())
		}
		time.Sleep(backoff)
	}
	// And another process reads that version from Redis.
	other := newCache(t, menucache.Config{Source: s, Redis: direct, RedisPrefix: prefix})
	if _, err := other.Document(ctx, f.Restaurant.ID); err != nil {
		t.Fatal(err)
	}
	if other.Stats().RedisHits != 1 {
		t.Errorf("another process after recovery: %+v, want a Redis hit", other.Stats())
	}
}
