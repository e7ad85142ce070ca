package auth

import (
	"container/list"
	"sync"
	"time"

	"github.com/ladle-dev/ladle"
)

// Limiter counts login failures per key (an IP, an email) in a fixed window
// that starts at the key's first failure: after Max failures the key is
// refused until the window ends. It lives in memory and holds at most
// Capacity keys; when full, the key whose window started first is forgotten,
// so a flood of addresses costs bounded memory and only weakens the limit
// for the oldest entries.
//
// In-memory is deliberate: a restart or a second API process gives an
// attacker a fresh budget of a few guesses, which argon2id makes worthless.
type Limiter struct {
	max      int
	window   time.Duration
	capacity int
	now      ladle.Clock

	mu      sync.Mutex
	entries map[string]*list.Element // of *limitEntry
	order   list.List                // oldest window first
}

type limitEntry struct {
	key      string
	failures int
	start    time.Time
}

// NewLimiter returns a limiter that allows max failures per window, keeping
// at most capacity keys. A nil clock is ladle.Now.
func NewLimiter(max int, window time.Duration, capacity int, now ladle.Clock) *Limiter {
	if now == nil {
		now = ladle.Now
	}
	if capacity < 1 {
		capacity = 1
	}
	return &Limiter{max: max, window: window, capacity: capacity, now: now, entries: map[string]*list.Element{}}
}

// Allow reports whether key may try again, and if not, how long until it may.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.entries[key]
	if !ok {
		return true, 0
	}
	e := el.Value.(*limitEntry)
	now := l.now()
	end := e.start.Add(l.window)
	if !now.Before(end) {
		l.remove(el)
		return true, 0
	}
	if e.failures < l.max {
		return true, 0
	}
	return false, end.Sub(now)
}

// Fail records one failure for key.
func (l *Limiter) Fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if el, ok := l.entries[key]; ok {
		e := el.Value.(*limitEntry)
		if now.Before(e.start.Add(l.window)) {
			e.failures++
			return
		}
		l.remove(el)
	}
	for len(l.entries) >= l.capacity {
		l.remove(l.order.Front())
	}
	l.entries[key] = l.order.PushBack(&limitEntry{key: key, failures: 1, start: now})
}

// Limit is one key of Charge and the most attempts it may have in the
// window.
type Limit struct {
	Key string
	Max int
}

// Charge counts one attempt against every limit, before the attempt is
// made, or none when any limit is used up: then it returns false and how
// long until the first refusing window ends. Checking and counting under one
// lock is what makes a parallel burst unable to slip past: every request of
// the burst is counted before any of them spends a password hash.
func (l *Limiter) Charge(limits ...Limit) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var wait time.Duration
	for _, lim := range limits {
		el, ok := l.entries[lim.Key]
		if !ok {
			continue
		}
		e := el.Value.(*limitEntry)
		end := e.start.Add(l.window)
		if !now.Before(end) {
			l.remove(el)
			continue
		}
		if e.failures >= lim.Max {
			wait = max(wait, end.Sub(now))
		}
	}
	if wait > 0 {
		return false, wait
	}
	for _, lim := range limits {
		if el, ok := l.entries[lim.Key]; ok {
			el.Value.(*limitEntry).failures++
			continue
		}
		for len(l.entries) >= l.capacity {
			l.remove(l.order.Front())
		}
		l.entries[lim.Key] = l.order.PushBack(&limitEntry{key: lim.Key, failures: 1, start: now})
	}
	return true, 0
}

// Refund takes back one attempt counted against key (it did not fail, or was
// never made).
func (l *Limiter) Refund(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.entries[key]; ok {
		if e := el.Value.(*limitEntry); e.failures > 0 {
			e.failures--
		}
	}
}

// Reset forgets key (after a successful login).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.entries[key]; ok {
		l.remove(el)
	}
}

// Len returns the number of keys held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *Limiter) remove(el *list.Element) {
	delete(l.entries, el.Value.(*limitEntry).key)
	l.order.Remove(el)
}
