package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ladle-dev/ladle/internal/auth"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/httpapi"
	"github.com/ladle-dev/ladle/internal/httpcache"
	"github.com/ladle-dev/ladle/internal/httpserver"
	"github.com/ladle-dev/ladle/internal/imaging"
	"github.com/ladle-dev/ladle/internal/menucache"
	"github.com/ladle-dev/ladle/internal/ordering"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// MenuConfig configures the menu endpoint benchmark.
type MenuConfig struct {
	Clients  int           // concurrent keep-alive connections, closed loop
	Duration time.Duration // measured time per server per round
	Warmup   time.Duration // unmeasured time per server per round
	Rounds   int
	Out      io.Writer
}

// Menu measures GET /api/v1/restaurants/{slug}/menu as Ladle serves it (the
// real JSON API handler in front of the menu cache) beside a bare net/http
// handler writing the same bytes with the same headers, with one load
// generator at the same concurrency, alternating servers round by round.
// It also reports conditional requests (304) and the same endpoint without a
// cache (a slug lookup, a menu read and a JSON encoding per request). Target:
// cached at least 0.8 of bare.
func Menu(ctx context.Context, cfg MenuConfig) error {
	if cfg.Clients <= 0 {
		cfg.Clients = 16
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 2 * time.Second
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 300 * time.Millisecond
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	dir, err := os.MkdirTemp("", "ladle-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := sqlstore.Open(ctx, filepath.Join(dir, "bench.db"), sqlstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	if _, err := demo.Seed(ctx, store, func(pw string) (string, error) { return auth.HashPassword(pw, auth.TestParams) }); err != nil {
		return err
	}
	imageURL := imaging.URLFunc("")
	cache, err := menucache.New(menucache.Config{Source: store, ImageURL: imageURL})
	if err != nil {
		return err
	}
	defer cache.Close()
	doc, err := cache.DocumentBySlug(ctx, demo.Slug)
	if err != nil {
		return err
	}
	path := "/api/v1/restaurants/" + demo.Slug + "/menu"

	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Etag"] = []string{doc.ETag}
		h["Cache-Control"] = []string{string(httpcache.MenuPolicy)}
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(doc.JSON))}
		_, _ = w.Write(doc.JSON)
	})
	api := http.NewServeMux()
	httpapi.Register(api, httpapi.Deps{Store: store, Menus: cache, Logger: slog.New(slog.DiscardHandler),
		Ordering: ordering.New(store, payment.NewTestProvider(store), []byte("bench-secret-bench-secret"))})
	// As `ladle serve` serves it: the same middleware around the same mux.
	served := httpserver.Wrap(api, slog.New(slog.DiscardHandler))
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
				m.Categories[ci].Items[ii].Image = imageURL(m.Categories[ci].Items[ii].ImageKey)
			}
		}
		b, _ := json.Marshal(m)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})

	type target struct {
		name, url, etag string
		want            int
		results         []float64
	}
	var targets []*target
	for _, s := range []struct {
		name string
		h    http.Handler
		etag string
		want int
	}{
		{"bare net/http, same bytes", bare, "", 200},
		{"cached (the API)", served, "", 200},
		{"304 (If-None-Match)", served, doc.ETag, 304},
		{"uncached", uncached, "", 200},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		targets = append(targets, &target{name: s.name, url: "http://" + ln.Addr().String() + path, etag: s.etag, want: s.want})
	}

	fmt.Fprintf(cfg.Out, "# Menu endpoint: requests/s, cached API vs a bare handler writing the same bytes\n")
	fmt.Fprintf(cfg.Out, "conditions: %d keep-alive connections, closed loop, %v per server per round after %v warm-up, %d rounds alternating; body %d bytes (demo menu); GOMAXPROCS=%d; the load generator shares the cores\n\n",
		cfg.Clients, cfg.Duration, cfg.Warmup, cfg.Rounds, len(doc.JSON), runtime.GOMAXPROCS(0))
	for r := range cfg.Rounds {
		for _, t := range targets {
			if _, err := getLoad(ctx, t.url, t.etag, t.want, cfg.Clients, cfg.Warmup); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			rps, err := getLoad(ctx, t.url, t.etag, t.want, cfg.Clients, cfg.Duration)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.results = append(t.results, rps)
		}
		fmt.Fprintf(cfg.Out, "round %d:", r+1)
		for _, t := range targets {
			fmt.Fprintf(cfg.Out, " %s %.0f;", t.name, t.results[r])
		}
		fmt.Fprintln(cfg.Out)
	}
	fmt.Fprintln(cfg.Out)
	base := targets[0].results
	var rows [][]string
	for _, t := range targets[1:] {
		rows = append(rows, []string{t.name + " req/s", fmtRange(t.results), targets[0].name + " req/s", fmtRange(base),
			fmt.Sprintf("%.2f", median(t.results)/median(base))})
	}
	printTable(cfg.Out, []string{"figure", "median [min–max]", "baseline", "median [min–max]", "ratio"}, rows)
	return nil
}

// getLoad runs conc workers sending GETs back to back on their own
// keep-alive connections for d, and returns completed requests per second.
func getLoad(ctx context.Context, url, etag string, want, conc int, d time.Duration) (float64, error) {
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
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			if etag != "" {
				req.Header.Set("If-None-Match", etag)
			}
			for time.Now().Before(stop) {
				res, err := client.Do(req)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != want {
					firstErr.CompareAndSwap(nil, fmt.Errorf("status %d, want %d", res.StatusCode, want))
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(done.Load()) / time.Since(start).Seconds(), nil
}
