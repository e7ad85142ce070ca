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
	"sync"
	"sync/atomic"
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
	DefaultSessionTTL = 12 * time.Hour // one long shift
	// Sign-in attempts allowed per DefaultFailWindow, counted before the
	// password is checked and given back when it was right. A browser
	// without a known-device cookie is held to all three of the first
	// limits; a known device (device.go) only to its own.
	DefaultMaxFailures     = 5  // per (email, client address)
	MaxFailuresPerAddress  = 20 // per client address (IPv6: its /64), any email: a whole kitchen may share one
	MaxFailuresPerEmail    = 10 // per email from unknown devices, any address: slows a distributed guesser
	MaxFailuresPerDevice   = 10 // per known device, for its own user
	DefaultFailWindow      = 15 * time.Minute
	DefaultLimiterSize     = 100_000
	CodeInvalidCredentials = "invalid_credentials"
	// DefaultHashMemory bounds the memory that password hashes may use at
	// once: with DefaultParams (64 MiB each) two run at a time, on this
	// two-core machine also the CPU's worth. A sign-in that finds every slot
	// taken is answered 429 at once instead of queueing.
	DefaultHashMemory = 128 << 20
	maxHashSlots      = 4
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
	proxies TrustedProxies
	// deviceKey signs known-device cookies (device.go).
	deviceKey []byte
	// slots bounds concurrent password hashes; hashing and peakHashing
	// count them, busy counts sign-ins refused because all were taken.
	slots       chan struct{}
	hashing     atomic.Int64
	peakHashing atomic.Int64
	busy        atomic.Int64
	limited     atomic.Int64

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

// WithSecret sets the server secret that signs known-device cookies; every
// process must share it. Without it a random one is made, so devices are
// known to this process only, until it restarts.
func WithSecret(secret []byte) Option {
	return func(m *Manager) {
		if len(secret) > 0 {
			m.deviceKey = deviceKey(secret)
		}
	}
}

// WithTrustedProxies makes ClientIP believe X-Forwarded-For from these
// proxies.
func WithTrustedProxies(t TrustedProxies) Option { return func(m *Manager) { m.proxies = t } }

// WithHashConcurrency sets how many password hashes may run at once
// (default: DefaultHashMemory over the parameters' memory, 1–4).
func WithHashConcurrency(n int) Option {
	return func(m *Manager) { m.slots = make(chan struct{}, max(n, 1)) }
}

// New returns a Manager over the staff store.
func New(store ladle.StaffStore, opts ...Option) *Manager {
	m := &Manager{store: store, now: ladle.Now, params: DefaultParams, ttl: DefaultSessionTTL, logger: slog.Default()}
	for _, o := range opts {
		o(m)
	}
	if m.limiter == nil {
		m.limiter = NewLimiter(DefaultMaxFailures, DefaultFailWindow, DefaultLimiterSize, m.now)
	}
	if m.deviceKey == nil {
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		m.deviceKey = deviceKey(raw[:])
	}
	// The dummy hash is made now, not by the first sign-in of a burst,
	// where it would run outside the hash slots.
	m.dummyHash()
	if m.slots == nil {
		m.slots = make(chan struct{}, defaultSlots(m.params))
	}
	return m
}

// defaultSlots is DefaultHashMemory over the memory of one hash, 1–4.
func defaultSlots(p Params) int {
	n := DefaultHashMemory / max(int(p.Memory)<<10, 1)
	return min(max(n, 1), maxHashSlots)
}

// ClientIP is the address of the client that sent r, read through trusted
// proxies (WithTrustedProxies).
func (m *Manager) ClientIP(r *http.Request) string { return m.proxies.ClientIP(r) }

// HashStats are the password-hash slots and what they saw.
type HashStats struct {
	Slots    int   // hashes allowed at once
	InFlight int   // running now
	Peak     int   // most ever running at once
	Busy     int64 // sign-ins refused because every slot was taken
	Limited  int64 // sign-ins refused by a failure limit
}

// HashStats returns the hash slots' numbers.
func (m *Manager) HashStats() HashStats {
	return HashStats{Slots: cap(m.slots), InFlight: int(m.hashing.Load()), Peak: int(m.peakHashing.Load()), Busy: m.busy.Load(),
		Limited: m.limited.Load()}
}

// verify checks password against the encoded hash in one of the hash
// slots; ran false when every slot is taken (nothing was checked).
func (m *Manager) verify(password, encoded string) (match, ran bool, err error) {
	select {
	case m.slots <- struct{}{}:
	default:
		m.busy.Add(1)
		return false, false, nil
	}
	n := m.hashing.Add(1)
	for p := m.peakHashing.Load(); n > p && !m.peakHashing.CompareAndSwap(p, n); p = m.peakHashing.Load() {
	}
	defer func() { m.hashing.Add(-1); <-m.slots }()
	match, err = VerifyPassword(password, encoded)
	return match, true, err
}

// HashPassword hashes a new password with the manager's parameters.
func (m *Manager) HashPassword(password string) (string, error) {
	return HashPassword(password, m.params)
}

// Authenticate checks an email and password from the client at ip, from a
// browser that is not a known device. AuthenticateRequest is the same for
// an HTTP request: it reads the client address through trusted proxies and
// the known-device cookie.
func (m *Manager) Authenticate(ctx context.Context, ip, email, password string) (*ladle.User, error) {
	return m.authenticate(ctx, ip, nil, email, password)
}

// AuthenticateRequest checks an email and password posted in r.
func (m *Manager) AuthenticateRequest(r *http.Request, email, password string) (*ladle.User, error) {
	return m.authenticate(r.Context(), m.ClientIP(r), m.knownDevice(r), email, password)
}

// authenticate outcomes: the user; rate_limited (KindRateLimited, Extra
// "retry_after" in seconds) when a limit is used up, or at once, with
// retry_after 1, when every hash slot is busy; invalid_credentials
// (KindUnauthorized) for an unknown email or a wrong password,
// indistinguishable in message and in time (an unknown email is verified
// against a dummy hash); any other error is a storage failure.
//
// The order matters: the attempt is counted against every limit before the
// password is hashed (and given back if it was right), so a parallel burst
// cannot get more guesses than the limits allow; a refused attempt costs no
// hash and no database read.
func (m *Manager) authenticate(ctx context.Context, ip string, device *deviceClaim, email, password string) (*ladle.User, error) {
	email = normalizeLoginEmail(email)
	addr := ipKey(ip)
	// Limiter keys hold the email: a 16 KiB "email" must not make a 16 KiB
	// key (no such address exists, so it fails the lookup anyway).
	lkey := email
	if len(lkey) > ladle.MaxEmailLen {
		lkey = lkey[:ladle.MaxEmailLen]
	}
	var limits []Limit
	if device != nil && device.Email == email {
		limits = []Limit{{"device:" + device.Device, MaxFailuresPerDevice}}
	} else {
		limits = []Limit{
			{"ip:" + addr, MaxFailuresPerAddress},
			{"ipemail:" + addr + "|" + lkey, DefaultMaxFailures},
			{"email:" + lkey, MaxFailuresPerEmail},
		}
	}
	if ok, wait := m.limiter.Charge(limits...); !ok {
		m.limited.Add(1)
		secs := max(int(wait.Round(time.Second)/time.Second), 1)
		return nil, &ladle.Error{Kind: ladle.KindRateLimited, Code: ladle.CodeRateLimited,
			Message: "too many failed sign-in attempts; try again in " + humanWait(wait),
			Extra:   map[string]any{"retry_after": secs}}
	}
	refund := func() {
		for _, l := range limits {
			m.limiter.Refund(l.Key)
		}
	}
	fail := func() (*ladle.User, error) {
		return nil, &ladle.Error{Kind: ladle.KindUnauthorized, Code: CodeInvalidCredentials,
			Message: "email or password is incorrect"}
	}
	busy := func() (*ladle.User, error) {
		refund() // nothing was checked
		return nil, ladle.RateLimited(1, "the server is busy signing others in; try again in a second")
	}

	var u *ladle.User
	// An address the input policy refuses cannot be a user's: no lookup
	// (a NUL is an error on PostgreSQL), but the same dummy hash below.
	if ladle.CheckEmail(email) == "" {
		var err error
		u, err = m.store.UserByEmail(ctx, email)
		if err != nil && ladle.ErrorKind(err) != ladle.KindNotFound {
			refund()
			return nil, err
		}
	}
	// Unknown user or a malformed stored hash: the dummy hash, so the
	// response time does not say which.
	hash, real := m.dummyHash(), false
	if u != nil {
		if _, _, _, err := decodeHash(u.PasswordHash); err != nil {
			m.logger.Error("auth: stored password hash is malformed", "user_id", u.ID, "err", err)
		} else {
			hash, real = u.PasswordHash, true
		}
	}
	ok, ran, _ := m.verify(password, hash)
	if !ran {
		return busy()
	}
	if !ok || !real {
		return fail()
	}
	// Right password: this attempt was no failure.
	refund()
	m.limiter.Reset("ipemail:" + addr + "|" + lkey)
	if device != nil {
		m.limiter.Reset("device:" + device.Device)
	}
	return u, nil
}

func normalizeLoginEmail(email string) string { return ladle.NormalizeEmail(email) }

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
