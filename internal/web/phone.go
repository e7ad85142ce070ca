package web

import "strings"

// Phone numbers are stored as typed, less punctuation (ladle.OrderRequest
// normalizes "+1 (212) 555-0100" to "+12125550100"). For people they are
// written back out readably: a number in the restaurant's own country in
// its national form, any other in international form with its country
// code split off. This is display only; tel: links keep the stored digits.

// twoDigitCodes are the ITU country calling codes of two digits; 1 and 7 are
// the one-digit ones; every other code has three digits (ITU-T E.164 annex).
var twoDigitCodes = map[string]bool{
	"20": true, "27": true, "30": true, "31": true, "32": true, "33": true, "34": true, "36": true, "39": true,
	"40": true, "41": true, "43": true, "44": true, "45": true, "46": true, "47": true, "48": true, "49": true,
	"51": true, "52": true, "53": true, "54": true, "55": true, "56": true, "57": true, "58": true,
	"60": true, "61": true, "62": true, "63": true, "64": true, "65": true, "66": true,
	"81": true, "82": true, "84": true, "86": true,
	"90": true, "91": true, "92": true, "93": true, "94": true, "95": true, "98": true,
}

// splitE164 splits "+<digits>" into its country calling code and national
// number; ok is false for anything that is not 8–15 digits after a "+".
func splitE164(p string) (cc, national string, ok bool) {
	d, found := strings.CutPrefix(p, "+")
	if !found || len(d) < 8 || len(d) > 15 || !allDigits(d) {
		return "", "", false
	}
	n := 3
	switch {
	case d[0] == '1' || d[0] == '7':
		n = 1
	case twoDigitCodes[d[:2]]:
		n = 2
	}
	return d[:n], d[n:], true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// callingCode is the country calling code of a phone number written in
// international form ("+1 212 555 0142" → "1"), or "".
func callingCode(p string) string {
	cc, _, _ := splitE164(compactPhone(p))
	return cc
}

// compactPhone drops the punctuation people write numbers with.
func compactPhone(p string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '(', ')', '-', '.', '\u00a0':
			return -1
		}
		return r
	}, strings.TrimSpace(p))
}

// formatPhone writes a stored phone number for display. home is the calling
// code of the restaurant's country ("1"); numbers from there are shown in
// national form. North American numbers (+1) read "(212) 555-0100" at home
// and "+1 212-555-0100" abroad; others keep a trunk 0 at home ("020 7946
// 0958") and have their digits in even groups (groupDigits).
// Anything that is not a full international number, or a North American
// one without its +1, is returned as it was stored.
func formatPhone(p, home string) string {
	c := compactPhone(p)
	if len(c) == 10 && allDigits(c) && home == "1" {
		c = "+1" + c // a North American number typed without its country code
	}
	cc, nat, ok := splitE164(c)
	if !ok {
		return p
	}
	if cc == "1" && len(nat) == 10 {
		if home == "1" {
			return "(" + nat[:3] + ") " + nat[3:6] + "-" + nat[6:]
		}
		return "+1 " + nat[:3] + "-" + nat[3:6] + "-" + nat[6:]
	}
	if cc == home {
		return groupDigits("0" + nat)
	}
	return "+" + cc + " " + groupDigits(nat)
}

// groupDigits splits digits into the fewest groups of at most four, as
// even as they come, the longer ones last: "2079460958" → "207 946 0958",
// "02079460958" → "020 7946 0958", "015123456789" → "0151 2345 6789".
func groupDigits(d string) string {
	k := (len(d) + 3) / 4
	if k <= 1 {
		return d
	}
	base, extra := len(d)/k, len(d)%k
	parts := make([]string, 0, k)
	for i := range k {
		n := base
		if i >= k-extra {
			n++
		}
		parts = append(parts, d[:n])
		d = d[n:]
	}
	return strings.Join(parts, " ")
}
