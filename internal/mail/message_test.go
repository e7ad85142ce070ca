package mail

import (
	"bytes"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// TestAppendQP: appendQP writes what mime/quotedprintable's Writer writes
// for the same text, and what it writes decodes back to the text with its
// line breaks as CRLF, in lines of at most 76 bytes. The inputs are
// edge cases (spaces and tabs before breaks and at the end, escapes at
// the 76th column, every kind of line break) and random strings over an
// alphabet made of them.
func TestAppendQP(t *testing.T) {
	cases := []string{"", "a", " ", "\t", "a ", "a\t", " \n", "a \r\nb", "a\t\nb", "\r", "\n", "\r\n", "\r\r\n\n",
		"=", "caf\u00e9", strings.Repeat("x", 75), strings.Repeat("x", 76), strings.Repeat("x", 77),
		strings.Repeat("x", 73) + "=", strings.Repeat("x", 74) + "=", strings.Repeat("x", 75) + " ",
		strings.Repeat("x", 74) + " \n", strings.Repeat("é", 40), "<p>Hi {{.Name}}</p>\n\n<a href=\"x\">y</a>"}
	alphabet := []string{"a", "Z", " ", "\t", "\r", "\n", "\r\n", "=", "é", "\x00", "\x7f", "~", "!", strings.Repeat("w", 30)}
	cases = append(cases, randomStrings(1, 60, alphabet)...)
	for _, s := range cases {
		got := appendQP([]byte("prefix:"), s)
		if !bytes.HasPrefix(got, []byte("prefix:")) {
			t.Fatalf("%q: the prefix is gone: %q", s, got)
		}
		got = got[len("prefix:"):]
		// mime/quotedprintable keeps a CR as pending after a lone CR even
		// when an escaped byte follows, and then drops the LF after it
		// (it reads "\r=\n" as one break): compare only where no lone CR
		// precedes an escaped byte.
		if !quirk(s) {
			var want bytes.Buffer
			w := quotedprintable.NewWriter(&want)
			w.Write([]byte(s))
			w.Close()
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("%q:\n got %q\nwant %q", s, got, want.Bytes())
			}
		}
		dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(got)))
		if err != nil {
			t.Fatalf("%q: %q does not decode: %v", s, got, err)
		}
		norm := strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n"), "\n", "\r\n")
		if string(dec) != norm {
			t.Fatalf("%q: decodes to %q, want %q", s, dec, norm)
		}
		for _, line := range bytes.Split(got, []byte("\r\n")) {
			if len(line) > qpLineMax {
				t.Fatalf("%q: line of %d bytes: %q", s, len(line), line)
			}
			if n := len(line); n > 0 && (line[n-1] == ' ' || line[n-1] == '\t') {
				t.Fatalf("%q: line ends in white space: %q", s, line)
			}
		}
	}
}

// quirk reports whether s has a lone CR (not followed by LF) followed
// later by a byte quoted-printable escapes before the next plain byte:
// where mime/quotedprintable's Writer loses a line break.
func quirk(s string) bool {
	pending := false
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '\r':
			pending = i+1 >= len(s) || s[i+1] != '\n'
		case b == '\n':
			pending = false
		case b >= '!' && b <= '~' && b != '=' || b == ' ' || b == '\t':
			pending = false
		default:
			if pending {
				return true
			}
		}
	}
	return false
}

// TestHeaderTextFastPath: HeaderText returns what the full cleaning
// (controls to spaces, runs of white space collapsed, ends trimmed) makes
// of any string, whether or not it takes the path that returns it as it is.
func TestHeaderTextFastPath(t *testing.T) {
	cases := []string{"", " ", "a", "a b", "a  b", " a", "a ", "Guest 42", "Demo Kitchen", "a\tb", "a\r\nBcc: x",
		"caf\u00e9", "a\u00a0b", "a\u0085b", "x\x7fy", "~!", "  "}
	alphabet := []string{"a", "Z", " ", "  ", "\t", "\r", "\n", "\x00", "\x7f", "~", "é", "\u00a0", "\u2028", "<", "\""}
	cases = append(cases, randomStrings(3, 12, alphabet)...)
	fast := 0
	for _, s := range cases {
		if got, want := HeaderText(s), cleanHeaderText(s); got != want {
			t.Fatalf("HeaderText(%q) = %q, want %q", s, got, want)
		}
		if plainHeaderText(s) {
			fast++
		}
	}
	if fast < 100 {
		t.Fatalf("only %d of %d strings took the fast path", fast, len(cases))
	}
}

// randomStrings returns 5,000 strings (seeded, the same every run), each
// of up to maxParts pieces drawn from alphabet.
func randomStrings(seed uint64, maxParts int, alphabet []string) []string {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	out := make([]string, 5000)
	for i := range out {
		var b strings.Builder
		for n := rng.IntN(maxParts); n > 0; n-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		out[i] = b.String()
	}
	return out
}
