package web

import (
	"strconv"
	"strings"

	"github.com/ladle-dev/ladle"
)

// currency is how an ISO 4217 currency is written: its symbol (prefix) and
// how many minor-unit digits it has. The same two facts go to the page's JS
// (currencyInfo), so the cart and the server format money identically.
type currency struct {
	Symbol string `json:"symbol"`
	Digits int    `json:"digits"`
}

// currencies lists the symbols a guest recognises without the code; the
// rest are written "CHF 12.50". Digits follow ISO 4217.
var currencies = map[string]currency{
	"USD": {"$", 2}, "EUR": {"€", 2}, "GBP": {"£", 2}, "JPY": {"¥", 0},
	"CAD": {"CA$", 2}, "AUD": {"A$", 2}, "NZD": {"NZ$", 2}, "MXN": {"MX$", 2},
	"INR": {"₹", 2}, "KRW": {"₩", 0}, "CNY": {"CN¥", 2}, "ILS": {"₪", 2},
	"BRL": {"R$", 2}, "HKD": {"HK$", 2}, "SGD": {"S$", 2},
}

// zeroDecimal and threeDecimal are the ISO 4217 exceptions to two digits
// among currencies without a symbol above.
var (
	zeroDecimal  = map[string]bool{"CLP": true, "ISK": true, "VND": true, "UGX": true, "PYG": true, "XAF": true, "XOF": true}
	threeDecimal = map[string]bool{"BHD": true, "KWD": true, "OMR": true, "JOD": true, "TND": true, "IQD": true, "LYD": true}
)

func currencyInfo(code string) currency {
	code = strings.ToUpper(code)
	if c, ok := currencies[code]; ok {
		return c
	}
	c := currency{Symbol: code + "\u00a0", Digits: 2}
	switch {
	case zeroDecimal[code]:
		c.Digits = 0
	case threeDecimal[code]:
		c.Digits = 3
	}
	return c
}

// formatMoney writes an amount of minor units in its currency: "$1,234.50",
// "¥1,250", "-€2.00", "CHF 12.50".
func formatMoney(m ladle.Money, code string) string {
	c := currencyInfo(code)
	neg := m < 0
	v := int64(m)
	if neg {
		v = -v
	}
	div := int64(1)
	for range c.Digits {
		div *= 10
	}
	whole, frac := v/div, v%div
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(c.Symbol)
	ws := strconv.FormatInt(whole, 10)
	for i, ch := range ws {
		if i > 0 && (len(ws)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if c.Digits > 0 {
		fs := strconv.FormatInt(frac, 10)
		b.WriteByte('.')
		b.WriteString(strings.Repeat("0", c.Digits-len(fs)))
		b.WriteString(fs)
	}
	return b.String()
}

// parseMoney reads an amount typed by a guest in major units ("2", "2.5",
// "2.50", "$2.50") into minor units. ok is false for anything else, or more
// decimals than the currency has.
func parseMoney(s, code string) (ladle.Money, bool) {
	c := currencyInfo(code)
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, strings.TrimSpace(c.Symbol))
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if s == "" {
		return 0, true
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if len(whole) > 12 || !digits(whole) || (hasFrac && frac != "" && (len(frac) > c.Digits || !digits(frac))) {
		return 0, false
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	v := w
	for i := range c.Digits {
		v *= 10
		if i < len(frac) {
			v += int64(frac[i] - '0')
		}
	}
	return ladle.Money(v), true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
