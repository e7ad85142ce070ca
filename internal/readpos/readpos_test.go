package readpos

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestParse(t *testing.T) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		p, err := Parse(s)
		if err != nil || p.String() != s {
			t.Errorf("Parse(%q) = %v, %v; String %q", s, p, err, p.String())
		}
	}
	for _, s := range []string{"", "16", "x/1", "1/", "100000000/0", "1/2/3"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) took it", s)
		}
	}
}

// TestMiddleware: a write's position comes back as a signed cookie, and
// only a cookie the server signed reaches the context.
func TestMiddleware(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	var seen Pos
	h := Middleware(key, false, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = From(r.Context())
		if rec := RecorderFrom(r.Context()); rec != nil && r.URL.Path == "/write" {
			rec.Note(0x16_0000_0010)
			rec.Note(0x16_0000_0001) // lower: ignored
		}
		w.WriteHeader(http.StatusSeeOther)
	}))
	do := func(method, path string, cookies ...*http.Cookie) *http.Response {
		req := httptest.NewRequest(method, path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Result()
	}
	if r := do(http.MethodPost, "/nothing"); len(r.Cookies()) != 0 {
		t.Fatalf("a request that wrote nothing set %v", r.Cookies())
	}
	r := do(http.MethodPost, "/write")
	if len(r.Cookies()) != 1 || r.Cookies()[0].Name != CookieName {
		t.Fatalf("a write set %v", r.Cookies())
	}
	c := r.Cookies()[0]
	do(http.MethodGet, "/", c)
	if seen != 0x16_0000_0010 {
		t.Fatalf("the signed cookie brought %v", seen)
	}
	forged := &http.Cookie{Name: CookieName, Value: "FF/0" + c.Value[len("16/10"):]}
	do(http.MethodGet, "/", forged)
	if seen != 0 {
		t.Fatalf("a forged cookie brought %v", seen)
	}
	do(http.MethodGet, "/", &http.Cookie{Name: CookieName, Value: "FF/0"})
	if seen != 0 {
		t.Fatalf("an unsigned cookie brought %v", seen)
	}
}
