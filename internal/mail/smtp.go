package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SMTP sends through an SMTP relay, reusing connections: each connection
// carries many messages (MAIL, RCPT, DATA, then the next MAIL), up to a
// bounded number of connections at once. Opening a connection costs a TCP
// handshake, a greeting, EHLO, usually STARTTLS and AUTH: several round
// trips that a receipt should not pay every time. Where the server offers
// PIPELINING (RFC 2920), a message's MAIL, RCPT and DATA go in one write,
// together with the previous message's body: one round trip per message
// instead of four (smtpconn.go). SendBatch spreads many messages over
// several pooled connections at once.
type SMTP struct {
	addr        string
	host        string
	implicitTLS bool
	startTLS    bool
	tls         *tls.Config
	user, pass  string
	localName   string
	idleCheck   time.Duration // NOOP a pooled connection idle longer than this
	maxIdle     time.Duration // close one idle longer than this

	cmdTimeout time.Duration // bound on one round trip with the server
	noChunking bool          // never BDAT, even where offered (tests of the DATA path)

	slots chan struct{} // one per connection that may be open
	mu    sync.Mutex
	idle  []*smtpConn
	dials atomic.Int64
}

// NewSMTP configures an SMTP transport from a URL:
//
//	smtp://[user:pass@]host[:port]   STARTTLS (required), port 587 by default
//	smtps://[user:pass@]host[:port]  implicit TLS, port 465 by default
//
// Query parameters: pool=N (connections at most, default 4), helo=NAME (the
// EHLO name, default the hostname), tls=none (plain SMTP, for a relay on
// the same host or a dev catcher), tls_skip_verify=1 (only for testing).
// Credentials are never sent in clear text except to a loopback address.
func NewSMTP(u *url.URL) (*SMTP, error) {
	s := &SMTP{
		implicitTLS: u.Scheme == "smtps",
		host:        u.Hostname(),
		idleCheck:   10 * time.Second,
		maxIdle:     time.Minute,
		cmdTimeout:  30 * time.Second,
	}
	if s.host == "" {
		return nil, errors.New("mail: smtp url has no host")
	}
	port := u.Port()
	if port == "" {
		port = "587"
		if s.implicitTLS {
			port = "465"
		}
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	q := u.Query()
	pool := 4
	if v := q.Get("pool"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, fmt.Errorf("mail: smtp url: pool=%q is not 1..100", v)
		}
		pool = n
	}
	s.slots = make(chan struct{}, pool)
	s.localName = q.Get("helo")
	if s.localName == "" {
		s.localName, _ = os.Hostname()
	}
	if s.localName == "" {
		s.localName = "localhost"
	}
	switch v := q.Get("tls"); v {
	case "", "starttls":
		s.startTLS = !s.implicitTLS
	case "none":
		if s.implicitTLS {
			return nil, errors.New("mail: smtps:// with tls=none")
		}
	default:
		return nil, fmt.Errorf("mail: smtp url: tls=%q is not starttls or none", v)
	}
	s.tls = &tls.Config{ServerName: s.host, InsecureSkipVerify: q.Get("tls_skip_verify") == "1"}
	return s, nil
}

// Name implements Transport.
func (s *SMTP) Name() string { return "smtp" }

// Dials reports how many connections the transport has opened (for tests
// and metrics: with reuse it stays far below the number of messages).
func (s *SMTP) Dials() int64 { return s.dials.Load() }

// Send implements Transport. A pooled connection that turns out to be dead
// (the server closed it while idle) is replaced once, but only when it
// failed before the server accepted the message: a failure after DATA may
// mean the message went out, and is returned rather than retried blindly.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	return s.SendBatch(ctx, []*Message{m})[0]
}

// SendBatch sends msgs and returns one error per message (nil: the server
// accepted it). The messages are spread over up to the pool's free
// connections (at least 8 messages each, so each connection pipelines),
// and each connection sends its share in order. Errors are those of Send:
// an SMTP reply (*smtp.SMTPError) or a transport failure.
func (s *SMTP) SendBatch(ctx context.Context, msgs []*Message) []error {
	errs := make([]error, len(msgs))
	env := make([]envelope, len(msgs))
	ok := env[:0]
	var fc fromCache
	// The batch's messages are rendered one after the other into one
	// buffer, used again by a later batch once this one is sent.
	arena := renderArenas.Get().(*[]byte)
	raw := (*arena)[:0]
	defer func() {
		if cap(raw) <= maxRenderArena {
			*arena = raw[:0]
			renderArenas.Put(arena)
		}
	}()
	for i, m := range msgs {
		e, next, err := m.envelope(&fc, raw)
		if err != nil {
			errs[i] = err
			continue
		}
		raw = next
		e.i = i
		ok = append(ok, e)
	}
	if len(ok) == 0 {
		return errs
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		for _, e := range ok {
			errs[e.i] = ctx.Err()
		}
		return errs
	}
	conns := 1
	for want := min(cap(s.slots), (len(ok)+7)/8); conns < want; conns++ {
		select {
		case s.slots <- struct{}{}:
			continue
		default:
		}
		break
	}
	var wg sync.WaitGroup
	per := (len(ok) + conns - 1) / conns
	for lo := 0; lo < len(ok); lo += per {
		part := ok[lo:min(lo+per, len(ok))]
		wg.Go(func() {
			defer func() { <-s.slots }()
			s.sendPart(ctx, part, errs)
		})
	}
	// Slots taken but not used (fewer parts than connections) go back.
	for used := (len(ok) + per - 1) / per; used < conns; used++ {
		<-s.slots
	}
	wg.Wait()
	return errs
}

// renderArenas holds the buffers SendBatch renders its messages into: a
// campaign sends a batch of a hundred about every few milliseconds, and a
// fresh buffer per message was most of its garbage. A buffer grown past
// maxRenderArena (a batch of unusually large messages) is left to the
// collector rather than kept.
var renderArenas = sync.Pool{New: func() any { return new([]byte) }}

const maxRenderArena = 4 << 20

// sendPart sends part on one connection (holding a slot), retrying once on
// a fresh connection if a reused one failed before anything reached the
// server.
func (s *SMTP) sendPart(ctx context.Context, part []envelope, errs []error) {
	c := s.takeIdle()
	for {
		reused := c != nil
		if c == nil {
			var err error
			if c, err = s.dial(ctx); err != nil {
				for _, e := range part {
					errs[e.i] = fmt.Errorf("smtp %s: %w", s.addr, err)
				}
				return
			}
		}
		answered, started, err := c.send(ctx, part, errs, s.cmdTimeout, !s.noChunking)
		for _, e := range part[:answered] {
			if errs[e.i] != nil {
				errs[e.i] = fmt.Errorf("smtp %s: %w", s.addr, errs[e.i])
			}
		}
		if err == nil {
			c.lastUsed, c.used = time.Now(), true
			s.putIdle(c)
			return
		}
		c.close()
		if !reused || started || ctx.Err() != nil {
			// part[answered:] may or may not have been accepted (a
			// dropped connection after DATA): the caller decides.
			for _, e := range part[answered:] {
				errs[e.i] = fmt.Errorf("smtp %s: %w", s.addr, err)
			}
			return
		}
		part = part[answered:] // refusals already answered stay answered
		// A stale pooled connection: try once more on a fresh one.
		c = nil
	}
}

func (s *SMTP) takeIdle() *smtpConn {
	for {
		s.mu.Lock()
		if len(s.idle) == 0 {
			s.mu.Unlock()
			return nil
		}
		c := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		s.mu.Unlock()
		age := time.Since(c.lastUsed)
		if age > s.maxIdle || (age > s.idleCheck && c.noop(s.cmdTimeout) != nil) {
			c.close()
			continue
		}
		return c
	}
}

func (s *SMTP) putIdle(c *smtpConn) {
	s.mu.Lock()
	s.idle = append(s.idle, c)
	s.mu.Unlock()
}

func (s *SMTP) dial(ctx context.Context) (*smtpConn, error) {
	s.dials.Add(1)
	d := net.Dialer{Timeout: 15 * time.Second}
	var conn net.Conn
	var err error
	if s.implicitTLS {
		conn, err = (&tls.Dialer{NetDialer: &d, Config: s.tls}).DialContext(ctx, "tcp", s.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.addr)
	}
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	deadline := time.Now().Add(s.cmdTimeout)
	c := newSMTPConn(conn)
	conn.SetDeadline(deadline)
	if err := c.greet(s.localName); err != nil {
		conn.Close()
		return nil, err
	}
	if s.startTLS {
		if !c.ext("STARTTLS") {
			conn.Close()
			return nil, fmt.Errorf("%w: the server does not offer STARTTLS", ErrPermanent)
		}
		if _, err := c.cmd("STARTTLS", 220); err != nil {
			conn.Close()
			return nil, err
		}
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		c = newSMTPConn(tc)
		if err := c.hello(s.localName); err != nil {
			tc.Close()
			return nil, err
		}
	}
	secure := s.implicitTLS || s.startTLS
	if s.user != "" {
		if !secure && !isLoopback(s.host) {
			c.close()
			return nil, fmt.Errorf("%w: refusing to send SMTP credentials without TLS to %s", ErrPermanent, s.host)
		}
		if err := c.authPlain(s.user, s.pass); err != nil {
			c.close()
			return nil, err
		}
	}
	c.nc.SetDeadline(time.Time{})
	c.lastUsed = time.Now()
	return c, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close says QUIT on the idle connections and closes them. Call it after
// the senders have stopped: a send still under way returns its connection
// to the pool afterwards.
func (s *SMTP) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, c := range idle {
		c.quit(5 * time.Second)
	}
	return nil
}
