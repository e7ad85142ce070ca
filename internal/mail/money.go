package mail

import (
	"strconv"
	"strings"

	"github.com/ladle-dev/ladle"
)

// minorDigits lists ISO 4217 currencies whose minor unit is not 1/100.
var minorDigits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}

var symbols = map[string]string{
	"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "CHF": "CHF ",
}

// FormatMoney formats an amount in minor units for people: "$12.50",
// "€3.00", "¥500", "12.500 KWD". Amounts are integers all the way: no float
// ever touches money.
func FormatMoney(m ladle.Money, currency string) string {
	currency = strings.ToUpper(currency)
	digits, ok := minorDigits[currency]
	if !ok {
		digits = 2
	}
	neg := m < 0
	v := int64(m)
	if neg {
		v = -v
	}
	s := strconv.FormatInt(v, 10)
	if digits > 0 {
		for len(s) <= digits {
			s = "0" + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	if sym, ok := symbols[currency]; ok {
		s = sym + s
	} else if currency != "" {
		s += " " + currency
	}
	if neg {
		s = "-" + s
	}
	return s
}
