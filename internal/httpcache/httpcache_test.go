package httpcache_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle/internal/httpcache"
)

func TestETag(t *testing.T) {
	t.Parallel()
	if got := httpcache.ETag("menu", "v7"); got != `"menu-v7"` {
		t.Errorf("ETag = %s", got)
	}
	if got := httpcache.ETag(`a"b c`, "é"); got != `"a_b_c-__"` {
		t.Errorf("ETag with bad characters = %s", got)
	}
	if got := httpcache.VersionETag("menu", 3, 12); got != `"menu-3-v12"` {
		t.Errorf("VersionETag = %s", got)
	}
}

func TestNoneMatch(t *testing.T) {
	t.Parallel()
	const tag = `"menu-3-v12"`
	for _, c := range []struct {
		header string
		want   bool
	}{
		{`"menu-3-v12"`, true},
		{`W/"menu-3-v12"`, true}, // weak comparison
		{`"menu-3-v11", "menu-3-v12"`, true},
		{`"x",W/"menu-3-v12"`, true},
		{`  "x" ,  "menu-3-v12"  `, true},
		{`*`, true},
		{`"menu-3-v11"`, false},
		{`"menu-3-v1"`, false},
		{`menu-3-v12`, false}, // unquoted: malformed
		{`"menu-3-v12`, false},
		{``, false},
		{`"a,b", "menu-3-v12"`, true}, // a comma inside a tag is part of it
		{`"x", garbage, "menu-3-v12"`, false},
	} {
		if got := httpcache.NoneMatch(c.header, tag); got != c.want {
			t.Errorf("NoneMatch(%q) = %v, want %v", c.header, got, c.want)
		}
	}
	if !httpcache.NoneMatch(`"v1"`, `W/"v1"`) {
		t.Error("a weak current tag should match its strong twin")
	}
}

func TestServe(t *testing.T) {
	t.Parallel()
	body := []byte(`{"menu":1}`)
	const tag = `"menu-1-v4"`
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpcache.ServeJSONVersioned(w, r, tag, 5*time.Second, time.Minute, body)
	})
	do := func(method string, header ...string) *http.Response {
		r := httptest.NewRequest(method, "/menu", nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Add(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result()
	}

	res := do("GET")
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(got) != string(body) {
		t.Fatalf("GET = %d %q", res.StatusCode, got)
	}
	if res.Header.Get("ETag") != tag || res.Header.Get("Cache-Control") != "public, max-age=5, stale-while-revalidate=60" ||
		res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Content-Length") != "10" {
		t.Errorf("GET headers = %v", res.Header)
	}

	res = do("GET", "If-None-Match", `"menu-1-v3", W/"menu-1-v4"`)
	got, _ = io.ReadAll(res.Body)
	if res.StatusCode != 304 || len(got) != 0 {
		t.Fatalf("conditional GET = %d %q, want 304 and no body", res.StatusCode, got)
	}
	if res.Header.Get("ETag") != tag || !strings.HasPrefix(res.Header.Get("Cache-Control"), "public, max-age=5") {
		t.Errorf("304 must carry ETag and Cache-Control: %v", res.Header)
	}

	// The header may also come as two lines.
	if res = do("GET", "If-None-Match", `"x"`, "If-None-Match", tag); res.StatusCode != 304 {
		t.Errorf("split If-None-Match = %d, want 304", res.StatusCode)
	}
	if res = do("GET", "If-None-Match", `"menu-1-v3"`); res.StatusCode != 200 {
		t.Errorf("stale If-None-Match = %d, want 200", res.StatusCode)
	}
	res = do("HEAD")
	got, _ = io.ReadAll(res.Body)
	if res.StatusCode != 200 || len(got) != 0 || res.Header.Get("Content-Length") != "10" {
		t.Errorf("HEAD = %d %q %v", res.StatusCode, got, res.Header)
	}
	if res = do("POST", "If-None-Match", tag); res.StatusCode != 200 {
		t.Errorf("POST with If-None-Match = %d: only GET and HEAD get 304", res.StatusCode)
	}
}

func TestPublic(t *testing.T) {
	t.Parallel()
	if got := httpcache.Public(0, 0); got != "public, max-age=0" {
		t.Errorf("Public(0,0) = %s", got)
	}
	if httpcache.MenuPolicy != "public, max-age=5, stale-while-revalidate=60" {
		t.Errorf("MenuPolicy = %s", httpcache.MenuPolicy)
	}
	if httpcache.Immutable != "public, max-age=31536000, immutable" {
		t.Errorf("Immutable = %s", httpcache.Immutable)
	}
}
