package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// APITokenPrefix starts every staff API token, so a leaked one is easy to
// recognise (and to scan for).
const APITokenPrefix = "ldl_"

// NewAPIToken returns a new staff API token (256 random bits) and the hash
// to store: only the hash is kept, the token is shown once.
func NewAPIToken() (token string, hash []byte) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		panic("auth: no randomness: " + err.Error())
	}
	token = APITokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	return token, HashAPIToken(token)
}

// HashAPIToken is the stored form of a token: SHA-256 (the token has 256
// bits of entropy, so a fast hash is enough), or nil for a string that is
// not shaped like a token.
func HashAPIToken(token string) []byte {
	if !strings.HasPrefix(token, APITokenPrefix) || len(token) != len(APITokenPrefix)+43 {
		return nil
	}
	h := sha256.Sum256([]byte(token))
	return h[:]
}
