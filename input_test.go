package ladle_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ladle-dev/ladle"
)

func TestCheckText(t *testing.T) {
	cases := []struct {
		s    string
		rule ladle.TextRule
		ok   bool
	}{
		{"Ada Lovelace", ladle.NameText, true},
		{"Zoë Ødegård 王小明 محمد", ladle.NameText, true},
		{"👩‍🍳 chef", ladle.NameText, true}, // ZWJ sequences stay
		{"Ada\x00", ladle.NameText, false},
		{"Ada\x07", ladle.NameText, false},
		{"Ada\u0085", ladle.NameText, false}, // C1 (NEL)
		{"Ada\x7f", ladle.NameText, false},
		{"Ada\r\nBcc: x@example.com", ladle.NameText, false},
		{"Ada\nLovelace", ladle.NameText, false},
		{"Ada\u2028", ladle.NameText, false},
		{"Ada\tLovelace", ladle.NameText, false},
		{"\u202eecalevoL adA", ladle.NameText, false},
		{"Ada\u2066x\u2069", ladle.NameText, false},
		{"Ada\u200f", ladle.NameText, false},
		{"Ada\u061c", ladle.NameText, false},
		{"\ufeffAda", ladle.NameText, false},
		{"Ada\xff", ladle.NameText, false},
		{"Ada\xc3\x28", ladle.NameText, false},
		{"Ada\xed\xa0\x80", ladle.NameText, false}, // an encoded surrogate
		{"Ada\xc0\xaf", ladle.NameText, false},     // overlong "/"
		{"Ada \ufffd", ladle.NameText, true},       // sent as such: kept
		{strings.Repeat("é", ladle.MaxNameLen), ladle.NameText, true},
		{strings.Repeat("é", ladle.MaxNameLen+1), ladle.NameText, false},
		{"no onions\nextra crispy", ladle.NoteText, true},
		{"no onions\r\nextra crispy", ladle.NoteText, false},
		{"no onions\rextra", ladle.NoteText, false},
		{"no onions\x00", ladle.NoteText, false},
		{"tok_visa", ladle.TokenText, true},
		{"tok_visä", ladle.TokenText, false},
		{"tok visa\x00", ladle.TokenText, false},
	}
	for _, c := range cases {
		if got := ladle.CheckText(c.s, c.rule); (got == "") != c.ok {
			t.Errorf("CheckText(%q, %+v) = %q, want ok=%v", c.s, c.rule, got, c.ok)
		}
	}
}

func TestEmail(t *testing.T) {
	cases := []struct {
		in, norm string
		ok       bool
	}{
		{" Ada@Example.COM ", "ada@example.com", true},
		{"ada.lovelace+orders@mail.example.co.uk", "ada.lovelace+orders@mail.example.co.uk", true},
		{"ada@bücher.de", "ada@xn--bcher-kva.de", true},
		{"ada@xn--bcher-kva.de", "ada@xn--bcher-kva.de", true},
		{"ada@example", "ada@example", false},
		{"ada@localhost", "ada@localhost", false},
		{"ada@example.", "ada@example.", false},
		{"ada@.example.com", "ada@.example.com", false},
		{"ada@exa_mple.com", "ada@exa_mple.com", false},
		{"ada@-example.com", "ada@-example.com", false},
		{"ada@1.2.3.4", "ada@1.2.3.4", false},
		{"ada@[127.0.0.1]", "ada@[127.0.0.1]", false},
		{"ada lovelace@example.com", "ada lovelace@example.com", false},
		{"ada@exam ple.com", "ada@exam ple.com", false},
		{`"ada"@example.com`, `"ada"@example.com`, false},
		{"ada..l@example.com", "ada..l@example.com", false},
		{".ada@example.com", ".ada@example.com", false},
		{"adä@example.com", "adä@example.com", false},
		{"ada\ufffd@example.com", "ada\ufffd@example.com", false},
		{"ada\x00@example.com", "ada\x00@example.com", false},
		{"ada@example.com\r\nBcc: x@example.com", "ada@example.com\r\nbcc: x@example.com", false},
		{"ada", "ada", false},
		{"@example.com", "@example.com", false},
		{"ada@xn--zz.com", "ada@xn--zz.com", false}, // bad punycode
		{strings.Repeat("a", 65) + "@example.com", strings.Repeat("a", 65) + "@example.com", false},
		{"a@" + strings.Repeat("b", 250) + ".com", "a@" + strings.Repeat("b", 250) + ".com", false},
	}
	for _, c := range cases {
		n := ladle.NormalizeEmail(c.in)
		if n != c.norm {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", c.in, n, c.norm)
		}
		if got := ladle.CheckEmail(n); (got == "") != c.ok {
			t.Errorf("CheckEmail(%q) = %q, want ok=%v", n, got, c.ok)
		}
	}
}

func TestCheckIdempotencyKey(t *testing.T) {
	if err := ladle.CheckIdempotencyKey(""); ladle.ErrorCode(err) != ladle.CodeIdempotencyKeyMissing {
		t.Fatalf("empty: %v", err)
	}
	for _, k := range []string{"a", "order-1 retry 2", `"sf-string"`, "~!@#$%^&*()", strings.Repeat("k", 255)} {
		if err := ladle.CheckIdempotencyKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []string{"clé", "\xff", "a\tb", "a\x00b", "a\x7fb", strings.Repeat("k", 256)} {
		err := ladle.CheckIdempotencyKey(k)
		if ladle.ErrorKind(err) != ladle.KindInvalid || ladle.ErrorCode(err) != ladle.CodeValidation {
			t.Errorf("%q: %v", k, err)
		}
	}
}

func TestCheckJSONText(t *testing.T) {
	cases := []struct {
		raw  string
		path string
		ok   bool
	}{
		{`{"customer":{"name":"Ada","email":"a@example.com"},"lines":[{"note":"x"}]}`, "", true},
		{`{"customer":{"name":"Ad\ud83d\ude00a"}}`, "", true}, // a paired surrogate (😀)
		{`{"customer":{"name":"\ufffd"}}`, "", true},
		{"{\"customer\":{\"name\":\"Ada\xff\"}}", "customer.name", false},
		{`{"customer":{"name":"Ada","email":"a\ud800@example.com"}}`, "customer.email", false},
		{`{"customer":{"name":"Ada\udc00"}}`, "customer.name", false},
		{`{"customer":{"name":"Ada\ud800\u0041"}}`, "customer.name", false},
		{`{"lines":[{"note":"ok"},{"item_id":1,"note":"bad\ud800"}]}`, "lines[1].note", false},
		{"{\"lines\":[{\"note\":\"ok\"},{\"modifier_ids\":[1,2],\"note\":\"\xc3\x28\"}]}", "lines[1].note", false},
		{"{\"coupon_code\":\"\xed\xa0\x80\"}", "coupon_code", false},
		{"{\"payment\":{\"method\":\"card\",\"token\":\"\xc0\xaf\"}}", "payment.token", false},
		{"{\"a\\\"b\":{\"x\\\\\":[\"\",\"\xff\"]}}", `a"b.x\[1]`, false},
		{"\"\xff\"", "", false},
	}
	for _, c := range cases {
		path, ok := ladle.CheckJSONText([]byte(c.raw))
		if ok != c.ok || path != c.path {
			t.Errorf("CheckJSONText(%q) = %q, %v; want %q, %v", c.raw, path, ok, c.path, c.ok)
		}
	}
}

func TestValidateRefusesHostileText(t *testing.T) {
	good := func() *ladle.OrderRequest {
		return request(ladle.LineRequest{ItemID: 3, Quantity: 1, Note: "no sugar\nplease"})
	}
	if errs := good().Validate(now); len(errs) != 0 {
		t.Fatalf("valid request refused: %v", errs)
	}
	cases := []struct {
		field string
		edit  func(r *ladle.OrderRequest)
	}{
		{"customer.name", func(r *ladle.OrderRequest) { r.Customer.Name = "Ada\x00" }},
		{"customer.name", func(r *ladle.OrderRequest) { r.Customer.Name = "Ada\r\nX" }},
		{"customer.name", func(r *ladle.OrderRequest) { r.Customer.Name = "\u202eAda" }},
		{"customer.email", func(r *ladle.OrderRequest) { r.Customer.Email = "ada@example" }},
		{"customer.phone", func(r *ladle.OrderRequest) { r.Customer.Phone = "555\x000100" }},
		{"lines[0].note", func(r *ladle.OrderRequest) { r.Lines[0].Note = "a\x00" }},
		{"lines[0].note", func(r *ladle.OrderRequest) { r.Lines[0].Note = "a\r\nb" }},
		{"coupon_code", func(r *ladle.OrderRequest) { r.CouponCode = "SAVE\x0010" }},
		{"coupon_code", func(r *ladle.OrderRequest) { r.CouponCode = "save\xc3\x2810" }}, // not upper-cased into U+FFFD
		{"customer.email", func(r *ladle.OrderRequest) { r.Customer.Email = "ADA\xc0\xaf@example.com" }},
		{"payment.token", func(r *ladle.OrderRequest) { r.Payment = ladle.PaymentInput{Method: "card", Token: "tok\x00"} }},
		{"tip", func(r *ladle.OrderRequest) { r.Tip = ladle.MaxTip + 1 }},
	}
	for _, c := range cases {
		r := good()
		c.edit(r)
		r.Normalize()
		if errs := r.Validate(now); errs[c.field] == "" {
			t.Errorf("%s: not refused (%v)", c.field, errs)
		}
	}
}

func TestPriceCapsTipAtSubtotal(t *testing.T) {
	r := request(ladle.LineRequest{ItemID: 3, Quantity: 1}) // Tea 3.00
	r.Tip = 300
	if _, err := ladle.Price(menu(), restaurant, r, nil, now); err != nil {
		t.Fatalf("a 100%% tip: %v", err)
	}
	r.Tip = 301
	_, err := ladle.Price(menu(), restaurant, r, nil, now)
	var e *ladle.Error
	if ladle.ErrorCode(err) != ladle.CodeValidation || !asError(err, &e) || e.Fields["tip"] == "" {
		t.Fatalf("tip over the subtotal: %v", err)
	}
}

func asError(err error, e **ladle.Error) bool { return errors.As(err, e) }
