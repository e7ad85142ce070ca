// Package priority lets urgent work in one process run ahead of bulk work:
// receipts and order-ready emails (and the outbox relay that feeds them)
// ahead of campaign sends. Separate consumers and pools keep a campaign
// from delaying a receipt in the broker or in a queue; on a machine with
// two cores the two still share the CPU and, on SQLite, the one writer.
// A Gate closes that gap: urgent work holds it open while it runs, and bulk
// work yields at its step boundaries (before a claim, a hand-over, a
// record) until no urgent work is in progress, for at most a bounded
// wait, so bulk work is slowed, never starved.
//
// Urgent work is also "on its way" between the moment its event is
// published and the moment a handler picks it up: the broker delivers it
// then, and bulk work running meanwhile delays that delivery as much as any
// other step. Expect covers that gap: every process that runs urgent
// consumers watches the urgent events being published (a plain broker
// subscription, so it sees them whichever process published them) and
// expects each one until a handler says it Arrived, or for a bounded time
// (another process took it).
package priority

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Gate is one process's priority gate. The zero value is not usable; a nil
// *Gate is, and does nothing (Enter returns a no-op, Yield returns at once).
type Gate struct {
	busy   atomic.Int64 // == active, read without the lock
	mu     sync.Mutex
	active int
	idle   chan struct{} // closed when active falls to 0; nil while 0

	emu      sync.Mutex
	expected map[string]func() // key → its exit; nil: arrived before it was expected

	yields  atomic.Int64 // Yield calls that waited
	waited  atomic.Int64 // total nanoseconds waited
	entered atomic.Int64
}

// New returns an open gate.
func New() *Gate { return &Gate{} }

// Enter marks urgent work in progress until the returned func is called
// (once).
func (g *Gate) Enter() (exit func()) {
	if g == nil {
		return func() {}
	}
	g.entered.Add(1)
	return g.enter()
}

// maxExpected bounds the expectations held at once; beyond it Expect does
// nothing (the gate is busy anyway).
const maxExpected = 4096

// arrivedKeep is how long an Arrived without an Expect is remembered, so
// that the Expect arriving after it (its watcher was slower than the
// handler) holds nothing.
const arrivedKeep = time.Second

// Expect marks urgent work identified by key (an event id) as on its way:
// the gate is busy until Arrived(key), or for at most d.
func (g *Gate) Expect(key string, d time.Duration) {
	if g == nil {
		return
	}
	g.emu.Lock()
	if _, seen := g.expected[key]; seen || len(g.expected) >= maxExpected {
		g.emu.Unlock()
		return
	}
	if g.expected == nil {
		g.expected = map[string]func(){}
	}
	g.expected[key] = g.enter()
	g.emu.Unlock()
	time.AfterFunc(d, func() { g.forget(key) })
}

// Arrived says the urgent work Expect(key) announced is in a handler now
// (which holds the gate itself, with Enter, before calling it).
func (g *Gate) Arrived(key string) {
	if g == nil {
		return
	}
	g.emu.Lock()
	exit, seen := g.expected[key]
	if seen && exit == nil {
		g.emu.Unlock()
		return
	}
	if g.expected == nil {
		g.expected = map[string]func(){}
	}
	// Keep a tombstone a while: a late Expect of the key is then ignored.
	g.expected[key] = nil
	g.emu.Unlock()
	if exit != nil {
		exit()
	}
	time.AfterFunc(arrivedKeep, func() { g.forget(key) })
}

// forget drops key's expectation (ending it) or tombstone.
func (g *Gate) forget(key string) {
	g.emu.Lock()
	exit, seen := g.expected[key]
	if seen {
		delete(g.expected, key)
	}
	g.emu.Unlock()
	if exit != nil {
		exit()
	}
}

func (g *Gate) enter() (exit func()) {
	g.mu.Lock()
	if g.active == 0 {
		g.idle = make(chan struct{})
	}
	g.active++
	g.busy.Store(int64(g.active))
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.active--
			g.busy.Store(int64(g.active))
			if g.active == 0 {
				close(g.idle)
				g.idle = nil
			}
			g.mu.Unlock()
		})
	}
}

// Yield waits while urgent work is in progress, at most max (and not past
// ctx), and returns how long it waited.
func (g *Gate) Yield(ctx context.Context, max time.Duration) time.Duration {
	if g == nil || g.busy.Load() == 0 {
		return 0
	}
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	if idle == nil {
		return 0
	}
	start := time.Now()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
	d := time.Since(start)
	g.yields.Add(1)
	g.waited.Add(int64(d))
	return d
}

// Stats returns how often urgent work entered, how many yields waited and
// for how long in all.
func (g *Gate) Stats() (entered, yields int64, waited time.Duration) {
	if g == nil {
		return 0, 0, 0
	}
	return g.entered.Load(), g.yields.Load(), time.Duration(g.waited.Load())
}

// bulkKey marks a context's work as bulk.
type bulkKey struct{}

// WithBulk marks the work done under ctx as bulk (campaign sends): a
// resource that serves both kinds one at a time serves the other work
// first. The SQLite writer does (sqlstore's group commit runs queued
// transactions of other work before bulk ones, and commits a group early
// rather than make them wait behind it).
func WithBulk(ctx context.Context) context.Context {
	return context.WithValue(ctx, bulkKey{}, true)
}

// IsBulk reports whether ctx was marked with WithBulk.
func IsBulk(ctx context.Context) bool {
	b, _ := ctx.Value(bulkKey{}).(bool)
	return b
}
