package httpapi

import (
	"testing"
	"time"

	"github.com/ladle-dev/ladle"
)

// FuzzOrderRequest fuzzes the order decoder and validator, the code every
// byte of an order POST goes through before anything is stored. The seed
// corpus in testdata/fuzz/FuzzOrderRequest (every hostile case of issue 8)
// is replayed by every `go test`; `go test -fuzz=FuzzOrderRequest
// ./internal/httpapi` explores from it. Properties:
//
//   - a refusal is always a 4xx *ladle.Error (never internal, never a panic);
//   - an accepted request holds only text the input policy allows, in every
//     field, and its body had no invalid UTF-8 anywhere;
//   - Normalize is idempotent, so Hash (the idempotency check) is stable.
func FuzzOrderRequest(f *testing.F) {
	f.Add([]byte(`{"customer":{"name":"Ada","email":"ada@example.com","phone":"+1 555 010 0199"},` +
		`"fulfillment":{"type":"pickup","time":"asap"},"lines":[{"item_id":1,"quantity":2,"modifier_ids":[3,2],"note":"no\nonions"}],` +
		`"coupon_code":"save10","tip":100,"payment":{"method":"card","token":"tok_visa"}}`))
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ladle.OrderRequest
		if err := decodeJSON(body, &req); err != nil {
			if k := ladle.ErrorKind(err); k != ladle.KindInvalid {
				t.Fatalf("decode refused with kind %d: %v", k, err)
			}
			return
		}
		req.Normalize()
		if fields := req.Validate(now); len(fields) > 0 {
			return
		}
		if _, ok := ladle.CheckJSONText(body); !ok {
			t.Fatalf("accepted a body with invalid UTF-8: %q", body)
		}
		check := func(field, s string, rule ladle.TextRule) {
			if msg := ladle.CheckText(s, rule); msg != "" {
				t.Fatalf("accepted %s %q: %s", field, s, msg)
			}
		}
		check("name", req.Customer.Name, ladle.NameText)
		check("phone", req.Customer.Phone, ladle.TextRule{ASCII: true})
		check("coupon", req.CouponCode, ladle.CodeText)
		check("token", req.Payment.Token, ladle.TokenText)
		for _, l := range req.Lines {
			check("note", l.Note, ladle.NoteText)
		}
		if msg := ladle.CheckEmail(req.Customer.Email); msg != "" {
			t.Fatalf("accepted email %q: %s", req.Customer.Email, msg)
		}
		if req.Tip < 0 || req.Tip > ladle.MaxTip {
			t.Fatalf("accepted tip %d", req.Tip)
		}
		h := req.Hash()
		again := req
		again.Normalize()
		if again.Hash() != h {
			t.Fatalf("Normalize is not idempotent: %+v → %+v", req, again)
		}
	})
}
