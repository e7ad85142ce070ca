// Package faultproxy is a TCP proxy for tests that puts faults between a
// client and a real server (PostgreSQL, say): pass traffic through, cut
// every connection and refuse new ones, blackhole (accept, never answer),
// or add latency. Everything listens on 127.0.0.1.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"time"
)

// Mode is what the proxy does to traffic.
type Mode int

const (
	Pass      Mode = iota // forward both ways
	Cut                   // close every connection; new ones are closed at once
	Blackhole             // keep connections open, forward nothing either way
)

// Proxy forwards 127.0.0.1:random to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	mode    Mode
	latency time.Duration
	conns   map[net.Conn]struct{}
	changed chan struct{} // closed and replaced on every mode change
	wg      sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set changes the mode. Cut closes every open connection.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
	if m == Cut {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// SetLatency delays every chunk forwarded from the target by d.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) state() (Mode, time.Duration, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.latency, p.changed
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == Cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

// serve forwards one connection. The upstream connection is dialled only
// when the mode lets traffic through, so a blackholed connect looks like a
// server that accepted and never spoke.
func (p *Proxy) serve(down net.Conn) {
	defer p.untrack(down)
	for {
		mode, _, changed := p.state()
		if mode == Pass {
			break
		}
		if mode == Cut {
			return
		}
		// Blackhole: swallow what the client sends until the mode changes.
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(io.Discard, down)
		}()
		select {
		case <-changed:
			// Bytes swallowed so far are lost: the client's protocol state
			// is broken, as with a real outage. Close it.
			return
		case <-done:
			return
		}
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		_ = up.Close()
		return
	}
	defer p.untrack(up)
	var wg sync.WaitGroup
	wg.Go(func() { p.pipe(up, down, false); _ = up.Close(); _ = down.Close() })
	wg.Go(func() { p.pipe(down, up, true); _ = up.Close(); _ = down.Close() })
	wg.Wait()
}

// pipe copies src to dst, dropping everything while blackholed and delaying
// chunks from the target by the latency.
func (p *Proxy) pipe(dst, src net.Conn, fromTarget bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			mode, lat, _ := p.state()
			switch mode {
			case Cut:
				return
			case Blackhole:
				// dropped
			default:
				if fromTarget && lat > 0 {
					time.Sleep(lat)
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}
