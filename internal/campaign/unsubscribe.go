package campaign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Unsubscribe tokens name a restaurant and an address and carry an
// HMAC-SHA256 (truncated to 128 bits) under the server secret, so the
// link in a campaign email unsubscribes exactly that address from exactly
// that restaurant without a login, and a changed token is refused. A
// token does not expire: an unsubscribe link must keep working.
//
// Format: base64url("u1|restaurantID|email") "." base64url(mac).
//
// Confirmation tokens (double opt-in, ladle.ConfirmConsent) are signed the
// same way and expire: base64url("c1|restaurantID|unix expiry|email") "."
// base64url(mac). The version tag keeps either kind from passing as the
// other.

// ErrBadToken is returned for a token that is malformed or whose MAC does
// not match.
var ErrBadToken = errors.New("campaign: bad unsubscribe token")

// ErrExpiredToken is returned for a confirmation token past its expiry.
var ErrExpiredToken = errors.New("campaign: expired confirmation token")

// Signer makes and checks unsubscribe tokens.
type Signer struct {
	key []byte
	// macs holds keyed HMACs to reuse: Reset returns one to its keyed
	// state without hashing the key again (a campaign signs a token per
	// recipient).
	macs sync.Pool
}

// NewSigner derives the unsubscribe key from the server secret (so the
// secret itself never signs anything else's format).
func NewSigner(secret []byte) *Signer {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("ladle unsubscribe v1"))
	s := &Signer{key: m.Sum(nil)}
	s.macs.New = func() any { return hmac.New(sha256.New, s.key) }
	return s
}

func (s *Signer) mac(payload string) []byte {
	m := s.macs.Get().(hash.Hash)
	m.Reset()
	io.WriteString(m, payload)
	sum := m.Sum(make([]byte, 0, sha256.Size))[:16]
	s.macs.Put(m)
	return sum
}

// sign returns base64url(payload) "." base64url(MAC), built in one
// buffer: a campaign signs a token per recipient.
func (s *Signer) sign(payload string) string {
	enc := base64.RawURLEncoding
	mac := s.mac(payload)
	b := make([]byte, 0, enc.EncodedLen(len(payload))+1+enc.EncodedLen(len(mac)))
	b = enc.AppendEncode(b, []byte(payload))
	b = append(b, '.')
	return string(enc.AppendEncode(b, mac))
}

// open checks tok's MAC and returns its payload's n fields, the first
// being tag.
func (s *Signer) open(tok, tag string, n int) ([]string, error) {
	enc := base64.RawURLEncoding
	a, b, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > 1024 {
		return nil, ErrBadToken
	}
	p, err1 := enc.DecodeString(a)
	mac, err2 := enc.DecodeString(b)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.mac(string(p))) {
		return nil, ErrBadToken
	}
	parts := strings.SplitN(string(p), "|", n)
	if len(parts) != n || parts[0] != tag || parts[n-1] == "" {
		return nil, ErrBadToken
	}
	return parts, nil
}

// Token returns the token for the address at the restaurant.
func (s *Signer) Token(restaurantID int64, email string) string {
	return s.sign("u1|" + strconv.FormatInt(restaurantID, 10) + "|" + email)
}

// Parse checks tok and returns what it names.
func (s *Signer) Parse(tok string) (restaurantID int64, email string, err error) {
	parts, err := s.open(tok, "u1", 3)
	if err != nil {
		return 0, "", err
	}
	restaurantID, err = strconv.ParseInt(parts[1], 10, 64)
	if err != nil || restaurantID <= 0 {
		return 0, "", ErrBadToken
	}
	return restaurantID, parts[2], nil
}

// ConfirmToken returns a confirmation token for the address at the
// restaurant that works until expires.
func (s *Signer) ConfirmToken(restaurantID int64, email string, expires time.Time) string {
	return s.sign("c1|" + strconv.FormatInt(restaurantID, 10) + "|" + strconv.FormatInt(expires.Unix(), 10) + "|" + email)
}

// ParseConfirm checks a confirmation token at now: ErrBadToken if it was
// not made by ConfirmToken under this secret (or was changed),
// ErrExpiredToken if it was but has expired.
func (s *Signer) ParseConfirm(tok string, now time.Time) (restaurantID int64, email string, err error) {
	parts, err := s.open(tok, "c1", 4)
	if err != nil {
		return 0, "", err
	}
	restaurantID, err1 := strconv.ParseInt(parts[1], 10, 64)
	exp, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || restaurantID <= 0 {
		return 0, "", ErrBadToken
	}
	if now.Unix() >= exp {
		return 0, "", ErrExpiredToken
	}
	return restaurantID, parts[3], nil
}
