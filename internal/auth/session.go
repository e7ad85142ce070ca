// Package auth logs staff in: argon2id password hashes, cookie sessions whose
// token is stored only as a SHA-256, a login rate limiter, and cross-origin
// request protection for state-changing routes.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ladle-dev/ladle"
)

// Cookie names. Over TLS the cookie is __Host- prefixed: browsers then accept
// it only with Secure, Path=/ and no Domain, so a sibling subdomain cannot
// plant or overwrite it.
const (
	CookieName       = "ladle_session"
	SecureCookieName = "__Host-ladle_session"
)

// Defaults.
const (
	DefaultSessionTTL      = 12 * time.Hour // one long shift
	DefaultMaxFailures     = 5
	DefaultFailWindow      = 15 * time.Minute
	DefaultLimiterSize     = 100_000
	CodeInvalidCredentials = "invalid_credentials"
)

// tokenLen is the number of random bytes in a session token.
const tokenLen = 32

// Manager authenticates staff and keeps their sessions.
type Manager struct {
	store   ladle.StaffStore
	now     ladle.Clock
	params  Params
	ttl     time.Duration
	secure  bool
	limiter *Limiter
	logger  *slog.Logger

	dummyOnce sync.Once
	dummy     string

	sweepMu   sync.Mutex
	lastSweep time.Time
}

// Option configures a Manager.
type Option func(*Manager)

// WithParams sets the argon2id parameters for new hashes (tests use
// TestParams). Existing hashes verify with the parameters they carry.
func WithParams(p Params) Option { return func(m *Manager) { m.params = p } }

// WithClock sets the clock (tests move it past a session's expiry).
func WithClock(c ladle.Clock) Option { return func(m *Manager) { m.now = c } }

// WithSessionTTL sets how long a session lives.
func WithSessionTTL(d time.Duration) Option { return func(m *Manager) { m.ttl = d } }

// WithSecureCookies makes every session cookie Secure and __Host- prefixed
// even when the request itself arrived over plain HTTP: set it when TLS ends
// at a proxy in front of Ladle. Without it, requests with r.TLS set get the
// secure cookie and the others the plain one.
func WithSecureCookies(on bool) Option { return func(m *Manager) { m.secure = on } }

// WithLimiter replaces the login failure limiter.
func WithLimiter(l *Limiter) Option { return func(m *Manager) { m.limiter = l } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.logger = l } }

// New returns a Manager over the staff store.
func New(store ladle.StaffStore, opts ...Option) *Manager {
	m := &Manager{store: store, now: ladle.Now, params: DefaultParams, ttl: DefaultSessionTTL, logger: slog.Default()}
	for _, o := range opts {
		o(m)
	}
	if m.limiter == nil {
		m.limiter = NewLimiter(DefaultMaxFailures, DefaultFailWindow, DefaultLimiterSize, m.now)
	}
	return m
}

// HashPassword hashes a new password with the manager's parameters.
func (m *Manager) HashPassword(password string) (string, error) {
	return HashPassword(password, m.params)
}

// Authenticate checks an email and password from the client at ip.
//
// Outcomes: the user; rate_limited (KindRateLimited, Extra "retry_after" in
// seconds) when the ip or the email has failed too often recently;
// invalid_credentials (KindUnauthorized) for an unknown email or a wrong
// password, indistinguishable in message and in time (an unknown email is
// verified against a dummy hash); any other error is a storage failure.
func (m *Manager) Authenticate(ctx context.Context, ip, email, password string) (*ladle.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	keys := []string{"ip:" + ipKey(ip), "email:" + email}
	for _, k := range keys {
		if ok, wait := m.limiter.Allow(k); !ok {
			secs := int(wait.Round(time.Second) / time.Second)
			if secs < 1 {
				secs = 1
			}
			return nil, &ladle.Error{Kind: ladle.KindRateLimited, Code: ladle.CodeRateLimited,
				Message: "too many failed sign-in attempts; try again in " + humanWait(wait),
				Extra:   map[string]any{"retry_after": secs}}
		}
	}
	fail := func() (*ladle.User, error) {
		for _, k := range keys {
			m.limiter.Fail(k)
		}
		return nil, &ladle.Error{Kind: ladle.KindUnauthorized, Code: CodeInvalidCredentials,
			Message: "email or password is incorrect"}
	}

	u, err := m.store.UserByEmail(ctx, email)
	if err != nil && ladle.ErrorKind(err) != ladle.KindNotFound {
		return nil, err
	}
	hash := ""
	if u != nil {
		hash = u.PasswordHash
	}
	ok, verr := VerifyPassword(password, hash)
	if verr != nil {
		// Unknown user or a malformed stored hash: spend the same time as a
		// real verification so the response time does not say which.
		if u != nil {
			m.logger.Error("auth: stored password hash is malformed", "user_id", u.ID, "err", verr)
		}
		_, _ = VerifyPassword(password, m.dummyHash())
		return fail()
	}
	if !ok {
		return fail()
	}
	m.limiter.Reset("email:" + email)
	return u, nil
}

// dummyHash is verified against when the user does not exist.
func (m *Manager) dummyHash() string {
	m.dummyOnce.Do(func() {
		m.dummy, _ = HashPassword("not the password of anyone", m.params)
	})
	return m.dummy
}

// StartSession creates a session for the user and sets its cookie. A session
// cookie the browser already had is ended first, so a login always gets a
// fresh token.
func (m *Manager) StartSession(w http.ResponseWriter, r *http.Request, userID int64) error {
	if c := m.cookie(r); c != nil {
		if hash, ok := tokenHash(c.Value); ok {
			_ = m.store.DeleteSession(r.Context(), hash)
		}
	}
	raw := make([]byte, tokenLen)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	hash, _ := tokenHash(token)
	now := m.now()
	s := &ladle.Session{TokenHash: hash, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(m.ttl)}
	if err := m.store.CreateSession(r.Context(), s); err != nil {
		return err
	}
	m.sweep(r.Context(), now)
	secure := m.secureFor(r)
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName(secure),
		Value:    token,
		Path:     "/",
		Expires:  s.ExpiresAt,
		MaxAge:   int(m.ttl / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// EndSession deletes the request's session (if any) and clears its cookie.
func (m *Manager) EndSession(w http.ResponseWriter, r *http.Request) error {
	var err error
	if c := m.cookie(r); c != nil {
		if hash, ok := tokenHash(c.Value); ok {
			err = m.store.DeleteSession(r.Context(), hash)
		}
	}
	secure := m.secureFor(r)
	http.SetCookie(w, &http.Cookie{Name: cookieName(secure), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	return err
}

// User returns the logged-in user of the request: unauthorized
// (KindUnauthorized) without a valid, unexpired session.
func (m *Manager) User(r *http.Request) (*ladle.User, error) {
	unauthorized := &ladle.Error{Kind: ladle.KindUnauthorized, Code: ladle.CodeUnauthorized, Message: "please sign in"}
	c := m.cookie(r)
	if c == nil {
		return nil, unauthorized
	}
	hash, ok := tokenHash(c.Value)
	if !ok {
		return nil, unauthorized
	}
	s, err := m.store.SessionByTokenHash(r.Context(), hash, m.now())
	if err != nil {
		if ladle.ErrorKind(err) == ladle.KindNotFound {
			return nil, unauthorized
		}
		return nil, err
	}
	// The store filters expired sessions; checking again here keeps the
	// promise even if a store implementation forgets.
	if !m.now().Before(s.ExpiresAt) {
		return nil, unauthorized
	}
	u, err := m.store.UserByID(r.Context(), s.UserID)
	if err != nil {
		if ladle.ErrorKind(err) == ladle.KindNotFound {
			return nil, unauthorized
		}
		return nil, err
	}
	return u, nil
}

// cookie returns the session cookie of the request. Over TLS only the
// __Host- cookie counts: the plain one could have been set by anyone on a
// sibling subdomain or over plain HTTP.
func (m *Manager) cookie(r *http.Request) *http.Cookie {
	c, err := r.Cookie(cookieName(m.secureFor(r)))
	if err != nil {
		return nil
	}
	return c
}

func (m *Manager) secureFor(r *http.Request) bool { return m.secure || r.TLS != nil }

func cookieName(secure bool) string {
	if secure {
		return SecureCookieName
	}
	return CookieName
}

// tokenHash checks the shape of a cookie value and returns the SHA-256 that
// the store keys sessions by. Garbage never reaches the database.
func tokenHash(token string) ([]byte, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != tokenLen {
		return nil, false
	}
	sum := sha256.Sum256(raw)
	return sum[:], true
}

// sweep deletes expired sessions at most once an hour, on login: cheap
// housekeeping without a background goroutine.
func (m *Manager) sweep(ctx context.Context, now time.Time) {
	m.sweepMu.Lock()
	due := now.Sub(m.lastSweep) >= time.Hour
	if due {
		m.lastSweep = now
	}
	m.sweepMu.Unlock()
	if !due {
		return
	}
	if _, err := m.store.DeleteExpiredSessions(ctx, now); err != nil {
		m.logger.Warn("auth: deleting expired sessions", "err", err)
	}
}

// ipKey is the rate-limit key of a client address: the IP itself for IPv4,
// the /64 for IPv6 (one host usually owns a whole /64, so per-address limits
// would be free to dodge).
func ipKey(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	ip := net.ParseIP(addr)
	if ip == nil {
		return addr
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

func humanWait(d time.Duration) string {
	mins := int((d + time.Minute - 1) / time.Minute)
	if mins <= 1 {
		return "a minute"
	}
	return strconv.Itoa(mins) + " minutes"
}

// IsUnauthorized reports whether err means "not signed in".
func IsUnauthorized(err error) bool {
	var e *ladle.Error
	return errors.As(err, &e) && e.Kind == ladle.KindUnauthorized
}
