package menucache_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/httpcache"
	"github.com/ladle-dev/ladle/internal/menucache"
)

// 100 concurrent requests on a cold key cause exactly one rebuild (and one
// version query), and all of them get that one document.
func TestColdKeyOneRebuild(t *testing.T) {
	t.Parallel()
	s, f := seeded(t)
	src := &counting{Source: s, hold: make(chan struct{})}
	c := newCache(t, menucache.Config{Source: src})

	const n = 100
	var started, wg sync.WaitGroup
	started.Add(n)
	docs := make([]*menucache.Document, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			started.Done()
			docs[i], errs[i] = c.Document(context.Background(), f.Restaurant.ID)
		})
	}
	started.Wait()
	// Every goroutine is running; give them time to reach the cache while
	// the one rebuild is held, then let it finish.
	time.Sleep(100 * time.Millisecond)
	close(src.hold)
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if docs[i] != docs[0] {
			t.Fatalf("request %d got another document", i)
		}
	}
	if got := src.menus.Load(); got != 1 {
		t.Errorf("store.Menu called %d times, want exactly 1", got)
	}
	if got := src.versions.Load(); got != 1 {
		t.Errorf("store.MenuVersion called %d times, want exactly 1", got)
	}
	st := c.Stats()
	if st.Rebuilds != 1 || st.Requests != n || st.Hits+st.Misses != n {
		t.Errorf("stats = %+v, want 1 rebuild for %d requests", st, n)
	}
	if docs[0].Version != f.Restaurant.MenuVersion || docs[0].ETag != httpcache.VersionETag("menu", f.Restaurant.ID, f.Restaurant.MenuVersion) {
		t.Errorf("document version %d etag %s, want version %d", docs[0].Version, docs[0].ETag, f.Restaurant.MenuVersion)
	}
}

// The document holds what the store holds, image URLs applied, and the
// JSON bytes and the tree say the same thing.
func TestDocument(t *testing.T) {
	t.Parallel()
	s, f := seeded(t)
	c := newCache(t, menucache.Config{Source: s, ImageURL: func(k string) string { return "https://cdn.example/" + k }})
	d, err := c.DocumentBySlug(t.Context(), f.Restaurant.Slug)
	if err != nil {
		t.Fatal(err)
	}
	burger := d.Menu.ItemByID(f.Burger.ID)
	if burger == nil || burger.Price != 1099 || burger.ImageKey != "images/burger.jpg" || burger.Image != "https://cdn.example/images/burger.jpg" {
		t.Fatalf("burger = %+v", burger)
	}
	if !strings.Contains(string(d.JSON), `"image":"https://cdn.example/images/burger.jpg"`) || !strings.Contains(string(d.JSON), `"price":1099`) {
		t.Errorf("JSON lacks the burger's image or price: %.300s", d.JSON)
	}
	if v := d.Menu.ItemByID(f.VeggieBurger.ID); v == nil || v.Available {
		t.Errorf("sold-out items are listed as unavailable: %+v", v)
	}
	if _, err := c.DocumentBySlug(t.Context(), "no-such-place"); ladle.ErrorKind(err) != ladle.KindNotFound {
		t.Errorf("unknown slug = %v, want not found", err)
	}
	if _, err := c.Menu(t.Context(), 999_999); ladle.ErrorKind(err) != ladle.KindNotFound {
		t.Errorf("unknown restaurant = %v, want not found", err)
	}
	// Other restaurant, other document.
	o, err := c.Document(t.Context(), f.Other.ID)
	if err != nil || o.Menu.ItemByID(f.Burger.ID) != nil || o.Menu.ItemByID(f.OtherItem.ID) == nil {
		t.Errorf("the other restaurant's document mixes menus: %v", err)
	}
}

// A warm read touches no database: not the slug, not the version, not the
// menu. Hits and misses are counted and exported to Prometheus.
func TestHitsAndMetrics(t *testing.T) {
	t.Parallel()
	s, f := seeded(t)
	src := &counting{Source: s}
	reg := prometheus.NewRegistry()
	c := newCache(t, menucache.Config{Source: src, Registerer: reg, VersionTTL: time.Minute})
	for range 5 {
		if _, err := c.DocumentBySlug(t.Context(), f.Restaurant.Slug); err != nil {
			t.Fatal(err)
		}
	}
	if src.menus.Load() != 1 || src.versions.Load() != 1 {
		t.Errorf("5 reads made %d menu and %d version queries, want 1 and 1", src.menus.Load(), src.versions.Load())
	}
	st := c.Stats()
	if st.Hits != 4 || st.Misses != 1 || st.Rebuilds != 1 {
		t.Errorf("stats = %+v, want 4 hits, 1 miss, 1 rebuild", st)
	}
	got := gather(t, reg)
	for name, want := range map[string]float64{
		`ladle_menucache_lookups_total{result="hit",tier="memory"}`:  4,
		`ladle_menucache_lookups_total{result="miss",tier="memory"}`: 1,
		`ladle_menucache_lookups_total{result="hit",tier="redis"}`:   0,
		`ladle_menucache_rebuilds_total`:                             1,
		`ladle_menucache_version_loads_total`:                        1,
		`ladle_menucache_invalidations_total{origin="local"}`:        0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	// A second cache on the same registry is refused, not silently merged.
	if _, err := menucache.New(menucache.Config{Source: s, Registerer: reg}); err == nil {
		t.Error("registering twice should fail")
	}
}

// The editor's own process sees an edit on its next read: Invalidate drops
// the remembered version at once.
func TestEditVisibleToEditorAtOnce(t *testing.T) {
	t.Parallel()
	s, f := seeded(t)
	c := newCache(t, menucache.Config{Source: s, VersionTTL: time.Hour})
	m, _ := c.Menu(t.Context(), f.Restaurant.ID)
	if priceOf(t, m, f.Fries.ID) != 399 {
		t.Fatal("fixture changed")
	}
	setPrice(t, s, f.Fries, 450)
	c.Invalidate(t.Context(), f.Restaurant.ID)
	m, err := c.Menu(t.Context(), f.Restaurant.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := priceOf(t, m, f.Fries.ID); got != 450 {
		t.Errorf("after the edit the editor reads %d, want 450", got)
	}
	if c.Stats().InvalidationsLocal != 1 {
		t.Errorf("stats = %+v", c.Stats())
	}
}

// With no bus at all (or every message lost), a remembered version is
// trusted for at most VersionTTL: the edit shows up by then.
func TestStalenessBoundedWithoutBus(t *testing.T) {
	t.Parallel()
	s, f := seeded(t)
	const ttl = 300 * time.Millisecond
	c := newCache(t, menucache.Config{Source: s, VersionTTL: ttl})
	if _, err := c.Menu(t.Context(), f.Restaurant.ID); err != nil {
		t.Fatal(err)
	}
	setPrice(t, s, f.Soda, 249) // and no Invalidate: the message was lost
	edited := time.Now()
	// The promise is about when a read is asked, not when it returns: a
	// read asked more than VersionTTL after the edit shows the new price.
	// (Timing the returns instead would count a slow rebuild under the
	// race detector against the cache.)
	for {
		asked := time.Now()
		m, err := c.Menu(t.Context(), f.Restaurant.ID)
		if err != nil {
			t.Fatal(err)
		}
		if priceOf(t, m, f.Soda.ID) == 249 {
			break
		}
		if after := asked.Sub(edited); after > ttl+200*time.Millisecond {
			t.Fatalf("a read asked %v after the edit still got the old price; VersionTTL is %v", after, ttl)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// laggingSource answers Menu from a snapshot taken earlier, as a read
// replica behind the primary would.
type laggingSource struct {
	menucache.Source
	old *ladle.Menu
}

func (l *laggingSource) Menu(ctx context.Context, id int64) (*ladle.Menu, error) {
	m := *l.old
	return &m, nil
}

// A store that returns an older menu than the version it reported is served
// once but never cached under the newer version.
func TestLaggingReplicaIsNotCached(t *testing.T) {
	t.Parallel()
	s, f := seeded(t)
	old, err := s.Menu(t.Context(), f.Restaurant.ID)
	if err != nil {
		t.Fatal(err)
	}
	setPrice(t, s, f.Fries, 500)
	lag := &laggingSource{Source: s, old: old}
	c := newCache(t, menucache.Config{Source: lag, VersionTTL: time.Hour})
	for range 2 {
		d, err := c.Document(t.Context(), f.Restaurant.ID)
		if err != nil || d.Version != old.Version {
			t.Fatalf("Document = %v, %v", d, err)
		}
	}
	if st := c.Stats(); st.Rebuilds != 2 {
		t.Errorf("rebuilds = %d: the lagging document must not be cached", st.Rebuilds)
	}
	lag.old, _ = s.Menu(t.Context(), f.Restaurant.ID) // the replica caught up
	d, _ := c.Document(t.Context(), f.Restaurant.ID)
	if priceOf(t, d.Menu, f.Fries.ID) != 500 {
		t.Error("the caught-up document is not served")
	}
}

// Price integrity: a stale cache entry can show an old price, an item that
// is sold out or one that is gone, but checkout prices from the tables: it
// charges the new price and refuses the others.
func TestStaleCacheCannotChangeTheCharge(t *testing.T) {
	t.Parallel()
	s, f := seeded(t)
	c := newCache(t, menucache.Config{Source: s, VersionTTL: time.Hour})
	warm, err := c.Menu(t.Context(), f.Restaurant.ID)
	if err != nil {
		t.Fatal(err)
	}

	// The price goes up and the broadcast is lost: the cache is stale.
	setPrice(t, s, f.Fries, 1299)
	stale, _ := c.Menu(t.Context(), f.Restaurant.ID)
	if stale != warm || priceOf(t, stale, f.Fries.ID) != 399 {
		t.Fatal("the test needs the cache to still hold the old price")
	}
	o, err := checkout(t, s, f, f.Fries.ID, "stale-price@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if o.Lines[0].UnitPrice != 1299 || o.Subtotal != 1299 {
		t.Errorf("charged unit price %d, subtotal %d; the database says 1299 (the stale cache said 399)", o.Lines[0].UnitPrice, o.Subtotal)
	}

	// Sold out in the database, available in the cache.
	if err := s.SetItemAvailable(t.Context(), f.Restaurant.ID, f.Soda.ID, false); err != nil {
		t.Fatal(err)
	}
	if it := stale.ItemByID(f.Soda.ID); !it.Available {
		t.Fatal("the cache should still say available")
	}
	if _, err := checkout(t, s, f, f.Soda.ID, "sold-out@example.com"); ladle.ErrorCode(err) != ladle.CodeItemUnavailable {
		t.Errorf("ordering a sold-out item through a stale cache = %v, want %s", err, ladle.CodeItemUnavailable)
	}

	// Deleted in the database, listed in the cache.
	if err := s.DeleteItem(t.Context(), f.Restaurant.ID, f.Fries.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := checkout(t, s, f, f.Fries.ID, "deleted@example.com"); ladle.ErrorCode(err) != ladle.CodeValidation {
		t.Errorf("ordering a deleted item through a stale cache = %v, want %s", err, ladle.CodeValidation)
	}
}

// gather scrapes reg into "name{label="value",…}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
				}
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}
