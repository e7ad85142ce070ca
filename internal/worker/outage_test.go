package worker_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/broker/brokertest"
)

// proxy is a TCP proxy on loopback that can be cut (every connection
// dropped, new ones refused) and restored, to take NATS away from a client.
type proxy struct {
	target string
	l      net.Listener
	mu     sync.Mutex
	up     bool
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: target, l: l, up: true}
	t.Cleanup(func() { l.Close(); p.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if !p.up {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) url() string { return "nats://" + p.l.Addr().String() }

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = false
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.up = true
	p.mu.Unlock()
}

// TestNATSOutage cuts the connection to NATS while orders come in: orders
// are still accepted, nothing is lost, and once NATS is reachable again
// every receipt goes out, once.
func TestNATSOutage(t *testing.T) {
	t.Parallel()
	brokertest.Each(t, func(t *testing.T, kind brokertest.Kind) {
		t.Parallel()
		// The server: the external one, or an embedded one listening on a
		// loopback port (another process's broker, in effect).
		target := brokertest.Config(t, kind, "")
		if kind == brokertest.Embedded {
			target.Listen = "127.0.0.1:0"
		}
		server := brokertest.OpenConfig(t, target)
		su, err := url.Parse(server.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		p := startProxy(t, su.Host)

		h := newHarness(t, hopts{kind: kind, noStart: true})
		// Our process reaches that server only through the proxy.
		cfg := target
		cfg.URL, cfg.DataDir, cfg.Listen = p.url(), "", ""
		if su.User != nil { // the embedded server's token
			cfg.Token = su.User.Username()
		}
		h.b = brokertest.OpenConfig(t, cfg)
		h.startRelay()
		h.startWorker()

		h.place(0)
		eventually(t, 30*time.Second, "the first receipt", func() bool { return h.sentCount("receipt") == 1 })

		p.cut()
		eventually(t, 30*time.Second, "the client to notice", func() bool { return !h.b.Connected() })
		const n = 20
		for i := 1; i <= n; i++ {
			h.place(i) // the API keeps taking orders
		}
		time.Sleep(time.Second)
		if got := h.sentCount("receipt"); got != 1 {
			t.Fatalf("%d receipts sent during the outage", got)
		}
		if backlog, _, _ := h.store.OutboxBacklog(context.Background()); backlog < n {
			t.Fatalf("outbox backlog %d during the outage, want at least %d", backlog, n)
		}
		// The relay, woken by each commit, fails its rounds while the
		// broker is away; on a loaded machine the first failed round can
		// come later than the second above, so wait for it.
		eventually(t, 30*time.Second, "the relay to notice the outage (a failed round)", func() bool {
			return h.relay.Stats().Failures > 0
		})

		p.restore()
		start := time.Now()
		eventually(t, 30*time.Second, "every receipt after the outage", func() bool { return h.sentCount("receipt") == n+1 })
		t.Logf("all %d receipts out %v after NATS came back", n, time.Since(start).Round(time.Millisecond))
		rows := map[string]int{}
		for _, e := range h.emails() {
			rows[e.OrderID]++
		}
		for id, c := range rows {
			if c != 1 {
				t.Errorf("order %s has %d receipts", id, c)
			}
		}
		if backlog, _, _ := h.store.OutboxBacklog(context.Background()); backlog != 0 {
			t.Errorf("outbox backlog %d after recovery", backlog)
		}

	})
}
