// Package mail renders Ladle's emails (per-restaurant HTML and plain-text
// templates) and sends them: over SMTP with pooled, reused connections, or
// into the dev mailbox, where the email's own database record is the
// delivered message and staff read it at /admin/mailbox.
package mail

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"mime"
	"net/mail"
	"strings"
	"time"
	"unicode"
)

// Message is one rendered email, ready to send. It is what the worker stores
// in the email's row before sending, so a resend after a crash sends the same
// bytes (same Message-ID and Date) and a receiver can recognise the copy.
type Message struct {
	From      string // "Name <addr@host>" or "addr@host"
	To        string // one recipient, same forms
	Subject   string
	Text      string // plain-text body
	HTML      string // HTML body; optional
	MessageID string // without angle brackets: "local@domain"
	Date      time.Time
	// ListUnsubscribe, when set, is the https URL that unsubscribes the
	// recipient: it goes out as List-Unsubscribe with
	// List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058).
	ListUnsubscribe string
}

// Envelope returns the bare SMTP envelope addresses of m.
func (m *Message) Envelope() (from, to string, err error) {
	f, err := parseAddress("From", m.From)
	if err != nil {
		return "", "", err
	}
	t, err := parseAddress("To", m.To)
	if err != nil {
		return "", "", err
	}
	return f.Address, t.Address, nil
}

// Bytes renders m as an RFC 5322 message with CRLF line endings: a
// multipart/alternative of quoted-printable text and HTML (text only when
// HTML is empty).
//
// Header values are safe against injection: addresses are parsed and
// re-encoded (an address cannot carry a line break), and any control
// character in the subject or the Message-ID, CR and LF above all, is
// replaced by a space before the value is encoded, so no value can start a
// header of its own ("Subject: hi\r\nBcc: …" stays one Subject header).
func (m *Message) Bytes() ([]byte, error) {
	from, err := parseAddress("From", m.From)
	if err != nil {
		return nil, err
	}
	to, err := parseAddress("To", m.To)
	if err != nil {
		return nil, err
	}
	return m.appendRendered(nil, from.String(), to.String())
}

// appendRendered is Bytes with the addresses parsed and formatted: it
// appends the message to dst and returns the extended slice. The MIME
// structure is written directly into one buffer sized for the message
// (campaigns render one per recipient, so this is a hot path; SendBatch
// renders a batch's messages one after the other into one pooled buffer).
// The boundary starts with "=_", which quoted-printable content can never
// contain (it writes "=" only as "=3D" or before a line break), so it
// needs no check against the parts.
func (m *Message) appendRendered(dst []byte, from, to string) ([]byte, error) {
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	buf := bytes.NewBuffer(dst)
	buf.Grow(1024 + len(m.Text) + len(m.HTML) + (len(m.Text)+len(m.HTML))/8)
	h := func(k, v string) {
		buf.WriteString(k)
		buf.WriteString(": ")
		buf.WriteString(v)
		buf.WriteString("\r\n")
	}
	h("From", from)
	h("To", to)
	h("Subject", mime.QEncoding.Encode("utf-8", HeaderText(m.Subject)))
	h("Date", date.UTC().Format(time.RFC1123Z))
	if id := messageIDText(m.MessageID); id != "" {
		h("Message-ID", "<"+id+">")
	}
	if u := messageIDText(m.ListUnsubscribe); u != "" {
		h("List-Unsubscribe", "<"+u+">")
		h("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	h("MIME-Version", "1.0")

	const qpHeader = "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
	if m.HTML == "" {
		buf.WriteString("Content-Type: text/plain" + qpHeader)
		buf.Write(appendQP(buf.AvailableBuffer(), m.Text))
		return buf.Bytes(), nil
	}
	var rnd [12]byte
	binary.LittleEndian.PutUint64(rnd[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(rnd[8:], rand.Uint32())
	boundary := "=_" + hex.EncodeToString(rnd[:])
	h("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	buf.WriteString("\r\n")
	for _, part := range [2]struct{ typ, text string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		buf.WriteString("--")
		buf.WriteString(boundary)
		buf.WriteString("\r\nContent-Type: ")
		buf.WriteString(part.typ)
		buf.WriteString(qpHeader)
		buf.Write(appendQP(buf.AvailableBuffer(), part.text))
		buf.WriteString("\r\n")
	}
	buf.WriteString("--")
	buf.WriteString(boundary)
	buf.WriteString("--\r\n")
	return buf.Bytes(), nil
}

// qpLineMax is the longest line quoted-printable may write, "=" of a soft
// line break included (RFC 2045 6.7).
const qpLineMax = 76

// appendQP appends s encoded quoted-printable (RFC 2045) to dst, byte for
// byte as mime/quotedprintable's Writer encodes text: every line break of
// s (CRLF, LF or a lone CR) becomes CRLF, "=" and bytes outside printable
// ASCII are escaped, a space or tab that would end a line is escaped, and
// a line longer than 76 is broken with a soft "=" break. It appends
// instead of writing through an io.Writer so that a campaign's message,
// rendered once per recipient, costs no allocation of its own here (the
// Writer, the CRLF normalisation and the []byte copy were a fifth of a
// campaign email's garbage).
func appendQP(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	col := 0 // bytes on the output line so far
	escape := func(b byte) {
		if qpLineMax-1-col < 3 {
			dst = append(dst, "=\r\n"...)
			col = 0
		}
		dst = append(dst, '=', hex[b>>4], hex[b&0x0f])
		col += 3
	}
	// endLine escapes a space or tab that would end the line.
	endLine := func() {
		if col == 0 {
			return
		}
		if b := dst[len(dst)-1]; b == ' ' || b == '\t' {
			dst = dst[:len(dst)-1]
			col--
			escape(b)
		}
	}
	cr := false // the previous byte was a CR (its CRLF is written)
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b == '\n' || b == '\r':
			if cr && b == '\n' {
				cr = false
				continue
			}
			cr = b == '\r'
			endLine()
			dst = append(dst, '\r', '\n')
			col = 0
		case b >= '!' && b <= '~' && b != '=' || b == ' ' || b == '\t':
			if col == qpLineMax-1 {
				dst = append(dst, "=\r\n"...)
				col = 0
			}
			dst = append(dst, b)
			col++
			cr = false
		default:
			escape(b)
			cr = false
		}
	}
	endLine()
	return dst
}

// HeaderText makes s safe as (unstructured) header text: every control
// character, CR and LF included, becomes a space, and runs of spaces
// collapse. Templates and stored names pass through it.
func HeaderText(s string) string {
	if plainHeaderText(s) {
		return s // the usual name or subject: nothing to change, nothing to allocate
	}
	return cleanHeaderText(s)
}

// cleanHeaderText is HeaderText's cleaning in full.
func cleanHeaderText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// plainHeaderText reports whether HeaderText would return s as it is:
// printable ASCII only, single spaces between words, none at either end.
func plainHeaderText(s string) bool {
	space := true // a space here (or at the start) may not be followed by one
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			if space {
				return false
			}
			space = true
		case c > ' ' && c < 0x7f:
			space = false
		default:
			return false
		}
	}
	return !space || s == ""
}

// messageIDText keeps only the characters a Message-ID's id-left@id-right
// may hold, so a stored id cannot break the header either.
func messageIDText(s string) string {
	return strings.Map(func(r rune) rune {
		if r > ' ' && r < 0x7f && r != '<' && r != '>' && r != '"' && r != '\\' {
			return r
		}
		return -1
	}, s)
}

// ErrBadAddress is wrapped by errors about an unusable address. Sending such
// a message can never succeed: the worker treats it as permanent.
var ErrBadAddress = errors.New("bad email address")

func parseAddress(field, s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%w: %s contains a line break", ErrBadAddress, field)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %v", ErrBadAddress, field, s, err)
	}
	a.Name = HeaderText(a.Name)
	return a, nil
}

// Address formats a display name and an address as a From/To value, with
// the name made header-safe (a restaurant called "A\r\nBcc: x" is just a
// strange name).
func Address(name, addr string) string {
	return (&mail.Address{Name: HeaderText(name), Address: addr}).String()
}
