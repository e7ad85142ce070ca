package menucache_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/httpcache"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/storetest"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// backends are the databases every cross-process test runs on: SQLite
// always, PostgreSQL when LADLE_TEST_POSTGRES_URL is set.
var backends = []struct {
	name string
	open func(t *testing.T) *sqlstore.Store
}{
	{"sqlite", func(t *testing.T) *sqlstore.Store {
		return openStore(t, filepath.Join(t.TempDir(), "ladle.db"))
	}},
	{"postgres", func(t *testing.T) *sqlstore.Store {
		return openStore(t, testenv.PostgresSchema(t))
	}},
}

func openStore(t testing.TB, url string) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// seeded is a SQLite store with the storetest fixture.
func seeded(t *testing.T) (*sqlstore.Store, *storetest.Fixture) {
	t.Helper()
	s := backends[0].open(t)
	return s, storetest.Seed(t, s)
}

// seededB is seeded for benchmarks.
func seededB(b *testing.B) (*sqlstore.Store, *storetest.Fixture) {
	s := openStore(b, filepath.Join(b.TempDir(), "ladle.db"))
	return s, storetest.Seed(b, s)
}

// counting is the real store with its menu reads counted (and optionally
// held back, so concurrent callers pile up on a cold key).
type counting struct {
	menucache.Source
	menus, versions atomic.Int64
	hold            chan struct{} // if set, Menu waits for it to close
}

func (c *counting) Menu(ctx context.Context, id int64) (*ladle.Menu, error) {
	c.menus.Add(1)
	if c.hold != nil {
		<-c.hold
	}
	return c.Source.Menu(ctx, id)
}

func (c *counting) MenuVersion(ctx context.Context, id int64) (int64, error) {
	c.versions.Add(1)
	return c.Source.MenuVersion(ctx, id)
}

func newCache(t *testing.T, cfg menucache.Config) *menucache.Cache {
	t.Helper()
	c, err := menucache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// natsServer starts a real nats-server in this process on a loopback port.
func natsServer(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

func natsConn(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// apiServer is one API process's menu route, exactly as internal/httpapi
// is meant to serve it: one cache lookup and one httpcache call.
func apiServer(t *testing.T, c *menucache.Cache) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/restaurants/{slug}/menu", func(w http.ResponseWriter, r *http.Request) {
		doc, err := c.DocumentBySlug(r.Context(), r.PathValue("slug"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		httpcache.ServeJSONVersioned(w, r, doc.ETag, httpcache.MenuMaxAge, httpcache.MenuSWR, doc.JSON)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// fetchMenu GETs the menu document and decodes it.
func fetchMenu(t *testing.T, base, slug string, etag string) (*ladle.Menu, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/restaurants/"+slug+"/menu", nil)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusNotModified {
		return nil, res
	}
	if res.StatusCode != 200 {
		t.Fatalf("GET menu = %d", res.StatusCode)
	}
	var m ladle.Menu
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return &m, res
}

// priceOf returns the price of item id in m.
func priceOf(t *testing.T, m *ladle.Menu, id int64) ladle.Money {
	t.Helper()
	it := m.ItemByID(id)
	if it == nil {
		t.Fatalf("item %d is not on the menu", id)
	}
	return it.Price
}

// setPrice changes an item's price in the database, as the editor does.
func setPrice(t *testing.T, s ladle.Store, it *ladle.Item, p ladle.Money) {
	t.Helper()
	it.Price = p
	if err := s.UpdateItem(context.Background(), it); err != nil {
		t.Fatal(err)
	}
}

// checkout places an order for one plain Fries (pay at pickup) through the
// store's CreateOrder, the path every checkout takes, and returns it.
func checkout(t *testing.T, s ladle.Store, f *storetest.Fixture, itemID int64, email string) (*ladle.Order, error) {
	t.Helper()
	req := &ladle.OrderRequest{
		Customer:    ladle.CustomerInput{Name: "Grace", Email: email},
		Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
		Lines:       []ladle.LineRequest{{ItemID: itemID, Quantity: 1}},
		Payment:     ladle.PaymentInput{Method: "pay_at_pickup"},
	}
	req.Normalize()
	return s.CreateOrder(context.Background(), ladle.NewOrder{ID: uuid.Must(uuid.NewV7()).String(),
		RestaurantID: f.Restaurant.ID, Request: req, Now: ladle.Now()})
}
