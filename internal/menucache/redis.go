package menucache

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/httpcache"
)

// OpenRedis returns a client for a redis:// or rediss:// URL (the
// --redis-url flag) with timeouts that suit a cache: a Redis that does not
// answer within a few hundred milliseconds is treated as down, and the read
// goes to the database instead of waiting.
func OpenRedis(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("menucache: redis URL: %w", err)
	}
	opt.DialTimeout = 500 * time.Millisecond
	opt.ReadTimeout = 300 * time.Millisecond
	opt.WriteTimeout = 300 * time.Millisecond
	opt.MaxRetries = 1
	opt.PoolTimeout = 500 * time.Millisecond
	// One dial attempt: a refused connection is an answer ("down"), and the
	// cache's own backoff decides when to try again.
	opt.DialerRetries = 1
	return redis.NewClient(opt), nil
}

// redisValue is what Redis holds for one document: the served bytes, and
// the tree with the fields JSON leaves out (image keys, parent ids), so a
// Redis hit needs no JSON decoding and loses nothing. gob ignores the json
// tags, and tolerates fields added later.
type redisValue struct {
	JSON []byte
	Menu *ladle.Menu
}

func (c *Cache) redisKey(restaurantID, version int64) string {
	return c.redisPrefix + strconv.FormatInt(restaurantID, 10) + ":" + strconv.FormatInt(version, 10)
}

// redisUp reports whether Redis may be asked now.
func (c *Cache) redisUp() bool {
	return c.redis != nil && time.Now().UnixNano() >= c.redisDown.Load()
}

// redisFailed records an error and leaves Redis alone for a while, so a
// Redis that is down costs one timeout per backoff, not one per read.
func (c *Cache) redisFailed(ctx context.Context, op string, err error) {
	c.st.redisErrors.Add(1)
	c.redisDown.Store(time.Now().Add(c.redisBackoff).UnixNano())
	c.log.WarnContext(ctx, "menucache: redis "+op+" failed; using the database for now", "err", err,
		"retry_in", c.redisBackoff)
}

// redisGet returns the document from Redis, or nil (miss, Redis down, or an
// unreadable value, which is then rebuilt).
func (c *Cache) redisGet(ctx context.Context, key docKey) *Document {
	if !c.redisUp() {
		return nil
	}
	b, err := c.redis.Get(ctx, c.redisKey(key.restaurantID, key.version)).Bytes()
	if errors.Is(err, redis.Nil) {
		c.st.redisMisses.Add(1)
		return nil
	}
	if err != nil {
		c.redisFailed(ctx, "GET", err)
		return nil
	}
	var v redisValue
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&v); err != nil || v.Menu == nil {
		c.st.redisMisses.Add(1)
		c.log.WarnContext(ctx, "menucache: unreadable redis value; rebuilding", "err", err)
		return nil
	}
	c.st.redisHits.Add(1)
	emptyNotNil(v.Menu)
	return &Document{
		RestaurantID: v.Menu.RestaurantID,
		Version:      v.Menu.Version,
		ETag:         httpcache.VersionETag("menu", v.Menu.RestaurantID, v.Menu.Version),
		JSON:         v.JSON,
		Menu:         v.Menu,
	}
}

// redisSet files d under its own version. Failures are logged and ignored.
func (c *Cache) redisSet(ctx context.Context, d *Document) {
	if !c.redisUp() {
		return
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(redisValue{JSON: d.JSON, Menu: d.Menu}); err != nil {
		c.log.ErrorContext(ctx, "menucache: encoding for redis", "err", err)
		return
	}
	if err := c.redis.Set(ctx, c.redisKey(d.RestaurantID, d.Version), buf.Bytes(), c.redisTTL).Err(); err != nil {
		c.redisFailed(ctx, "SET", err)
	}
}

// emptyNotNil restores the empty lists gob leaves out (it sends no empty
// slice, so they decode as nil), making the tree equal to the store's: code
// that encodes it again writes [] rather than null.
func emptyNotNil(m *ladle.Menu) {
	if m.Categories == nil {
		m.Categories = []ladle.Category{}
	}
	for gi := range m.Groups {
		if m.Groups[gi].Modifiers == nil {
			m.Groups[gi].Modifiers = []ladle.Modifier{}
		}
	}
	for ci := range m.Categories {
		c := &m.Categories[ci]
		if c.Items == nil {
			c.Items = []ladle.Item{}
		}
		for ii := range c.Items {
			it := &c.Items[ii]
			if it.ModifierGroups == nil {
				it.ModifierGroups = []ladle.ModifierGroup{}
			}
			if it.Dietary == nil {
				it.Dietary = []string{}
			}
			for gi := range it.ModifierGroups {
				if it.ModifierGroups[gi].Modifiers == nil {
					it.ModifierGroups[gi].Modifiers = []ladle.Modifier{}
				}
			}
		}
	}
}
