package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
	"github.com/ladle-dev/ladle/internal/payment"
	"github.com/ladle-dev/ladle/internal/payment/paymenttest"
)

// hostileCase is one request that must be refused: body with a placeholder
// (@@) replaced by raw bytes, or a bad key.
type hostileCase struct {
	name  string
	body  []byte
	key   string // "" → a fresh valid key
	field string // the field the problem must name
	// fixable: after the refusal, the same key with a valid body places the
	// order (the refusal left nothing behind under the key).
	fixable bool
}

// hostileCases lists every case of issue 8's hostile-input review, in every
// text field: NUL, invalid UTF-8 (FF, C3 28, ED A0 80, C0 AF, a lone
// surrogate escape), CR/LF, bidi controls and BOM, an address without a
// dotted domain, bad Idempotency-Keys and a tip of 99,999.99 on a 4.50 item.
func hostileCases(t *testing.T, b *bundle, pretzel *ladle.Item) []hostileCase {
	t.Helper()
	// base builds a valid card order of one pretzel (4.50) with the text of
	// one field replaced by the marker @@, into which raw bytes go.
	base := func(field string) []byte {
		r := map[string]any{
			"customer":    map[string]any{"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+1 555 010 0199"},
			"fulfillment": map[string]any{"type": "pickup", "time": "asap"},
			"lines":       []any{map[string]any{"item_id": pretzel.ID, "quantity": 1, "note": "warm, please"}},
			"coupon_code": "SAVE10",
			"payment":     map[string]any{"method": "card", "token": payment.TokenVisa},
		}
		// The marker goes inside the value: leading and trailing white
		// space (NEL and U+2028 included) is trimmed, harmlessly.
		set := func(m map[string]any, k string) { v := m[k].(string); m[k] = v[:1] + "@@" + v[1:] }
		switch field {
		case "customer.name":
			set(r["customer"].(map[string]any), "name")
		case "customer.email":
			r["customer"].(map[string]any)["email"] = "ada@@@example.com"
		case "customer.phone":
			set(r["customer"].(map[string]any), "phone")
		case "lines[0].note":
			set(r["lines"].([]any)[0].(map[string]any), "note")
		case "coupon_code":
			set(r, "coupon_code")
		case "payment.token":
			set(r["payment"].(map[string]any), "token")
		case "fulfillment.time":
			set(r["fulfillment"].(map[string]any), "time")
		case "payment.method":
			set(r["payment"].(map[string]any), "method")
		}
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	with := func(field, insert string) []byte {
		return bytes.Replace(base(field), []byte("@@"), []byte(insert), 1)
	}
	var cases []hostileCase
	add := func(name, field string, body []byte) {
		cases = append(cases, hostileCase{name: name, body: body, field: field, fixable: true})
	}
	textFields := []string{"customer.name", "customer.email", "customer.phone", "lines[0].note",
		"coupon_code", "payment.token", "fulfillment.time", "payment.method"}
	invalid := []struct{ name, raw string }{
		{"FF", "\xff"}, {"C3 28", "\xc3\x28"}, {"ED A0 80", "\xed\xa0\x80"}, {"C0 AF", "\xc0\xaf"},
		{`\ud800`, `\ud800`}, {`\udfff`, `\udfff`}, {`\ud800\u0041`, `\ud800\u0041`},
	}
	for _, f := range textFields {
		for _, bad := range invalid {
			add("invalid UTF-8 "+bad.name+" in "+f, f, with(f, bad.raw))
		}
		add("NUL in "+f, f, with(f, `\u0000`))
		add("C1 control in "+f, f, with(f, `\u0085`))
	}
	for _, f := range []string{"customer.name", "customer.email", "customer.phone", "coupon_code", "payment.token"} {
		add("CRLF in "+f, f, with(f, `\r\nBcc: eve@example.com`))
		add("LF in "+f, f, with(f, `\nX`))
	}
	add("CRLF in lines[0].note", "lines[0].note", with("lines[0].note", `\r\nX`))
	add("CR in lines[0].note", "lines[0].note", with("lines[0].note", `\rX`))
	for _, bidi := range []string{`\u202e`, `\u202a`, `\u2066`, `\u2069`, `\u200e`, `\u200f`, `\u061c`, `\ufeff`} {
		add("bidi/BOM "+bidi+" in customer.name", "customer.name", with("customer.name", bidi))
		add("bidi/BOM "+bidi+" in lines[0].note", "lines[0].note", with("lines[0].note", bidi))
	}
	add("U+2028 in customer.name", "customer.name", with("customer.name", `\u2028`))
	add("name over 100 characters", "customer.name", with("customer.name", strings.Repeat("é", 100)))
	for _, email := range []string{"ada@example", "ada@localhost", "ada @example.com", "ada@exam ple.com", "ada@example..com", `\"ada\"@example.com`, "ada@[127.0.0.1]"} {
		add("email "+email, "customer.email", bytes.Replace(base(""), []byte("ada@example.com"), []byte(email), 1))
	}
	add("tip 99,999.99 on a 4.50 item", "tip", bytes.Replace(base(""), []byte(`"coupon_code"`), []byte(`"tip":9999999,"coupon_code"`), 1))
	add("tip 4.51 on a 4.50 item", "tip", bytes.Replace(base(""), []byte(`"coupon_code"`), []byte(`"tip":451,"coupon_code"`), 1))
	add("negative tip", "tip", bytes.Replace(base(""), []byte(`"coupon_code"`), []byte(`"tip":-1,"coupon_code"`), 1))
	for _, key := range []string{"clé", "\xff", "key\xffkey", "tab\there", strings.Repeat("k", 256)} {
		cases = append(cases, hostileCase{name: fmt.Sprintf("key %q", key), body: base(""), key: key, field: "Idempotency-Key"})
	}
	return cases
}

// TestHostileInput sends every hostile case through the real HTTP API on
// both databases: each is a 4xx problem document naming the field, none is a
// 5xx, no order is created, and each key still places its order once the
// body is fixed.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		pretzel := &ladle.Item{RestaurantID: b.fix.Restaurant.ID, CategoryID: b.fix.Sides.ID, Name: "Pretzel", Price: 450, Available: true}
		if err := b.store.CreateItem(context.Background(), pretzel); err != nil {
			t.Fatal(err)
		}
		cases := hostileCases(t, b, pretzel)
		for i, c := range cases {
			key := c.key
			if key == "" {
				key = fmt.Sprintf("hostile-%d", i)
			}
			r := b.post(t, key, c.body)
			if r.status < 400 || r.status >= 500 {
				t.Errorf("%s: status %d, want 4xx: %s", c.name, r.status, r.body)
				continue
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("%s: content type %q: %s", c.name, ct, r.body)
				continue
			}
			p := r.json(t)
			errs, _ := p["errors"].(map[string]any)
			if p["code"] != ladle.CodeValidation || errs[c.field] == nil {
				t.Errorf("%s: want validation_failed naming %s, got %s", c.name, c.field, r.body)
			}
		}
		if n := b.orderCount(t); n != 0 {
			t.Fatalf("hostile input created %d orders", n)
		}
		if n := paymenttest.Charges(t, b.payments); n != 0 {
			t.Fatalf("hostile input made %d charges", n)
		}
		// Fixed bodies under the same keys: each places its order. Each
		// guest is another email, so none is a possible duplicate.
		placed := 0
		for i, c := range cases {
			if !c.fixable {
				continue
			}
			fixed := fmt.Sprintf(`{"customer":{"name":"Guest %d","email":"guest-%d@example.com"},
				"fulfillment":{"type":"pickup","time":"asap"},"lines":[{"item_id":%d,"quantity":1,"note":"two\nlines"}],
				"tip":450,"payment":{"method":"card","token":%q}}`, i, i, pretzel.ID, payment.TokenVisa)
			r := b.post(t, fmt.Sprintf("hostile-%d", i), fixed)
			if r.status != http.StatusCreated {
				t.Errorf("%s: the key did not work with a fixed body: %d %s", c.name, r.status, r.body)
				continue
			}
			placed++
		}
		if n := b.orderCount(t); n != placed {
			t.Fatalf("%d orders after %d fixed requests", n, placed)
		}
		t.Logf("%d hostile requests refused, %d keys reused with a fixed body", len(cases), placed)

		// Hostile text in the path and the query: 4xx, never 5xx.
		for _, path := range []string{
			"/api/v1/restaurants/%00/orders", "/api/v1/restaurants/%FF/orders", "/api/v1/restaurants/a%0Db/menu",
			"/api/v1/orders/%00?token=%00", "/api/v1/orders/%FF?token=%FF", "/api/v1/orders/" + strings.Repeat("x", 4000),
		} {
			method := "GET"
			if strings.HasSuffix(path, "/orders") {
				method = "POST"
			}
			req, _ := http.NewRequest(method, b.url(path), strings.NewReader(`{}`))
			req.Header.Set("Idempotency-Key", "path-test")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, body)
			}
		}
	})
}

// TestKeyWithControlCharacters documents the one refusal that is not a
// problem document: Go's HTTP server refuses a header value with a control
// character (other than tab) while it reads the request, before any handler
// runs, with a plain-text 400. Nothing of Ladle's sees the request, so
// nothing is claimed or created.
func TestKeyWithControlCharacters(t *testing.T) {
	t.Parallel()
	b := setup(t, "sqlite:"+t.TempDir()+"/ladle.db")
	body, _ := json.Marshal(b.fix.Request())
	for _, key := range []string{"a\x00b", "a\x01b", "a\x7fb", "a\rb"} {
		conn, err := net.DialTimeout("tcp", b.srv.Listener.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "POST /api/v1/restaurants/%s/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Idempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s", b.fix.Restaurant.Slug, key, len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: %v", key, err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("key %q: %d", key, resp.StatusCode)
		}
	}
	if n := b.orderCount(t); n != 0 {
		t.Fatalf("%d orders", n)
	}
}
