package mail

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpConn is one client connection to an SMTP server, after the greeting,
// EHLO, STARTTLS and AUTH (SMTP.dial). Replies that refuse something are
// *smtp.SMTPError (go-smtp's type, with the enhanced status code parsed),
// so IsPermanent and the callers' classification read them alike.
type smtpConn struct {
	nc       net.Conn
	r        *textproto.Reader
	w        *bufio.Writer
	exts     map[string]string
	lastUsed time.Time
	used     bool // it has carried messages (it went back to the pool since)
}

// envelope is a message ready for the wire: its bare envelope addresses,
// its bytes, and its index in the caller's batch.
type envelope struct {
	from, to string
	raw      []byte
	i        int
}

// envelope renders m onto the end of dst (its bytes are the envelope's
// raw) and returns the extended slice; on an error dst comes back as it
// was.
func (m *Message) envelope(fc *fromCache, dst []byte) (envelope, []byte, error) {
	if fc.value != m.From || fc.addr == nil {
		from, err := parseAddress("From", m.From)
		if err != nil {
			return envelope{}, dst, err
		}
		*fc = fromCache{value: m.From, addr: from, header: from.String()}
	}
	to, err := parseAddress("To", m.To)
	if err != nil {
		return envelope{}, dst, err
	}
	out, err := m.appendRendered(dst, fc.header, to.String())
	if err != nil {
		return envelope{}, dst, err
	}
	return envelope{from: fc.addr.Address, to: to.Address, raw: out[len(dst):len(out):len(out)]}, out, nil
}

// fromCache keeps the parsed From of the last message of a batch: a
// campaign's messages all have the same one.
type fromCache struct {
	value  string
	addr   *mail.Address
	header string
}

func newSMTPConn(nc net.Conn) *smtpConn {
	return &smtpConn{nc: nc, r: textproto.NewReader(bufio.NewReaderSize(nc, 4096)), w: bufio.NewWriterSize(nc, 16<<10)}
}

func (c *smtpConn) close() { c.nc.Close() }

// reply reads one (possibly multi-line) reply and checks its code: a code
// other than want is returned as *smtp.SMTPError; a broken connection as
// the I/O error.
func (c *smtpConn) reply(want int) (string, error) {
	code, msg, err := c.r.ReadResponse(want)
	var pe *textproto.Error
	if errors.As(err, &pe) {
		return msg, replyError(pe.Code, pe.Msg)
	}
	if err != nil {
		return msg, err
	}
	if code != want {
		return msg, replyError(code, msg)
	}
	return msg, nil
}

// expect reads one reply and checks its code, as reply does, for a caller
// that needs no more than that: the answer to every command of every
// message a campaign sends. The usual answer, one line with the code
// wanted ("250 2.0.0 OK"), is read and checked in the reader's buffer,
// without the strings reply makes of it; anything else (another code, a
// multi-line reply) is left in the buffer for reply to read as it is.
func (c *smtpConn) expect(want int) error {
	head, err := c.r.R.Peek(4)
	if err != nil || head[0] != byte('0'+want/100) || head[1] != byte('0'+want/10%10) ||
		head[2] != byte('0'+want%10) || head[3] != ' ' {
		_, err := c.reply(want)
		return err
	}
	for {
		// The rest of the line; a line longer than the buffer comes in
		// parts.
		_, err := c.r.R.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

// replyError is go-smtp's reading of a reply: "5.1.1 text" sets the
// enhanced code.
func replyError(code int, msg string) *smtp.SMTPError {
	e := &smtp.SMTPError{Code: code, Message: msg}
	first, rest, ok := strings.Cut(msg, " ")
	if !ok {
		return e
	}
	parts := strings.Split(first, ".")
	if len(parts) != 3 {
		return e
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return e
		}
		ec[i] = n
	}
	e.EnhancedCode, e.Message = ec, strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	return e
}

// cmd sends one command line and reads its reply.
func (c *smtpConn) cmd(line string, want int) (string, error) {
	if strings.ContainsAny(line, "\r\n") {
		return "", errors.New("smtp: a command with a line break")
	}
	c.w.WriteString(line)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return "", err
	}
	return c.reply(want)
}

// greet reads the server's greeting and says EHLO.
func (c *smtpConn) greet(localName string) error {
	if err := c.expect(220); err != nil {
		return err
	}
	return c.hello(localName)
}

// hello says EHLO (HELO if the server does not know EHLO) and records the
// extensions offered.
func (c *smtpConn) hello(localName string) error {
	msg, err := c.cmd("EHLO "+localName, 250)
	var se *smtp.SMTPError
	if errors.As(err, &se) && (se.Code == 500 || se.Code == 502) {
		c.exts = map[string]string{}
		_, err = c.cmd("HELO "+localName, 250)
		return err
	}
	if err != nil {
		return err
	}
	c.exts = map[string]string{}
	lines := strings.Split(msg, "\n")
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, " ")
		c.exts[strings.ToUpper(k)] = v
	}
	return nil
}

func (c *smtpConn) ext(name string) bool {
	_, ok := c.exts[name]
	return ok
}

// authPlain authenticates with AUTH PLAIN (RFC 4616).
func (c *smtpConn) authPlain(user, pass string) error {
	if v, ok := c.exts["AUTH"]; !ok || !strings.Contains(" "+strings.ToUpper(v)+" ", " PLAIN ") {
		return fmt.Errorf("%w: the server does not offer AUTH PLAIN", ErrPermanent)
	}
	_, err := c.cmd("AUTH PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)), 235)
	return err
}

func (c *smtpConn) noop(timeout time.Duration) error {
	c.nc.SetDeadline(time.Now().Add(timeout))
	defer c.nc.SetDeadline(time.Time{})
	_, err := c.cmd("NOOP", 250)
	return err
}

func (c *smtpConn) quit(timeout time.Duration) {
	c.nc.SetDeadline(time.Now().Add(timeout))
	_, _ = c.cmd("QUIT", 221)
	c.close()
}

// mailLine is the MAIL command of a message.
func (c *smtpConn) mailLine(e envelope) string {
	line := "MAIL FROM:<" + e.from + ">"
	if !isASCII(e.from) || !isASCII(e.to) {
		if c.ext("SMTPUTF8") {
			line += " SMTPUTF8"
		}
	}
	return line
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// send sends the messages in order on c, recording each one's outcome in
// errs[e.i]. With PIPELINING, each message's MAIL, RCPT and DATA go out
// in one write together with the previous message's body (RFC 2920 lets
// the message content lead a group), and their replies are read after it:
// one round trip per message. Without it, every command waits for its
// reply. A refusal is recorded and the next message goes on (after RSET
// when a transaction was left open).
//
// answered is how many messages of part (from the first) have their
// outcome in errs. A returned error is a broken connection (I/O, a
// timeout, ctx ending): the connection must be closed, and part[answered:]
// have no outcome. started reports whether any message's content had been
// written by then (if not, none can have been accepted).
func (c *smtpConn) send(ctx context.Context, part []envelope, errs []error, timeout time.Duration, chunking bool) (answered int, started bool, err error) {
	// Closing the connection unblocks a read or write when ctx ends.
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer func() {
		if !stop() && err == nil && answered < len(part) {
			err = ctx.Err()
		}
		c.nc.SetDeadline(time.Time{})
	}()
	pipelining := c.ext("PIPELINING")
	pace := pacer(ctx)
	if pipelining && chunking && c.ext("CHUNKING") {
		return c.sendChunked(ctx, part, errs, timeout, pace)
	}
	bodyOf := -1 // the message whose end-of-data reply is still to be read
	rset := false
	// final records message k's outcome; outcomes come in order.
	final := func(k int, err error) {
		errs[part[k].i] = err
		answered = k + 1
	}
	step := func(line string, want int) error {
		c.w.WriteString(line)
		c.w.WriteString("\r\n")
		if err := c.w.Flush(); err != nil {
			return err
		}
		return c.expect(want)
	}
	for k := 0; k <= len(part); k++ {
		if pace != nil && k < len(part) {
			pace(ctx)
		}
		c.nc.SetDeadline(time.Now().Add(timeout))
		var mailErr, rcptErr, dataErr error
		if pipelining {
			if k < len(part) {
				if rset {
					c.w.WriteString("RSET\r\n")
				}
				c.w.WriteString(c.mailLine(part[k]))
				c.w.WriteString("\r\nRCPT TO:<")
				c.w.WriteString(part[k].to)
				c.w.WriteString(">\r\nDATA\r\n")
			}
			if err := c.w.Flush(); err != nil {
				return answered, started, err
			}
			if bodyOf >= 0 {
				err := c.expect(250)
				if err != nil && !isReplyErr(err) {
					return answered, started, err
				}
				final(bodyOf, err)
				bodyOf = -1
			}
			if k == len(part) {
				break
			}
			if rset {
				if err := c.expect(250); err != nil && !isReplyErr(err) {
					return answered, started, err
				}
			}
			mailErr = c.expect(250)
			rcptErr = c.expect(250)
			dataErr = c.expect(354)
		} else {
			if k == len(part) {
				break
			}
			if rset {
				if err := step("RSET", 250); err != nil && !isReplyErr(err) {
					return answered, started, err
				}
			}
			mailErr = step(c.mailLine(part[k]), 250)
			if mailErr == nil {
				rcptErr = step("RCPT TO:<"+part[k].to+">", 250)
			}
			if mailErr == nil && rcptErr == nil {
				dataErr = step("DATA", 354)
			}
		}
		for _, err := range []error{mailErr, rcptErr, dataErr} {
			if err != nil && !isReplyErr(err) {
				return answered, started, err
			}
		}
		rset = false
		switch {
		case mailErr != nil:
			final(k, mailErr)
		case rcptErr != nil:
			final(k, rcptErr)
			rset = true
		case dataErr != nil:
			final(k, dataErr)
			rset = true
		default:
			started = true
			writeDotStuffed(c.w, part[k].raw)
			c.w.WriteString(".\r\n")
			if pipelining {
				bodyOf = k // flushed with the next message's commands
				continue
			}
			if err := c.w.Flush(); err != nil {
				return answered, started, err
			}
			err := c.expect(250)
			if err != nil && !isReplyErr(err) {
				return answered, started, err
			}
			final(k, err)
		}
	}
	if rset {
		// Leave the connection clean for the next user of the pool.
		if _, err := c.cmd("RSET", 250); err != nil && !isReplyErr(err) {
			return answered, started, err
		}
	}
	return answered, started, nil
}

// chunkGroup is how many messages sendChunked writes before it reads
// their replies: a group's replies (four short lines a message) stay far
// below what a socket buffers, so neither side can block the other.
const chunkGroup = 16

// sendChunked is send for a server that offers PIPELINING and CHUNKING
// (RFC 3030). BDAT states its content's length, so a message needs no 354
// go-ahead: a group of messages goes out in one write — for each, RSET
// (but for the first of the call: a connection is clean between sends),
// MAIL, RCPT, BDAT <size> LAST and the content as it is (no dot-stuffing)
// — and their replies are read after it: one round trip and a couple of
// system calls for the group instead of one round trip per message. The
// RSET makes every message independent of the ones before it: a refused
// MAIL or RCPT leaves a transaction open that the next MAIL would run
// into. A message's outcome is its first refusal (the BDAT of a refused
// recipient is refused too, for that reason). A broken connection leaves
// the group's unanswered messages without an outcome, as in send: they
// may or may not have been accepted.
//
// On a connection that has carried messages before (it may have been
// closed by the server while it sat in the pool), the first message's
// MAIL and RCPT go out alone first, so a dead connection shows before any
// content was written and the caller can retry on a fresh one.
func (c *smtpConn) sendChunked(ctx context.Context, part []envelope, errs []error, timeout time.Duration, pace func(context.Context)) (answered int, started bool, err error) {
	var num [20]byte
	probed := false // part[0]'s MAIL and RCPT were accepted already
	if c.used && len(part) > 0 {
		if pace != nil {
			pace(ctx)
		}
		c.nc.SetDeadline(time.Now().Add(timeout))
		c.w.WriteString(c.mailLine(part[0]))
		c.w.WriteString("\r\nRCPT TO:<")
		c.w.WriteString(part[0].to)
		c.w.WriteString(">\r\n")
		if err := c.w.Flush(); err != nil {
			return 0, false, err
		}
		first, err := c.replies(2)
		if err != nil {
			return 0, false, err
		}
		if first != nil {
			errs[part[0].i] = first
			answered = 1
		} else {
			probed = true
		}
	}
	for lo := answered; lo < len(part); lo += chunkGroup {
		group := part[lo:min(lo+chunkGroup, len(part))]
		for k, e := range group {
			if pace != nil && !(lo+k == 0 && probed) {
				pace(ctx)
			}
			switch {
			case lo+k == 0 && probed:
			case lo+k == 0:
				c.w.WriteString(c.mailLine(e))
				c.w.WriteString("\r\nRCPT TO:<")
			default:
				c.w.WriteString("RSET\r\n")
				c.w.WriteString(c.mailLine(e))
				c.w.WriteString("\r\nRCPT TO:<")
			}
			if lo+k > 0 || !probed {
				c.w.WriteString(e.to)
				c.w.WriteString(">\r\n")
			}
			c.w.WriteString("BDAT ")
			c.w.Write(strconv.AppendInt(num[:0], int64(len(e.raw)), 10))
			c.w.WriteString(" LAST\r\n")
			started = true // the buffer may go out as it fills
			c.w.Write(e.raw)
		}
		c.nc.SetDeadline(time.Now().Add(timeout))
		if err := c.w.Flush(); err != nil {
			return answered, started, err
		}
		for k := range group {
			c.nc.SetDeadline(time.Now().Add(timeout))
			n := 4 // RSET, MAIL, RCPT, BDAT
			switch {
			case lo+k == 0 && probed:
				n = 1
			case lo+k == 0:
				n = 3
			}
			first, err := c.replies(n)
			if err != nil {
				return answered, started, err
			}
			errs[group[k].i] = first
			answered = lo + k + 1
		}
	}
	if answered > 0 && errs[part[answered-1].i] != nil {
		// The last message was refused: leave the connection clean for
		// the next user of the pool.
		if _, err := c.cmd("RSET", 250); err != nil && !isReplyErr(err) {
			return answered, started, err
		}
	}
	return answered, started, nil
}

// replies reads n replies that should each be 250 and returns the first
// refusal among them (nil if none), or a broken connection's error.
func (c *smtpConn) replies(n int) (first, err error) {
	for range n {
		err := c.expect(250)
		if err != nil && !isReplyErr(err) {
			return nil, err
		}
		if first == nil {
			first = err
		}
	}
	return first, nil
}

func isReplyErr(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

// writeDotStuffed writes raw as DATA content: a line that starts with a
// dot gets a second one (RFC 5321 4.5.2), and the content ends with CRLF.
func writeDotStuffed(w *bufio.Writer, raw []byte) {
	if len(raw) > 0 && raw[0] == '.' {
		w.WriteByte('.')
	}
	for {
		i := indexLFDot(raw)
		if i < 0 {
			break
		}
		w.Write(raw[:i+1])
		w.WriteByte('.')
		raw = raw[i+1:]
	}
	w.Write(raw)
	if len(raw) < 2 || raw[len(raw)-2] != '\r' || raw[len(raw)-1] != '\n' {
		w.WriteString("\r\n")
	}
}

// indexLFDot is the index of the first "\n." in b, or -1.
func indexLFDot(b []byte) int {
	for off := 0; ; {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return -1
		}
		j := off + i
		if j+1 < len(b) && b[j+1] == '.' {
			return j
		}
		off = j + 1
	}
}
