package campaign

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Limiter paces sends per sending route. Reserve books n sends and
// returns how long to wait before making them: every process books from
// the same schedule, so together they never go faster than the route's
// rate. The schedule is GCRA without burst (a theoretical arrival time
// that each booking moves on by n/rate), so n sends booked at once go out
// together at their slot; the chunk size bounds how far any one second
// can run ahead of the rate.
type Limiter interface {
	Reserve(ctx context.Context, route string, n int) (time.Duration, error)
	// SetRate changes the route's rate (sends per second) for every
	// process sharing the limiter, effective for the next booking.
	SetRate(ctx context.Context, route string, perSecond float64) error
	// Rate returns the route's configured rate.
	Rate(ctx context.Context, route string) (float64, error)
	// Slow halves the route's pace for the cooldown (the server said
	// "not now": 421/45x or a dropped connection); repeated slows while
	// one is in force do not compound below a quarter.
	Slow(ctx context.Context, route string, cooldown time.Duration) error
}

// LocalLimiter is the in-process Limiter (the embedded shape: one process).
type LocalLimiter struct {
	defaultRate float64
	now         func() time.Time
	mu          sync.Mutex
	routes      map[string]*localRoute
}

type localRoute struct {
	rate      float64
	tat       time.Time
	slowUntil time.Time
	slow      float64
}

// NewLocalLimiter returns a limiter whose routes start at defaultRate.
func NewLocalLimiter(defaultRate float64) *LocalLimiter {
	return &LocalLimiter{defaultRate: defaultRate, now: time.Now, routes: map[string]*localRoute{}}
}

func (l *LocalLimiter) route(name string) *localRoute {
	r := l.routes[name]
	if r == nil {
		r = &localRoute{rate: l.defaultRate, slow: 1}
		l.routes[name] = r
	}
	return r
}

// Reserve implements Limiter.
func (l *LocalLimiter) Reserve(_ context.Context, route string, n int) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.route(route)
	now := l.now()
	rate := r.rate
	if now.Before(r.slowUntil) {
		rate *= r.slow
	}
	if rate <= 0 {
		return time.Second, nil // stopped: look again in a second
	}
	start := r.tat
	if start.Before(now) {
		start = now
	}
	r.tat = start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
	return start.Sub(now), nil
}

// SetRate implements Limiter.
func (l *LocalLimiter) SetRate(_ context.Context, route string, perSecond float64) error {
	if perSecond < 0 || math.IsNaN(perSecond) {
		return fmt.Errorf("campaign: rate %v", perSecond)
	}
	l.mu.Lock()
	l.route(route).rate = perSecond
	l.mu.Unlock()
	return nil
}

// Rate implements Limiter.
func (l *LocalLimiter) Rate(_ context.Context, route string) (float64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.route(route).rate, nil
}

// Slow implements Limiter.
func (l *LocalLimiter) Slow(_ context.Context, route string, cooldown time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.route(route)
	now := l.now()
	if now.Before(r.slowUntil) {
		r.slow = math.Max(r.slow/2, 0.25)
	} else {
		r.slow = 0.5
	}
	r.slowUntil = now.Add(cooldown)
	return nil
}

// RedisLimiter is the Limiter shared by every process using one Redis: the
// schedule, the rate and the slow-down live in Redis keys, and one Lua
// script books atomically against Redis's own clock (so the processes'
// clocks do not matter).
type RedisLimiter struct {
	rdb         redis.UniversalClient
	prefix      string
	defaultRate float64
}

// NewRedisLimiter returns a limiter on rdb with keys under prefix (e.g.
// "ladle:ratelimit:"); routes without a stored rate use defaultRate.
func NewRedisLimiter(rdb redis.UniversalClient, prefix string, defaultRate float64) *RedisLimiter {
	return &RedisLimiter{rdb: rdb, prefix: prefix, defaultRate: defaultRate}
}

// KEYS: tat, rate, slow. ARGV: n, default rate. Returns the wait in µs.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(redis.call('GET', KEYS[2]) or ARGV[2])
local slow = tonumber(redis.call('GET', KEYS[3]) or '1')
rate = rate * slow
if rate <= 0 then return 1000000 end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local start = tat
tat = tat + tonumber(ARGV[1]) * 1000000 / rate
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 60000)
return math.floor(start - now)
`)

// KEYS: slow. ARGV: cooldown ms.
var slowScript = redis.NewScript(`
local s = tonumber(redis.call('GET', KEYS[1]) or '1')
if s >= 1 then s = 0.5 else s = math.max(s / 2, 0.25) end
redis.call('SET', KEYS[1], tostring(s), 'PX', ARGV[1])
return 0
`)

func (l *RedisLimiter) keys(route string) []string {
	p := l.prefix + route + ":"
	return []string{p + "tat", p + "rate", p + "slow"}
}

// Reserve implements Limiter.
func (l *RedisLimiter) Reserve(ctx context.Context, route string, n int) (time.Duration, error) {
	us, err := reserveScript.Run(ctx, l.rdb, l.keys(route), n, l.defaultRate).Int64()
	if err != nil {
		return 0, fmt.Errorf("campaign: rate limiter: %w", err)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// SetRate implements Limiter.
func (l *RedisLimiter) SetRate(ctx context.Context, route string, perSecond float64) error {
	if perSecond < 0 || math.IsNaN(perSecond) {
		return fmt.Errorf("campaign: rate %v", perSecond)
	}
	return l.rdb.Set(ctx, l.keys(route)[1], perSecond, 0).Err()
}

// Rate implements Limiter.
func (l *RedisLimiter) Rate(ctx context.Context, route string) (float64, error) {
	v, err := l.rdb.Get(ctx, l.keys(route)[1]).Float64()
	if err == redis.Nil {
		return l.defaultRate, nil
	}
	return v, err
}

// Slow implements Limiter.
func (l *RedisLimiter) Slow(ctx context.Context, route string, cooldown time.Duration) error {
	return slowScript.Run(ctx, l.rdb, l.keys(route)[2:], cooldown.Milliseconds()).Err()
}
