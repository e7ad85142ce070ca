package menucache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// buses builds, for one test, a pair of Buses on separate connections (as
// two processes would have) over the same channel.
var buses = []struct {
	name string
	pair func(t *testing.T) (menucache.Bus, menucache.Bus)
}{
	{"nats", func(t *testing.T) (menucache.Bus, menucache.Bus) {
		url := natsServer(t)
		subject := randomName("test.menucache.")
		return menucache.NewNATSBus(natsConn(t, url), subject), menucache.NewNATSBus(natsConn(t, url), subject)
	}},
	{"redis", func(t *testing.T) (menucache.Bus, menucache.Bus) {
		url := testenv.RedisURL(t)
		channel := randomName("test:menucache:")
		return menucache.NewRedisBus(redisClient(t, url), channel), menucache.NewRedisBus(redisClient(t, url), channel)
	}},
}

// Two API processes — two HTTP stacks with separate caches over one
// database and one broadcast channel. An edit made through one is served by
// the other within one second, and checkout charges the new price.
//
// The caches trust a version for an hour here, so only the broadcast can
// make the edit show up in time.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	for _, db := range backends {
		for _, bus := range buses {
			t.Run(db.name+"/"+bus.name, func(t *testing.T) {
				t.Parallel()
				s := db.open(t)
				f := storetest.Seed(t, s)
				busA, busB := bus.pair(t)
				cacheA := newCache(t, menucache.Config{Source: s, Bus: busA, VersionTTL: time.Hour})
				cacheB := newCache(t, menucache.Config{Source: s, Bus: busB, VersionTTL: time.Hour})
				apiA, apiB := apiServer(t, cacheA), apiServer(t, cacheB)
				slug := f.Restaurant.Slug

				// Both processes have the menu cached; B answers a revalidation 304.
				fetchMenu(t, apiA.URL, slug, "")
				m, res := fetchMenu(t, apiB.URL, slug, "")
				if priceOf(t, m, f.Fries.ID) != 399 {
					t.Fatal("fixture changed")
				}
				oldTag := res.Header.Get("ETag")
				if _, res := fetchMenu(t, apiB.URL, slug, oldTag); res.StatusCode != http.StatusNotModified {
					t.Fatalf("revalidation = %d, want 304", res.StatusCode)
				}

				// The editor, on process A, changes the price.
				setPrice(t, s, f.Fries, 475)
				cacheA.Invalidate(context.Background(), f.Restaurant.ID)
				edited := time.Now()
				if m, _ := fetchMenu(t, apiA.URL, slug, ""); priceOf(t, m, f.Fries.ID) != 475 {
					t.Fatalf("the editor's own process still serves %d", priceOf(t, m, f.Fries.ID))
				}

				// Process B serves it within one second.
				for {
					m, res := fetchMenu(t, apiB.URL, slug, oldTag)
					if res.StatusCode == 200 && priceOf(t, m, f.Fries.ID) == 475 {
						if res.Header.Get("ETag") == oldTag {
							t.Error("a new menu kept the old ETag")
						}
						break
					}
					if time.Since(edited) > time.Second {
						t.Fatalf("process B still serves the old menu %v after the edit", time.Since(edited))
					}
					time.Sleep(5 * time.Millisecond)
				}
				t.Logf("process B served the edit %v after it", time.Since(edited).Round(time.Millisecond))
				if cacheB.Stats().InvalidationsRemote == 0 {
					t.Error("B never heard the broadcast")
				}

				o, err := checkout(t, s, f, f.Fries.ID, "two-processes@example.com")
				if err != nil {
					t.Fatal(err)
				}
				if o.Lines[0].UnitPrice != 475 {
					t.Errorf("checkout charged %d, want the new price 475", o.Lines[0].UnitPrice)
				}
			})
		}
	}
}

// The NATS bus also hears menu.changed events as the outbox relay
// publishes them, so an edit made by a process without a cache (a script,
// another service) still reaches every cache.
func TestNATSBusHearsMenuChangedEvents(t *testing.T) {
	t.Parallel()
	s, f := seeded(t)
	nc := natsConn(t, natsServer(t))
	bus := menucache.NewNATSBus(nc, randomName("test.menucache."))
	bus.EventSubject = randomName("test.events.") // the relay's subject, here private to the test
	c := newCache(t, menucache.Config{Source: s, Bus: bus, VersionTTL: time.Hour})
	if _, err := c.Menu(t.Context(), f.Restaurant.ID); err != nil {
		t.Fatal(err)
	}
	setPrice(t, s, f.Fries, 420)
	payload, _ := json.Marshal(ladle.MenuChange{RestaurantID: f.Restaurant.ID, Version: f.Restaurant.MenuVersion + 1})
	ev, _ := json.Marshal(ladle.Event{ID: "e1", Type: ladle.EventMenuChanged, RestaurantID: f.Restaurant.ID, Payload: payload})
	if err := nc.Publish(bus.EventSubject, ev); err != nil {
		t.Fatal(err)
	}
	// VersionTTL is an hour: only the event can make the edit show, so a
	// bound for a loaded machine proves it as well as a tight one.
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := c.Menu(t.Context(), f.Restaurant.ID)
		if err != nil {
			t.Fatal(err)
		}
		if priceOf(t, m, f.Fries.ID) == 420 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the menu.changed event did not invalidate the cache")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
