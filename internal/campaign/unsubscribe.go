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
)

// Unsubscribe tokens name a restaurant and an address and carry an
// HMAC-SHA256 (truncated to 128 bits) under the server secret, so the
// link in a campaign email unsubscribes exactly that address from exactly
// that restaurant without a login, and a changed token is refused. A
// token does not expire: an unsubscribe link must keep working.
//
// Format: base64url("u1|restaurantID|email") "." base64url(mac).

// ErrBadToken is returned for a token that is malformed or whose MAC does
// not match.
var ErrBadToken = errors.New("campaign: bad unsubscribe token")

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

// Token returns the token for the address at the restaurant.
func (s *Signer) Token(restaurantID int64, email string) string {
	p := "u1|" + strconv.FormatInt(restaurantID, 10) + "|" + email
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(p)) + "." + enc.EncodeToString(s.mac(p))
}

// Parse checks tok and returns what it names.
func (s *Signer) Parse(tok string) (restaurantID int64, email string, err error) {
	enc := base64.RawURLEncoding
	a, b, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > 1024 {
		return 0, "", ErrBadToken
	}
	p, err1 := enc.DecodeString(a)
	mac, err2 := enc.DecodeString(b)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, s.mac(string(p))) {
		return 0, "", ErrBadToken
	}
	parts := strings.SplitN(string(p), "|", 3)
	if len(parts) != 3 || parts[0] != "u1" {
		return 0, "", ErrBadToken
	}
	restaurantID, err = strconv.ParseInt(parts[1], 10, 64)
	if err != nil || restaurantID <= 0 || parts[2] == "" {
		return 0, "", ErrBadToken
	}
	return restaurantID, parts[2], nil
}
