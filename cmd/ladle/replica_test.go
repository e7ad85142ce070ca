package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/readpos"
	"github.com/ladle-dev/ladle/internal/sqlstore"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// TestReadReplica runs `ladle serve --database-replica-url` against a real
// streaming replica (a private primary + hot standby pair, testenv). With
// the replica's replay paused, the owner saves a new price: a guest's menu
// still shows the old one (so it was served by the replica — the primary
// has the new one), while the owner, whose write position came back in a
// cookie, sees the new price at once (read-your-writes). A store that
// tolerates only a second of lag sends the same read to the primary once
// the paused replica falls behind. Replay resumes and the guest catches up;
// then the replica is stopped, and every read keeps answering (from the
// primary), a new edit included.
func TestReadReplica(t *testing.T) {
	t.Parallel()
	testenv.Short(t, "a private PostgreSQL pair")
	pair := testenv.PostgresReplica(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := startLadle(t, map[string]string{
		"LADLE_DATABASE_URL": pair.PrimaryURL, "LADLE_DATABASE_REPLICA_URL": pair.ReplicaURL,
		// Lag never sends a read to the primary here: only the owner's
		// write position and the replica's health do.
		"LADLE_DATABASE_REPLICA_MAX_LAG": "10m",
	}, "--demo")
	if err := pair.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	menuURL := base + "/api/v1/restaurants/" + demo.Slug + "/menu"
	before, _ := getMenu(t, menuURL)
	item := plainItem(t, before)
	staff := staffClient(t, base)
	itemPage := fmt.Sprintf("%s/admin/r/%d/menu/items/%d", base, before.RestaurantID, item.ID)
	form := editorForm(t, staff, itemPage)

	replica, err := sql.Open("pgx", pair.ReplicaURL)
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	if _, err := replica.ExecContext(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}

	// The owner saves a new price; the answer carries the write position.
	newPrice := item.Price + 111
	form.Set("price", priceText(newPrice))
	resp := postForm(t, staff, itemPage, base, form)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving the item: %d", resp.StatusCode)
	}
	var pos readpos.Pos
	for _, c := range resp.Cookies() {
		if c.Name == readpos.CookieName {
			pos, _ = readpos.Parse(strings.SplitN(c.Value, ".", 2)[0])
		}
	}
	if pos == 0 {
		t.Fatalf("the save set no %s cookie: %v", readpos.CookieName, resp.Header.Values("Set-Cookie"))
	}

	// A guest reads the replica: the old price, though the primary has
	// the new one.
	if m, _ := getMenu(t, menuURL); priceOf(t, m, item.ID) != item.Price {
		t.Fatalf("with replay paused a guest sees price %d; the replica has %d", priceOf(t, m, item.ID), item.Price)
	}
	var onPrimary int64
	if err := primaryDB(t, pair).QueryRowContext(ctx, `SELECT price FROM items WHERE id = $1`, item.ID).Scan(&onPrimary); err != nil || onPrimary != int64(newPrice) {
		t.Fatalf("the primary has price %d (%v), want %d", onPrimary, err, newPrice)
	}
	page := get(t, http.DefaultClient, base+"/r/"+demo.Slug)
	if page.code != http.StatusOK {
		t.Fatalf("storefront: %d", page.code)
	}
	// The owner reads their own write: the menu API and the editor.
	if m := getMenuWith(t, staff, menuURL); priceOf(t, m, item.ID) != newPrice {
		t.Fatalf("the owner who saved %d reads %d", newPrice, priceOf(t, m, item.ID))
	}
	if f := editorForm(t, staff, itemPage); f.Get("price") != priceText(newPrice) {
		t.Fatalf("the owner's editor shows %s after saving %s", f.Get("price"), priceText(newPrice))
	}

	// A store that tolerates one second of lag stops using the paused
	// replica once it is that far behind.
	strict, err := sqlstore.Open(ctx, pair.PrimaryURL, sqlstore.WithReplica(pair.ReplicaURL, time.Second),
		sqlstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	waitFor(t, 20*time.Second, "the strict store to see the replica lagging", func() bool { return strict.ReplicaStats().Lagging })
	if v, err := strict.MenuVersion(ctx, before.RestaurantID); err != nil || v <= before.Version {
		t.Fatalf("a lagging replica's store read version %d (%v), want past %d", v, err, before.Version)
	}

	// Replay resumes: the guest catches up (the cached version is trusted
	// for a second).
	if _, err := replica.ExecContext(ctx, `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the guest to see the new price", func() bool {
		m, _ := getMenu(t, menuURL)
		return priceOf(t, m, item.ID) == newPrice
	})
	waitFor(t, 20*time.Second, "the strict store to trust the replica again", func() bool { return !strict.ReplicaStats().Lagging })
	if st := strict.ReplicaStats(); st.Fallbacks == 0 {
		t.Errorf("the strict store counts no read sent to the primary: %+v", st)
	}

	// The replica goes away: reads fall back to the primary, never a 5xx,
	// and a new edit shows.
	pair.StopReplica()
	for _, path := range []string{"/", "/r/" + demo.Slug, "/api/v1/restaurants/" + demo.Slug + "/menu", "/readyz"} {
		if r := get(t, http.DefaultClient, base+path); r.code != http.StatusOK {
			t.Fatalf("with the replica stopped GET %s: %d %s", path, r.code, r.body)
		}
	}
	form = editorForm(t, staff, itemPage)
	third := newPrice + 222
	form.Set("price", priceText(third))
	resp = postForm(t, staff, itemPage, base, form)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving with the replica stopped: %d", resp.StatusCode)
	}
	waitFor(t, 20*time.Second, "the guest to see the edit made with the replica stopped", func() bool {
		m, _ := getMenu(t, menuURL)
		return priceOf(t, m, item.ID) == third
	})
	if o := placeOrder(t, base, item.ID, 1); o.Subtotal != third {
		t.Fatalf("an order with the replica stopped: subtotal %d, want %d", o.Subtotal, third)
	}
}

type answer struct {
	code int
	body string
}

func get(t *testing.T, c *http.Client, u string) answer {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return answer{resp.StatusCode, string(b)}
}

// getMenuWith is getMenu through client c (with its cookies).
func getMenuWith(t *testing.T, c *http.Client, u string) *ladle.Menu {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m ladle.Menu
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&m) != nil {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	return &m
}

func primaryDB(t *testing.T, pair *testenv.PGPair) *sql.DB { return sqlDB(t, pair.PrimaryURL) }

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
