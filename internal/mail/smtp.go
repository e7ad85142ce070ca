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

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTP sends through an SMTP relay, reusing connections: each connection
// carries many messages (MAIL, RCPT, DATA, then the next MAIL), up to a
// bounded number of connections at once. Opening a connection costs a TCP
// handshake, a greeting, EHLO, usually STARTTLS and AUTH: several round
// trips that a receipt should not pay every time.
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

	slots chan struct{} // one per connection that may be open
	mu    sync.Mutex
	idle  []*pooledConn
	dials atomic.Int64
}

type pooledConn struct {
	c        *smtp.Client
	lastUsed time.Time
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
	from, to, err := m.Envelope()
	if err != nil {
		return err
	}
	raw, err := m.Bytes()
	if err != nil {
		return err
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.slots }()

	pc := s.takeIdle()
	for {
		reused := pc != nil
		if pc == nil {
			if pc, err = s.dial(ctx); err != nil {
				return fmt.Errorf("smtp %s: %w", s.addr, err)
			}
		}
		accepted, err := s.sendOn(ctx, pc.c, from, to, raw)
		if err == nil {
			pc.lastUsed = time.Now()
			s.putIdle(pc)
			return nil
		}
		var se *smtp.SMTPError
		if errors.As(err, &se) && accepted == stageRejected {
			// The server answered and the connection is fine: keep it.
			_ = pc.c.Reset()
			pc.lastUsed = time.Now()
			s.putIdle(pc)
			return fmt.Errorf("smtp %s: %w", s.addr, err)
		}
		pc.c.Close()
		pc = nil
		if !reused || accepted != stageNotStarted || ctx.Err() != nil {
			return fmt.Errorf("smtp %s: %w", s.addr, err)
		}
		// A stale pooled connection: try once more on a fresh one.
	}
}

type sendStage int

const (
	stageNotStarted sendStage = iota // nothing reached the server
	stageRejected                    // the server refused with a reply
	stageUnknown                     // the DATA may or may not have been taken
)

func (s *SMTP) sendOn(ctx context.Context, c *smtp.Client, from, to string, raw []byte) (sendStage, error) {
	// go-smtp takes no context: closing the connection unblocks it.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Mail(from, nil); err != nil {
		if isReply(err) {
			return stageRejected, err
		}
		return stageNotStarted, err
	}
	if err := c.Rcpt(to, nil); err != nil {
		if isReply(err) {
			return stageRejected, err
		}
		return stageUnknown, err
	}
	w, err := c.Data()
	if err != nil {
		if isReply(err) {
			return stageRejected, err
		}
		return stageUnknown, err
	}
	if _, err := w.Write(raw); err != nil {
		return stageUnknown, err
	}
	if err := w.Close(); err != nil {
		if isReply(err) {
			return stageRejected, err
		}
		return stageUnknown, err
	}
	return stageNotStarted, nil
}

func isReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

func (s *SMTP) takeIdle() *pooledConn {
	for {
		s.mu.Lock()
		if len(s.idle) == 0 {
			s.mu.Unlock()
			return nil
		}
		pc := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		s.mu.Unlock()
		age := time.Since(pc.lastUsed)
		if age > s.maxIdle || (age > s.idleCheck && pc.c.Noop() != nil) {
			pc.c.Close()
			continue
		}
		return pc
	}
}

func (s *SMTP) putIdle(pc *pooledConn) {
	s.mu.Lock()
	s.idle = append(s.idle, pc)
	s.mu.Unlock()
}

func (s *SMTP) dial(ctx context.Context) (*pooledConn, error) {
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
	var c *smtp.Client
	if s.startTLS {
		// go-smtp greets with EHLO localhost before STARTTLS; after it the
		// session starts over, so our own name goes into the second EHLO.
		if c, err = smtp.NewClientStartTLS(conn, s.tls); err != nil {
			conn.Close()
			return nil, err
		}
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = 30 * time.Second
	c.SubmissionTimeout = 2 * time.Minute
	if err := c.Hello(s.localName); err != nil {
		c.Close()
		return nil, err
	}
	secure := s.implicitTLS || s.startTLS
	if s.user != "" {
		if !secure && !isLoopback(s.host) {
			c.Close()
			return nil, fmt.Errorf("%w: refusing to send SMTP credentials without TLS to %s", ErrPermanent, s.host)
		}
		if err := c.Auth(sasl.NewPlainClient("", s.user, s.pass)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return &pooledConn{c: c, lastUsed: time.Now()}, nil
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
	for _, pc := range idle {
		_ = pc.c.Quit()
		pc.c.Close()
	}
	return nil
}
