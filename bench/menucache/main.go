// Command menucache measures the cached menu endpoint against a bare
// net/http handler writing the same bytes, with one closed-loop load
// generator over loopback at the same concurrency, alternating the servers
// round by round (A B C D A B C D …) and reporting the median of the rounds.
//
//	go run ./bench/menucache                  # 5 rounds × 2 s per server
//	go run ./bench/menucache -rounds 7 -c 32 -d 3s
//
// Servers, each on its own loopback listener with the same http.Server:
//
//	bare      a handler that writes the menu bytes with the same headers: the ceiling
//	cached    menucache.DocumentBySlug + httpcache.ServeJSONVersioned, as the API serves it
//	304       the cached endpoint, the client sending the current ETag in If-None-Match
//	uncached  RestaurantBySlug + store.Menu + json.Marshal per request: no cache
//
// The database is SQLite in a temporary folder with the demo menu. The
// figures of interest are the ratios: cached/bare (target ≥ 0.8), 304/bare
// and uncached/bare; absolute numbers depend on the machine (the load
// generator shares its cores with the servers).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/httpcache"
	"github.com/ladle-dev/ladle/internal/imaging"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "menucache bench:", err)
		os.Exit(1)
	}
}

type target struct {
	name    string
	url     string
	etag    string // sent as If-None-Match when set
	want    int    // expected status
	results []float64
}

func run() error {
	conc := flag.Int("c", 16, "concurrent client connections (closed loop)")
	dur := flag.Duration("d", 2*time.Second, "measured duration per server per round")
	warm := flag.Duration("warmup", 300*time.Millisecond, "unmeasured warm-up per server per round")
	rounds := flag.Int("rounds", 5, "rounds (each runs every server once)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))

	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ladle-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := sqlstore.Open(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	if _, err := demo.Seed(ctx, store, func(string) (string, error) { return "$argon2id$bench", nil }); err != nil {
		return err
	}
	cache, err := menucache.New(menucache.Config{Source: store, ImageURL: imaging.URLFunc("")})
	if err != nil {
		return err
	}
	defer cache.Close()
	doc, err := cache.DocumentBySlug(ctx, demo.Slug)
	if err != nil {
		return err
	}
	body := doc.JSON
	path := "/api/v1/restaurants/" + demo.Slug + "/menu"

	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Etag"] = []string{doc.ETag}
		h["Cache-Control"] = []string{string(httpcache.MenuPolicy)}
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.Write(body)
	})
	cached := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := cache.DocumentBySlug(r.Context(), demo.Slug)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		httpcache.ServeJSONVersioned(w, r, d.ETag, httpcache.MenuMaxAge, httpcache.MenuSWR, d.JSON)
	})
	uncached := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, err := store.RestaurantBySlug(r.Context(), demo.Slug)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		m, err := store.Menu(r.Context(), rest.ID)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		for ci := range m.Categories {
			for ii := range m.Categories[ci].Items {
				m.Categories[ci].Items[ii].Image = imaging.URL("", m.Categories[ci].Items[ii].ImageKey)
			}
		}
		b, _ := json.Marshal(m)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})

	serve := func(h http.Handler) (string, func(), error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		return "http://" + ln.Addr().String() + path, func() { srv.Close() }, nil
	}
	var targets []*target
	for _, s := range []struct {
		name string
		h    http.Handler
		etag string
		want int
	}{
		{"bare", bare, "", 200},
		{"cached", cached, "", 200},
		{"304", cached, doc.ETag, 304},
		{"uncached", uncached, "", 200},
	} {
		u, stop, err := serve(s.h)
		if err != nil {
			return err
		}
		defer stop()
		targets = append(targets, &target{name: s.name, url: u, etag: s.etag, want: s.want})
	}

	for r := range *rounds {
		for _, t := range targets {
			load(t, *conc, *warm) // warm connections and caches, unmeasured
			rps, err := load(t, *conc, *dur)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.results = append(t.results, rps)
		}
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, *rounds)
	}

	base := median(targets[0].results)
	fmt.Printf("menu endpoint, requests/s (median of %d alternating rounds, min–max)\n\n", *rounds)
	fmt.Printf("%-10s %12s %21s %16s\n", "figure", "req/s", "min–max", "ratio to bare")
	for _, t := range targets {
		m := median(t.results)
		fmt.Printf("%-10s %12.0f %10.0f–%-10.0f %16.2f\n", t.name, m, slices.Min(t.results), slices.Max(t.results), m/base)
	}
	fmt.Printf("\nconditions: %d client connections, closed loop, %v per server per round, loopback HTTP/1.1 keep-alive;\n"+
		"body %d bytes JSON (demo menu), no compression; GOMAXPROCS=%d on %d CPUs, %s; SQLite (WAL) for uncached.\n",
		*conc, *dur, len(body), runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version())
	fmt.Printf("target: cached/bare ≥ 0.80 → %s\n", map[bool]string{true: "met", false: "NOT met"}[median(targets[1].results)/base >= 0.8])
	return nil
}

// load runs conc workers, each sending requests back to back on its own
// keep-alive connection for d, and returns completed requests per second.
func load(t *target, conc int, d time.Duration) (float64, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var done atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", t.url, nil)
			if t.etag != "" {
				req.Header.Set("If-None-Match", t.etag)
			}
			for time.Now().Before(stop) {
				res, err := client.Do(req)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != t.want {
					firstErr.CompareAndSwap(nil, fmt.Errorf("status %d, want %d", res.StatusCode, t.want))
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(done.Load()) / elapsed.Seconds(), nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
