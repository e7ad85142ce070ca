package ladle

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// The input policy: every text that comes from outside (API JSON, forms,
// headers, imports) is checked here, by the same functions, before it is
// stored or used. The rules:
//
//   - valid UTF-8. In JSON, a lone surrogate escape (\ud800) counts as
//     invalid too: encoding/json would turn it, and raw invalid bytes, into
//     U+FFFD without a word, so CheckJSONText looks at the raw body first. A
//     U+FFFD the client really sent is kept;
//   - no control characters: C0 (U+0000–U+001F), DEL and C1
//     (U+0080–U+009F). A field with Multiline set may hold a plain LF; CR
//     never (an address, a name or a code is one line; a note is LF text);
//   - no line/paragraph separators (U+2028, U+2029), no bidirectional
//     controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and no
//     byte order mark (U+FEFF), in any field: they can make a name or a note
//     read differently on a receipt or a kitchen screen than it is stored;
//   - lengths in characters (runes), not bytes.

// TextRule is the policy of one text field.
type TextRule struct {
	// Max is the most characters (runes) the field may hold; 0 is no limit
	// beyond the body's.
	Max int
	// Multiline allows a plain LF.
	Multiline bool
	// ASCII allows only printable ASCII (U+0020–U+007E): tokens, codes.
	ASCII bool
}

// Rules of the order fields (and any other field of the same kind).
var (
	NameText  = TextRule{Max: MaxNameLen}
	NoteText  = TextRule{Max: MaxNoteLen, Multiline: true}
	CodeText  = TextRule{Max: MaxCouponLen}
	TokenText = TextRule{Max: MaxTokenLen, ASCII: true}
)

// CheckText returns why s breaks rule, or "" when it does not. The message
// completes a sentence that starts with the field's name ("is not valid
// UTF-8").
func CheckText(s string, rule TextRule) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if msg := checkRune(r, rule); msg != "" {
			return msg
		}
	}
	if rule.Max > 0 && utf8.RuneCountInString(s) > rule.Max {
		return fmt.Sprintf("must be at most %d characters", rule.Max)
	}
	return ""
}

func checkRune(r rune, rule TextRule) string {
	switch {
	case r == '\n' && rule.Multiline:
		return ""
	case r == '\n' || r == '\r' || r == 0x2028 || r == 0x2029:
		if rule.Multiline {
			return "must use plain line breaks (LF) only"
		}
		return "must be a single line"
	case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
		return "must not contain control characters"
	case rule.ASCII && (r < 0x20 || r > 0x7e):
		return "must be printable ASCII"
	case isFormatControl(r):
		return "must not contain bidirectional controls or byte order marks"
	}
	return ""
}

// isFormatControl reports the invisible characters that reorder or hide
// text: the bidirectional controls and the byte order mark.
func isFormatControl(r rune) bool {
	switch {
	case r == 0x061c, r == 0x200e, r == 0x200f, r == 0xfeff:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// MaxEmailLen is the longest address SMTP carries (RFC 5321: a 256-octet
// path less the angle brackets).
const MaxEmailLen = 254

// NormalizeEmail trims s, lower-cases it and writes its domain in ASCII
// (IDNA A-labels, UTS #46 lookup rules), so that "Ada@Bücher.DE" and
// "ada@xn--bcher-kva.de" are one address. A domain that IDNA refuses is left
// as it is, for CheckEmail to name. Lower-casing the local part is a
// simplification every big mail provider shares.
func NormalizeEmail(s string) string {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) { // ToLower would turn invalid bytes into U+FFFD
		return s
	}
	s = strings.ToLower(s)
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	domain := s[at+1:]
	for i := 0; i < len(domain); i++ {
		if domain[i] >= utf8.RuneSelf {
			if a, err := idna.Lookup.ToASCII(domain); err == nil {
				return s[:at+1] + a
			}
			break
		}
	}
	return s
}

// CheckEmail returns why s (normalized by NormalizeEmail) is not an address
// a mail server would accept, or "" when it is. Accepted: a dot-atom local
// part of at most 64 ASCII characters (no quoted strings: few relays take
// them, and none of our guests need them), "@", and a DNS domain of at
// least two labels (letters, digits, hyphens, 1–63 each, not starting or
// ending with a hyphen, a top-level label that is not all digits), in all at
// most 254 characters. Internationalized domains are accepted in their
// A-label form, which NormalizeEmail produces; non-ASCII local parts need
// SMTPUTF8 all the way to the mailbox and are refused.
func CheckEmail(s string) string {
	const invalid = "is not a valid email address"
	if msg := CheckText(s, TextRule{}); msg != "" {
		return msg
	}
	if len(s) > MaxEmailLen {
		return fmt.Sprintf("must be at most %d characters", MaxEmailLen)
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return invalid
	}
	local, domain := s[:at], s[at+1:]
	if len(local) == 0 || len(local) > 64 || !isDotAtom(local) {
		return invalid
	}
	if !isHostname(domain) {
		return "needs a domain name with a dot, like example.com"
	}
	if _, err := idna.Lookup.ToUnicode(domain); err != nil { // bad punycode ("xn--…")
		return "needs a domain name with a dot, like example.com"
	}
	return ""
}

// isDotAtom: atext runs separated by single dots (RFC 5322 3.2.3).
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.':
		case strings.IndexByte("!#$%&'*+/=?^_`{|}~-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isHostname: two or more LDH labels, 1–63 octets each, no leading or
// trailing hyphen, a top-level label that is not all digits.
func isHostname(d string) bool {
	if len(d) > 253 {
		return false
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	return strings.Trim(tld, "0123456789") != ""
}

// MaxIdempotencyKeyLen bounds an Idempotency-Key.
const MaxIdempotencyKeyLen = 255

// CheckIdempotencyKey checks the Idempotency-Key header: present
// (idempotency_key_missing otherwise), at most MaxIdempotencyKeyLen
// characters of printable ASCII, U+0020–U+007E (validation_failed
// otherwise, naming the header). The IETF draft makes the key a Structured
// Field string, whose characters are exactly these; we take the key as
// sent, with or without the quotes (Stripe's clients send it bare).
func CheckIdempotencyKey(key string) error {
	if key == "" {
		return Errorf(KindInvalid, CodeIdempotencyKeyMissing, "an Idempotency-Key header is required to place an order")
	}
	msg := ""
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			msg = "must be printable ASCII (U+0020–U+007E)"
			break
		}
	}
	if msg == "" && len(key) > MaxIdempotencyKeyLen {
		msg = fmt.Sprintf("must be at most %d characters", MaxIdempotencyKeyLen)
	}
	if msg == "" {
		return nil
	}
	return &Error{Kind: KindInvalid, Code: CodeValidation, Message: "the Idempotency-Key " + msg,
		Fields: map[string]string{"Idempotency-Key": msg}}
}

// CheckJSONText looks at every string (member names included) of the JSON
// document raw and returns the path of the first one that is not valid
// UTF-8, a lone surrogate escape included ("customer.name",
// "lines[2].note"; "" for the top level), and ok false. raw must be
// syntactically valid JSON (decode it first): the scan does not re-check
// the grammar.
func CheckJSONText(raw []byte) (path string, ok bool) {
	type frame struct {
		object bool
		key    string
		index  int
	}
	var stack []frame
	where := func(extra string) string {
		var b strings.Builder
		for _, f := range stack {
			if f.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		if extra != "" {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(extra)
		}
		return b.String()
	}
	expectKey := false
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '{':
			stack = append(stack, frame{object: true})
			expectKey = true
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].object {
					expectKey = true
				} else {
					stack[n-1].index++
				}
			}
		case ':':
			expectKey = false
		case '"':
			end, valid := scanJSONString(raw, i)
			isKey := expectKey && len(stack) > 0 && stack[len(stack)-1].object
			if isKey {
				var k string
				if valid && json.Unmarshal(raw[i:end+1], &k) == nil {
					stack[len(stack)-1].key = k
				} else {
					stack[len(stack)-1].key = "?"
				}
			}
			if !valid {
				return where(""), false
			}
			i = end
		}
	}
	return "", true
}

// scanJSONString returns the index of the closing quote of the string that
// starts at raw[start], and whether its content is valid UTF-8 with every
// \u surrogate escape paired.
func scanJSONString(raw []byte, start int) (end int, valid bool) {
	valid = true
	for i := start + 1; i < len(raw); {
		c := raw[i]
		switch {
		case c == '"':
			return i, valid
		case c == '\\':
			if i+1 < len(raw) && raw[i+1] == 'u' {
				r := hex4(raw, i+2)
				switch {
				case r >= 0xd800 && r <= 0xdbff:
					if i+11 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
						if lo := hex4(raw, i+8); lo >= 0xdc00 && lo <= 0xdfff {
							i += 12
							continue
						}
					}
					valid = false
				case r >= 0xdc00 && r <= 0xdfff:
					valid = false
				}
				i += 6
				continue
			}
			i += 2
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size <= 1 {
				valid = false
				size = 1
			}
			i += size
		}
	}
	return len(raw) - 1, valid
}

// hex4 reads four hex digits at raw[i:], or returns -1.
func hex4(raw []byte, i int) rune {
	if i+4 > len(raw) {
		return -1
	}
	var r rune
	for _, c := range raw[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}
