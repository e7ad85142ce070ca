// Package smtptest runs a real SMTP server (go-smtp) on a loopback port that
// keeps what it receives, for tests and benchmarks of Ladle's mail path. It
// can refuse messages or drop the connection, to exercise retries.
package smtptest

import (
	"bytes"
	"io"
	"log"
	"mime"
	"net"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Received is one message the server accepted.
type Received struct {
	From, To  string
	MessageID string // without angle brackets
	Subject   string
	Header    mail.Header
	Raw       []byte
	At        time.Time
}

// Server is a running SMTP server on 127.0.0.1.
type Server struct {
	srv      *smtp.Server
	addr     string
	sessions atomic.Int64

	mu       sync.Mutex
	msgs     []Received
	fail     []error            // errors to return from the next DATA commands, in order
	failTo   map[string][]error // errors for DATA to one recipient, in order
	rejectTo map[string]error   // errors for RCPT of one recipient, always
	notify   chan struct{}
	onAccept func(Received)
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Listen starts a server on a free loopback port.
func Listen() (*Server, error) { return ListenAddr("127.0.0.1:0") }

// ListenAddr starts a server on addr (a loopback host:port), for example the
// address of a server that was just closed, to stand in for a restart.
func ListenAddr(addr string) (*Server, error) {
	s := &Server{notify: make(chan struct{}, 1)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		s.sessions.Add(1)
		return &session{s: s}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.addr = l.Addr().String()
	go s.srv.Serve(l)
	return s, nil
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// URL is a --smtp-url for this server (plain SMTP on loopback).
func (s *Server) URL() string { return "smtp://" + s.addr + "?tls=none" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Sessions is the number of connections clients opened.
func (s *Server) Sessions() int64 { return s.sessions.Load() }

// FailNext makes the next len(errs) DATA commands fail with these errors in
// turn (use *smtp.SMTPError for a reply: code 4xx temporary, 5xx permanent).
func (s *Server) FailNext(errs ...error) {
	s.mu.Lock()
	s.fail = append(s.fail, errs...)
	s.mu.Unlock()
}

// FailTo makes the next len(errs) DATA commands for the recipient to fail
// with these errors in turn, whatever else is being sent at the time.
func (s *Server) FailTo(to string, errs ...error) {
	s.mu.Lock()
	if s.failTo == nil {
		s.failTo = map[string][]error{}
	}
	s.failTo[to] = append(s.failTo[to], errs...)
	s.mu.Unlock()
}

// RejectRcpt makes every RCPT of the recipient to fail with err.
func (s *Server) RejectRcpt(to string, err error) {
	s.mu.Lock()
	if s.rejectTo == nil {
		s.rejectTo = map[string]error{}
	}
	s.rejectTo[to] = err
	s.mu.Unlock()
}

// OnAccept sets a function called (outside the lock) after each message is
// stored, before the server replies 250: tests use it to act at that moment.
func (s *Server) OnAccept(fn func(Received)) {
	s.mu.Lock()
	s.onAccept = fn
	s.mu.Unlock()
}

// Messages returns a copy of what was received so far.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// Count is len(Messages()).
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Wait blocks until at least n messages arrived or the timeout passed, and
// returns what arrived.
func (s *Server) Wait(n int, timeout time.Duration) []Received {
	deadline := time.After(timeout)
	for {
		if msgs := s.Messages(); len(msgs) >= n {
			return msgs
		}
		select {
		case <-s.notify:
		case <-deadline:
			return s.Messages()
		}
	}
}

type session struct {
	s        *Server
	from, to string
}

func (ss *session) Reset()        { ss.from, ss.to = "", "" }
func (ss *session) Logout() error { return nil }
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.to != "" {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "one recipient per message here"}
	}
	ss.s.mu.Lock()
	err := ss.s.rejectTo[to]
	ss.s.mu.Unlock()
	if err != nil {
		return err
	}
	ss.to = to
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	if errs := s.failTo[ss.to]; len(errs) > 0 {
		s.failTo[ss.to] = errs[1:]
		s.mu.Unlock()
		return errs[0]
	}
	if len(s.fail) > 0 {
		err := s.fail[0]
		s.fail = s.fail[1:]
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "unparsable message: " + err.Error()}
	}
	rec := Received{
		From: ss.from, To: ss.to, Raw: raw, Header: msg.Header, At: time.Now(),
		MessageID: strings.Trim(msg.Header.Get("Message-ID"), "<>"),
	}
	rec.Subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	s.mu.Lock()
	s.msgs = append(s.msgs, rec)
	fn := s.onAccept
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	if fn != nil {
		fn(rec)
	}
	return nil
}

// ErrTemporary and ErrPermanent are ready-made replies for FailNext.
var (
	ErrTemporary = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	ErrPermanent = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
)
