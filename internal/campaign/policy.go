package campaign

import (
	"time"

	"github.com/ladle-dev/ladle"
)

// customerPolicy checks a customer's contact details with exactly the
// checks a guest's get at checkout: the row becomes the customer part of an
// order request, which is normalized and validated by ladle.OrderRequest
// (the root package's input policy: ladle.NormalizeEmail and CheckEmail,
// CheckText with NameText, the phone rule). It returns the normalized
// values, or the first problem as "field message".
func customerPolicy(email, name, phone string) (ladle.CustomerInput, string) {
	req := ladle.OrderRequest{Customer: ladle.CustomerInput{Email: email, Name: name, Phone: phone}}
	req.Normalize()
	errs := req.Validate(time.Time{})
	for _, field := range []string{"email", "name", "phone"} {
		if msg, bad := errs["customer."+field]; bad {
			return req.Customer, field + " " + msg
		}
	}
	return req.Customer, ""
}

// checkText is the policy for staff-typed single-line text (campaign name,
// subject).
func checkText(s string, max int) string { return ladle.CheckText(s, ladle.TextRule{Max: max}) }
