// Package readpos carries read-your-writes across a read replica: the
// PostgreSQL store notes the primary's WAL position after a write made for a
// request, a signed cookie brings it back with that client's next requests,
// and reads that may go to the replica go there only once the replica has
// replayed up to it (sqlstore's replica routing).
//
// Why a WAL position rather than "use the primary for N seconds after a
// write": the position is exact. A replica that is 50 ms behind serves the
// editor again 50 ms after the edit, and one that is a minute behind (a long
// query holding replay, a network hiccup) never shows the editor an older
// menu than the one they saved, however long the window would have been.
// Its cost is one extra statement after each write made for such a request
// (pg_current_wal_insert_lsn()) and, while the replica has not yet been seen
// that far, one more to read its replay position.
package readpos

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// Pos is a PostgreSQL WAL position (pg_lsn); 0 is none.
type Pos uint64

// Parse reads the text form of a pg_lsn, "16/B374D848".
func Parse(s string) (Pos, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("readpos: %q is not a WAL position", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("readpos: %q is not a WAL position", s)
	}
	return Pos(h<<32 | l), nil
}

// String is the pg_lsn text form.
func (p Pos) String() string { return fmt.Sprintf("%X/%X", uint64(p)>>32, uint64(p)&0xFFFFFFFF) }

type posKey struct{}
type recKey struct{}

// With returns ctx asking reads to see at least position p.
func With(ctx context.Context, p Pos) context.Context {
	if p == 0 {
		return ctx
	}
	return context.WithValue(ctx, posKey{}, p)
}

// From returns the position reads under ctx must see (0: any replica
// state will do).
func From(ctx context.Context) Pos {
	p, _ := ctx.Value(posKey{}).(Pos)
	return p
}

// Recorder collects the position of the writes made under a context.
type Recorder struct{ p atomic.Uint64 }

// Note records that a write committed at or before p.
func (r *Recorder) Note(p Pos) {
	for {
		old := r.p.Load()
		if uint64(p) <= old || r.p.CompareAndSwap(old, uint64(p)) {
			return
		}
	}
}

// Pos is the highest position noted (0: no write).
func (r *Recorder) Pos() Pos { return Pos(r.p.Load()) }

// Record returns ctx with a Recorder that the store notes its writes on.
func Record(ctx context.Context) (context.Context, *Recorder) {
	r := &Recorder{}
	return context.WithValue(ctx, recKey{}, r), r
}

// RecorderFrom returns ctx's Recorder, or nil: a store notes positions
// only for requests that ask for it.
func RecorderFrom(ctx context.Context) *Recorder {
	r, _ := ctx.Value(recKey{}).(*Recorder)
	return r
}

// CookieName is the cookie that carries a client's last write position.
const CookieName = "ladle_rp"

// CookieMaxAge bounds how long a client waits for the replica to reach its
// own write: past it, a replica that is still behind is far past any lag
// sqlstore tolerates, and reads have gone to the primary anyway.
const CookieMaxAge = 300

// Middleware brings a client's write position into every request's
// context (With) from its cookie, and for state-changing requests records
// the writes they make (Record) and sets the cookie on the response. The
// cookie is signed with key (HMAC-SHA256): a client cannot invent a
// position, which would send its reads to the primary and past the menu
// cache. It is not a credential and names nothing but a WAL position.
func Middleware(key []byte, secure bool, next http.Handler) http.Handler {
	mk := hmac.New(sha256.New, key)
	mk.Write([]byte("ladle/readpos/v1"))
	k := mk.Sum(nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if c, err := r.Cookie(CookieName); err == nil {
			if p, ok := verify(k, c.Value); ok {
				ctx = With(ctx, p)
			}
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		ctx, rec := Record(ctx)
		next.ServeHTTP(&cookieWriter{ResponseWriter: w, rec: rec, key: k, secure: secure}, r.WithContext(ctx))
	})
}

func sign(key []byte, p Pos) string {
	v := p.String()
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(v))
	return v + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

func verify(key []byte, s string) (Pos, bool) {
	v, sig, ok := strings.Cut(s, ".")
	if !ok {
		return 0, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return 0, false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(v))
	if !hmac.Equal(got, mac.Sum(nil)[:16]) {
		return 0, false
	}
	p, err := Parse(v)
	return p, err == nil
}

// cookieWriter sets the cookie when the handler starts its response: by
// then the writes it made for the request have committed.
type cookieWriter struct {
	http.ResponseWriter
	rec    *Recorder
	key    []byte
	secure bool
	done   bool
}

func (w *cookieWriter) WriteHeader(code int) {
	if !w.done {
		w.done = true
		if p := w.rec.Pos(); p != 0 {
			http.SetCookie(w.ResponseWriter, &http.Cookie{Name: CookieName, Value: sign(w.key, p), Path: "/",
				MaxAge: CookieMaxAge, HttpOnly: true, Secure: w.secure, SameSite: http.SameSiteLaxMode})
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *cookieWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *cookieWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
