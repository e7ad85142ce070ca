package campaign

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ladle-dev/ladle"
)

// The input policy of imported rows: the same checks as a guest's contact
// details at checkout (ladle.OrderRequest.Validate): the same email rule,
// the same name length, the same phone normalization and length, plus the
// rule for all outside text (valid UTF-8, no control or bidirectional
// characters).

func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func checkText(s string, max int) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == 0x2028 || r == 0x2029:
			return "must be a single line"
		case unicode.IsControl(r):
			return "must not contain control characters"
		case r == 0x061c, r == 0x200e, r == 0x200f, r == 0xfeff, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return "must not contain bidirectional controls or byte order marks"
		}
	}
	if max > 0 && utf8.RuneCountInString(s) > max {
		return fmt.Sprintf("must be at most %d characters", max)
	}
	return ""
}

func checkEmail(s string) string {
	if s == "" {
		return "is required"
	}
	if msg := checkText(s, 254); msg != "" {
		return msg
	}
	if a, err := mail.ParseAddress(s); err != nil || a.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "is not a valid email address"
	}
	return ""
}

func checkName(s string) string {
	if s == "" {
		return "is required"
	}
	return checkText(s, ladle.MaxNameLen)
}

func normalizePhone(p string) string {
	var b strings.Builder
	for i, c := range strings.TrimSpace(p) {
		if c >= '0' && c <= '9' || (c == '+' && i == 0) {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func checkPhone(raw, p string) string {
	if msg := checkText(raw, 40); msg != "" {
		return msg
	}
	if p != "" && (len(p) < 7 || len(p) > 16) {
		return "is not a valid phone number"
	}
	return ""
}
