// Package storetest is the conformance suite for ladle.Store: every
// implementation (internal/sqlstore on SQLite and on PostgreSQL) runs Run
// and must pass it unchanged. It also exports Seed, the fixture other
// packages' tests build on.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

// Opener returns a fresh, migrated, empty store for one test; the opener
// registers its cleanup with t.
type Opener func(t *testing.T) ladle.Store

// EventLister is implemented by stores that can list a restaurant's outbox;
// the suite uses it to check which events each change appended.
type EventLister interface {
	OutboxEvents(ctx context.Context, restaurantID int64) ([]ladle.Event, error)
}

// Run runs the whole suite. Each case is a parallel subtest on its own
// store.
func Run(t *testing.T, open func(t *testing.T) ladle.Store) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !c.serial {
				t.Parallel()
			}
			c.fn(t, &env{t: t, open: open})
		})
	}
}

type testCase struct {
	name   string
	serial bool
	fn     func(t *testing.T, e *env)
}

var cases []testCase

// register adds cases; each file of the suite registers its own in init.
func register(cs ...testCase) { cases = append(cases, cs...) }

// env builds what a case needs.
type env struct {
	t    *testing.T
	open func(t *testing.T) ladle.Store
}

// seed opens a fresh store and seeds the fixture.
func (e *env) seed() (ladle.Store, *Fixture) {
	s := e.open(e.t)
	return s, Seed(e.t, s)
}

var ctx = context.Background()

// now is a fixed instant with microseconds, as the suite's clock.
var now = time.Date(2030, 5, 17, 12, 30, 15, 123456000, time.UTC)
