package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/demo"
	"github.com/ladle-dev/ladle/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// postOrder places req on the demo restaurant of the server at base through
// the JSON API and returns the created order; anything but 201 fails t.
func postOrder(t *testing.T, base, key string, req ladle.OrderRequest) *ladle.Order {
	t.Helper()
	body, _ := json.Marshal(req)
	hreq, _ := http.NewRequest(http.MethodPost, base+"/api/v1/restaurants/"+demo.Slug+"/orders", bytes.NewReader(body))
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("order on %s: %d %s", base, resp.StatusCode, b)
	}
	var o ladle.Order
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	return &o
}

// startLadle runs `ladle serve` in-process with the given arguments and
// environment, waits until /healthz answers and returns the base URL. The
// server is stopped (gracefully, and checked to return nil) at cleanup.
func startLadle(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	argv := append([]string{"ladle", "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)
	go func() { done <- run(ctx, argv, func(k string) string { return env[k] }, out, errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v; log:\n%s", err, errOut.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base := strings.Replace(m[1], "localhost", "127.0.0.1", 1)
			if resp, err := http.Get(base + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return base
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("server did not come up; stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	return ""
}

func TestServeDemoEndToEnd(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			if db == "postgres" {
				env["LADLE_DATABASE_URL"] = testenv.PostgresSchema(t)
			}
			base := startLadle(t, env, "--demo")
			for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
				resp, err := http.Get(base + path)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("GET %s: %v %v", path, resp.StatusCode, err)
				}
				resp.Body.Close()
			}
			resp, err := http.Get(base + "/api/v1/restaurants/" + demo.Slug + "/menu")
			if err != nil {
				t.Fatal(err)
			}
			var menu ladle.Menu
			if err := json.NewDecoder(resp.Body).Decode(&menu); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if len(menu.Categories) < 3 {
				t.Fatalf("demo menu has %d categories", len(menu.Categories))
			}
			// Order the first available item that needs no modifier choice.
			item := plainItem(t, &menu)
			soldOut := 0
			for _, c := range menu.Categories {
				for _, it := range c.Items {
					if !it.Available {
						soldOut++
					}
				}
			}
			if soldOut == 0 {
				t.Fatalf("demo menu lacks a sold-out item")
			}
			o := postOrder(t, base, "e2e-1", ladle.OrderRequest{
				Customer:    ladle.CustomerInput{Name: "Ada", Email: "ada@example.com"},
				Fulfillment: ladle.FulfillmentInput{Type: "pickup", Time: "asap"},
				Lines:       []ladle.LineRequest{{ItemID: item.ID, Quantity: 2}},
				CouponCode:  demo.CouponCode,
				Payment:     ladle.PaymentInput{Method: "card", Token: "tok_visa"},
			})
			want := 2 * item.Price
			if o.Subtotal != want || o.Discount != (want+5)/10 || o.Number != 1 || o.Status != ladle.StatusPlaced {
				t.Fatalf("order %+v", o)
			}
		})
	}
}

func TestDemoSeedsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"ladle", "serve", "--demo", "--addr", "127.0.0.1:0", "--data-dir", dir},
				func(string) string { return "" }, out, io.Discard)
		}()
		for !strings.Contains(out.String(), "listening") {
			select {
			case err := <-done:
				t.Fatalf("serve exited before listening: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		if !strings.Contains(out.String(), demo.StaffEmail) {
			t.Fatalf("start-up does not print the demo login:\n%s", out.String())
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"LADLE_ADDR": ":9999", "LADLE_ROLE": "worker", "LADLE_DEMO": "true"}
	c, err := parseConfig("serve", []string{"--addr", ":7000"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":7000" || c.Role != "worker" || !c.Demo {
		t.Fatalf("flags must win over env, env over defaults: %+v", c)
	}
	if _, err := parseConfig("serve", []string{"--role", "chef"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("a bad role was accepted")
	}
	if _, err := parseConfig("serve", nil, func(k string) string { return map[string]string{"LADLE_DEMO": "maybe"}[k] }, io.Discard); err == nil {
		t.Fatal("a bad boolean in the environment was accepted")
	}
	var help bytes.Buffer
	if _, err := parseConfig("serve", []string{"--help"}, func(string) string { return "" }, &help); err != errHelp {
		t.Fatalf("--help: %v", err)
	}
	sc := bufio.NewScanner(&help)
	flags := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "  --") {
			flags++
			if !strings.Contains(sc.Text(), "[LADLE_") {
				t.Errorf("help line lacks its environment variable: %s", sc.Text())
			}
		}
	}
	if flags < 5 {
		t.Fatalf("help lists %d flags", flags)
	}
	if err := run(context.Background(), []string{"ladle", "frobnicate"}, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
}
