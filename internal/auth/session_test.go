package auth

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/sqlstore"
)

// The manager is tested against the real SQLite store.

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	store *sqlstore.Store
	m     *Manager
	clock *clock
	user  *ladle.User
}

const password = "s3cret-pass"

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Date(2030, 3, 1, 9, 0, 0, 0, time.UTC)}
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "auth.db"), sqlstore.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	m := New(st, WithParams(TestParams), WithClock(clk.Now))
	hash, err := m.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u := &ladle.User{Email: "cook@example.com", Name: "Cook", PasswordHash: hash}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	return &fixture{store: st, m: m, clock: clk, user: u}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u, err := f.m.Authenticate(ctx, "10.0.0.1", "  Cook@Example.com ", password)
	if err != nil || u.ID != f.user.ID {
		t.Fatalf("Authenticate = %v, %v", u, err)
	}
	_, wrong := f.m.Authenticate(ctx, "10.0.0.1", "cook@example.com", "nope")
	_, unknown := f.m.Authenticate(ctx, "10.0.0.1", "ghost@example.com", password)
	for _, err := range []error{wrong, unknown} {
		if ladle.ErrorCode(err) != CodeInvalidCredentials || ladle.ErrorKind(err) != ladle.KindUnauthorized {
			t.Fatalf("got %v, want invalid_credentials", err)
		}
	}
	if wrong.Error() != unknown.Error() {
		t.Fatalf("a wrong password and an unknown email read differently: %q vs %q", wrong, unknown)
	}
	// The unknown email was verified against the dummy hash, so it cost
	// the same argon2id work as a real user.
	if f.m.dummy == "" {
		t.Fatal("no dummy hash was verified for the unknown email")
	}
}

func TestAuthenticateMalformedStoredHash(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	u := &ladle.User{Email: "broken@example.com", Name: "Broken", PasswordHash: "plaintext!"}
	if err := f.store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Authenticate(ctx, "10.0.0.1", u.Email, "plaintext!"); ladle.ErrorCode(err) != CodeInvalidCredentials {
		t.Fatalf("got %v, want invalid_credentials", err)
	}
}

func TestAuthenticateRateLimitedPerEmail(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	for i := range MaxFailuresPerEmail {
		// A different address each time: the email's own budget runs out.
		ip := "10.0.1." + strconv.Itoa(i+1)
		if _, err := f.m.Authenticate(ctx, ip, f.user.Email, "guess"); ladle.ErrorCode(err) != CodeInvalidCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, err := f.m.Authenticate(ctx, "10.0.9.9", f.user.Email, password)
	var e *ladle.Error
	if ladle.ErrorCode(err) != ladle.CodeRateLimited || ladle.ErrorKind(err) != ladle.KindRateLimited {
		t.Fatalf("got %v, want rate_limited for an unknown device, even with the right password", err)
	}
	e = err.(*ladle.Error)
	if secs, _ := e.Extra["retry_after"].(int); secs != 15*60 {
		t.Fatalf("retry_after %v, want 900", e.Extra["retry_after"])
	}
	f.clock.Add(DefaultFailWindow)
	if _, err := f.m.Authenticate(ctx, "10.0.9.9", f.user.Email, password); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestAuthenticateRateLimitedPerAddressAndEmail(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	for i := range DefaultMaxFailures {
		if _, err := f.m.Authenticate(ctx, "10.0.2.1", f.user.Email, "guess"); ladle.ErrorCode(err) != CodeInvalidCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if _, err := f.m.Authenticate(ctx, "10.0.2.1:999", f.user.Email, password); ladle.ErrorCode(err) != ladle.CodeRateLimited {
		t.Fatalf("got %v, want rate_limited", err)
	}
	// The same email from another address, and another email from the
	// same address, still work: neither key alone was used up.
	if _, err := f.m.Authenticate(ctx, "10.0.2.2", f.user.Email, password); err != nil {
		t.Fatalf("another address: %v", err)
	}
	if _, err := f.m.Authenticate(ctx, "10.0.2.1", "ghost@example.com", "x"); ladle.ErrorCode(err) != CodeInvalidCredentials {
		t.Fatalf("another email from the address: %v", err)
	}
}

func TestAuthenticateRateLimitedPerIP(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	for i := range MaxFailuresPerAddress {
		email := "ghost" + strconv.Itoa(i) + "@example.com"
		if _, err := f.m.Authenticate(ctx, "192.0.2.7:5123", email, "guess"); ladle.ErrorCode(err) != CodeInvalidCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if _, err := f.m.Authenticate(ctx, "192.0.2.7:6000", f.user.Email, password); ladle.ErrorCode(err) != ladle.CodeRateLimited {
		t.Fatalf("got %v, want rate_limited for the address", err)
	}
	if _, err := f.m.Authenticate(ctx, "192.0.2.8", f.user.Email, password); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestSuccessIsNotCounted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	for range DefaultMaxFailures - 1 {
		_, _ = f.m.Authenticate(ctx, "10.1.0.1", f.user.Email, "typo")
	}
	if _, err := f.m.Authenticate(ctx, "10.1.0.1", f.user.Email, password); err != nil {
		t.Fatal(err)
	}
	// The (email, address) budget starts again after a success.
	for range DefaultMaxFailures - 1 {
		_, _ = f.m.Authenticate(ctx, "10.1.0.1", f.user.Email, "typo")
	}
	if _, err := f.m.Authenticate(ctx, "10.1.0.1", f.user.Email, password); err != nil {
		t.Fatalf("budget not reset by the successful login: %v", err)
	}
	// Successful sign-ins never use up an address's budget.
	for range 2 * MaxFailuresPerAddress {
		if _, err := f.m.Authenticate(ctx, "10.1.0.2", f.user.Email, password); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBurstIsChargedBeforeHashing: a parallel burst of wrong passwords for
// one (email, address) gets exactly DefaultMaxFailures password checks; the
// rest are refused without a hash.
func TestBurstIsChargedBeforeHashing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.m = New(f.store, WithParams(TestParams), WithClock(f.clock.Now), WithHashConcurrency(64))
	ctx := context.Background()
	var wg sync.WaitGroup
	var checked, limited atomic.Int64
	for range 64 {
		wg.Go(func() {
			_, err := f.m.Authenticate(ctx, "10.9.9.9", f.user.Email, "guess")
			switch ladle.ErrorCode(err) {
			case CodeInvalidCredentials:
				checked.Add(1)
			case ladle.CodeRateLimited:
				limited.Add(1)
			default:
				t.Errorf("unexpected %v", err)
			}
		})
	}
	wg.Wait()
	if checked.Load() != DefaultMaxFailures || limited.Load() != 64-DefaultMaxFailures {
		t.Fatalf("%d passwords checked, %d refused; want %d checked", checked.Load(), limited.Load(), DefaultMaxFailures)
	}
}

// TestHashSlotsAreBounded: when every hash slot is taken, a sign-in is
// refused at once with Retry-After 1, and costs no budget.
func TestHashSlotsAreBounded(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	if got := defaultSlots(DefaultParams); got != 2 {
		t.Fatalf("default params get %d slots, want 2 (128 MiB / 64 MiB)", got)
	}
	m := New(f.store, WithParams(TestParams), WithClock(f.clock.Now), WithHashConcurrency(2))
	m.slots <- struct{}{}
	m.slots <- struct{}{}
	for range 3 * DefaultMaxFailures {
		_, err := m.Authenticate(ctx, "10.7.0.1", f.user.Email, password)
		if ladle.ErrorCode(err) != ladle.CodeRateLimited || ladle.RetryAfter(err) != 1 {
			t.Fatalf("all slots busy: %v", err)
		}
	}
	if m.HashStats().Busy != 3*DefaultMaxFailures {
		t.Fatalf("stats %+v", m.HashStats())
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			got[mf.GetName()] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
		}
	}
	if got["ladle_login_hash_slots"] != 2 || got["ladle_login_hash_busy_total"] != 3*DefaultMaxFailures || len(got) != 4 {
		t.Fatalf("metrics %v", got)
	}
	<-m.slots
	if _, err := m.Authenticate(ctx, "10.7.0.1", f.user.Email, password); err != nil {
		t.Fatalf("a slot free, budget untouched by busy refusals: %v", err)
	}
}

// TestKnownDeviceIsNotLockedOut: once someone has used up the owner's email
// and the address the owner shares with them, a browser the owner signed in
// from before still signs in; a new browser, or another user's device
// cookie, or a forged one, does not.
func TestKnownDeviceIsNotLockedOut(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	proxies, _ := ParseTrustedProxies("127.0.0.1")
	f.m = New(f.store, WithParams(TestParams), WithClock(f.clock.Now), WithTrustedProxies(proxies), WithSecret([]byte("0123456789abcdef0123456789abcdef")))
	post := func(ip string, cookies ...*http.Cookie) (*httptest.ResponseRecorder, error) {
		r := httptest.NewRequest("POST", "/admin/login", nil)
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("X-Forwarded-For", ip)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		u, err := f.m.AuthenticateRequest(r, f.user.Email, password)
		if err == nil {
			f.m.RememberDevice(w, r, u.ID, u.Email)
		}
		return w, err
	}
	w, err := post("203.0.113.10")
	if err != nil {
		t.Fatal(err)
	}
	var device *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == DeviceCookieName {
			device = c
		}
	}
	if device == nil || !device.HttpOnly || device.MaxAge <= 0 {
		t.Fatalf("no device cookie: %v", w.Result().Cookies())
	}
	// The attacker: the owner's email from many addresses, including the
	// owner's own.
	for i := range 2 * MaxFailuresPerEmail {
		ip := "198.51.100." + strconv.Itoa(i+1)
		if i%3 == 0 {
			ip = "203.0.113.10"
		}
		_, _ = f.m.Authenticate(ctx, ip, f.user.Email, "guess")
	}
	if _, err := post("203.0.113.10"); ladle.ErrorCode(err) != ladle.CodeRateLimited {
		t.Fatalf("a new browser: %v, want rate_limited", err)
	}
	if _, err := post("203.0.113.10", device); err != nil {
		t.Fatalf("the owner's known device: %v", err)
	}
	if _, err := post("198.51.100.1", device); err != nil {
		t.Fatalf("the owner's known device on the attacker's network: %v", err)
	}
	forged := *device
	forged.Value = device.Value[:len(device.Value)-2] + "AA"
	if _, err := post("203.0.113.10", &forged); ladle.ErrorCode(err) != ladle.CodeRateLimited {
		t.Fatalf("a forged device cookie: %v", err)
	}
	other := New(f.store, WithParams(TestParams), WithClock(f.clock.Now), WithSecret([]byte("another secret, another server!!")))
	if other.knownDevice(requestWith(device, false)) != nil {
		t.Fatal("a device cookie verified under another secret")
	}
	// The device's own budget is bounded too.
	for range MaxFailuresPerDevice {
		r := requestWith(device, false)
		_, _ = f.m.AuthenticateRequest(r, f.user.Email, "guess")
	}
	if _, err := post("203.0.113.10", device); ladle.ErrorCode(err) != ladle.CodeRateLimited {
		t.Fatalf("a device past its own budget: %v", err)
	}
	f.clock.Add(DeviceTTL)
	if f.m.knownDevice(requestWith(device, false)) != nil {
		t.Fatal("an expired device cookie is still known")
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.5 ,fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Fatal("bad CIDR accepted")
	}
	cases := []struct {
		peer, xff, want string
	}{
		{"203.0.113.9:1234", "198.51.100.1", "203.0.113.9"},         // untrusted peer: header ignored
		{"10.1.2.3:1234", "198.51.100.1", "198.51.100.1"},           // trusted proxy
		{"10.1.2.3:1234", "6.6.6.6, 198.51.100.1", "198.51.100.1"},  // spoofed left entry ignored
		{"10.1.2.3:1234", "198.51.100.1, 10.9.9.9", "198.51.100.1"}, // through two proxies
		{"10.1.2.3:1234", "garbage, 10.9.9.9", "10.9.9.9"},          // unparsable: last trusted hop
		{"10.1.2.3:1234", "", "10.1.2.3"},                           // no header
		{"[fd00::1]:443", "2001:db8::7", "2001:db8::7"},             // IPv6
		{"192.168.1.5:80", "::ffff:198.51.100.4", "198.51.100.4"},   // mapped
		{"192.168.1.6:80", "198.51.100.4", "192.168.1.6"},           // not in the list
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := proxies.ClientIP(r); got != c.want {
			t.Errorf("peer %s XFF %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.2.3:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := (TrustedProxies{}).ClientIP(r); got != "10.1.2.3" {
		t.Errorf("no trusted proxies: %s", got)
	}
}

// login starts a session and returns the cookie it set.
func (f *fixture) login(t *testing.T, r *http.Request) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if err := f.m.StartSession(w, r, f.user.ID); err != nil {
		t.Fatal(err)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		t.Fatalf("%d cookies set", len(cs))
	}
	return cs[0]
}

func requestWith(c *http.Cookie, tlsOn bool) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/admin/", nil)
	if tlsOn {
		r.TLS = &tls.ConnectionState{}
	}
	if c != nil {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.login(t, requestWith(nil, false))
	if c.Name != CookieName || !c.HttpOnly || c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("plain HTTP cookie: %+v", c)
	}
	if c.MaxAge != int(DefaultSessionTTL/time.Second) {
		t.Fatalf("MaxAge %d", c.MaxAge)
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q is not 32 random bytes", c.Value)
	}
	u, err := f.m.User(requestWith(c, false))
	if err != nil || u.ID != f.user.ID {
		t.Fatalf("User = %v, %v", u, err)
	}
	// Only the SHA-256 is stored: the store knows the hash, not the token.
	sum := sha256.Sum256(raw)
	if _, err := f.store.SessionByTokenHash(t.Context(), sum[:], f.clock.Now()); err != nil {
		t.Fatalf("session not stored under the token's SHA-256: %v", err)
	}
	if _, err := f.store.SessionByTokenHash(t.Context(), raw, f.clock.Now()); err == nil {
		t.Fatal("session found under the raw token")
	}

	// Over TLS the cookie is __Host- prefixed and Secure.
	sc := f.login(t, requestWith(nil, true))
	if sc.Name != SecureCookieName || !sc.Secure || !sc.HttpOnly || sc.Path != "/" || sc.Domain != "" {
		t.Fatalf("TLS cookie: %+v", sc)
	}
	if _, err := f.m.User(requestWith(sc, true)); err != nil {
		t.Fatal(err)
	}
	// Over TLS a plain-named cookie (settable by anyone on plain HTTP or a
	// sibling domain) is not accepted.
	if _, err := f.m.User(requestWith(c, true)); !IsUnauthorized(err) {
		t.Fatalf("plain cookie accepted over TLS: %v", err)
	}

	// WithSecureCookies forces the secure cookie behind a TLS proxy.
	m2 := New(f.store, WithParams(TestParams), WithClock(f.clock.Now), WithSecureCookies(true))
	w := httptest.NewRecorder()
	if err := m2.StartSession(w, requestWith(nil, false), f.user.ID); err != nil {
		t.Fatal(err)
	}
	if pc := w.Result().Cookies()[0]; pc.Name != SecureCookieName || !pc.Secure {
		t.Fatalf("forced secure cookie: %+v", pc)
	}
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.login(t, requestWith(nil, false))
	f.clock.Add(DefaultSessionTTL - time.Minute)
	if _, err := f.m.User(requestWith(c, false)); err != nil {
		t.Fatalf("session expired early: %v", err)
	}
	f.clock.Add(time.Minute)
	if _, err := f.m.User(requestWith(c, false)); !IsUnauthorized(err) {
		t.Fatalf("session alive after %v: %v", DefaultSessionTTL, err)
	}
}

func TestEndSession(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c := f.login(t, requestWith(nil, false))
	w := httptest.NewRecorder()
	if err := f.m.EndSession(w, requestWith(c, false)); err != nil {
		t.Fatal(err)
	}
	cleared := w.Result().Cookies()
	if len(cleared) != 1 || cleared[0].Name != CookieName || cleared[0].MaxAge >= 0 || cleared[0].Value != "" {
		t.Fatalf("cookie not cleared: %+v", cleared)
	}
	// The session is gone from the store: the old cookie no longer works
	// even if the browser kept it.
	if _, err := f.m.User(requestWith(c, false)); !IsUnauthorized(err) {
		t.Fatalf("session survived logout: %v", err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(c.Value)
	sum := sha256.Sum256(raw)
	if _, err := f.store.SessionByTokenHash(t.Context(), sum[:], f.clock.Now()); ladle.ErrorKind(err) != ladle.KindNotFound {
		t.Fatalf("session row still there: %v", err)
	}
}

func TestLoginReplacesTheOldSession(t *testing.T) {
	t.Parallel()
	f := setup(t)
	old := f.login(t, requestWith(nil, false))
	fresh := f.login(t, requestWith(old, false))
	if fresh.Value == old.Value {
		t.Fatal("login kept the old token")
	}
	if _, err := f.m.User(requestWith(old, false)); !IsUnauthorized(err) {
		t.Fatalf("old session still valid: %v", err)
	}
}

func TestUserWithBadCookies(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, v := range []string{"", "garbage", base64.RawURLEncoding.EncodeToString(make([]byte, 32)), "a.b.c"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: v})
		if _, err := f.m.User(r); !IsUnauthorized(err) {
			t.Errorf("cookie %q: %v", v, err)
		}
	}
	if _, err := f.m.User(httptest.NewRequest(http.MethodGet, "/", nil)); !IsUnauthorized(err) {
		t.Errorf("no cookie: %v", err)
	}
}

func TestCrossOrigin(t *testing.T) {
	t.Parallel()
	c, err := CrossOrigin([]string{"https://admin.example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, tc := range []struct {
		method string
		hdr    map[string]string
		want   int
	}{
		{"POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"POST", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"POST", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"POST", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusNoContent},
		{"POST", map[string]string{"Origin": "https://admin.example.com", "Sec-Fetch-Site": "cross-site"}, http.StatusNoContent},
		{"POST", nil, http.StatusNoContent}, // not a browser
		{"GET", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusNoContent},
	} {
		r := httptest.NewRequest(tc.method, "http://ladle.example/admin/logout", nil)
		for k, v := range tc.hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %v: %d, want %d", tc.method, tc.hdr, w.Code, tc.want)
		}
	}
	if _, err := CrossOrigin([]string{"not a url"}, nil); err == nil {
		t.Error("a malformed trusted origin was accepted")
	}
}
