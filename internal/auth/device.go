package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// A known device is a browser that has signed in as a user before. It
// carries a cookie, set at each successful sign-in, that names the user and
// a random device id and is signed (HMAC-SHA256) with a key derived from the
// server secret, so it cannot be forged or moved to another user. A known
// device is exempt from the per-email and per-address limits of
// Authenticate and has a budget of its own (MaxFailuresPerDevice): an
// attacker who has used up the owner's email from anywhere, or the address
// the owner shares with them, does not lock the owner out of a browser they
// have used before. The cookie is no credential: the password is still
// checked, and a stolen cookie only buys its thief the device's own budget.

// Device cookie names, as for the session cookie.
const (
	DeviceCookieName       = "ladle_device"
	SecureDeviceCookieName = "__Host-ladle_device"
	// DeviceTTL is how long a device stays known after its last sign-in.
	DeviceTTL = 180 * 24 * time.Hour
)

// deviceClaim is what a device cookie says.
type deviceClaim struct {
	UserID  int64  `json:"u"`
	Email   string `json:"e"`
	Device  string `json:"d"` // 16 random bytes, hex
	Expires int64  `json:"x"` // Unix seconds
}

// deviceKey derives the cookie's MAC key from the server secret, so the
// secret itself signs nothing else of ours twice.
func deviceKey(secret []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("ladle/auth/known-device/v1"))
	return mac.Sum(nil)
}

func (m *Manager) signDevice(c deviceClaim) string {
	payload, _ := json.Marshal(c) // cannot fail: plain struct
	p := base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, m.deviceKey)
	mac.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// knownDevice returns the request's valid, unexpired device claim, or nil.
func (m *Manager) knownDevice(r *http.Request) *deviceClaim {
	c, err := r.Cookie(deviceCookieName(m.secureFor(r)))
	if err != nil || len(c.Value) > 1024 {
		return nil
	}
	p, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return nil
	}
	mac := hmac.New(sha256.New, m.deviceKey)
	mac.Write([]byte(p))
	if !hmac.Equal(got, mac.Sum(nil)) {
		return nil
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil
	}
	var claim deviceClaim
	if json.Unmarshal(payload, &claim) != nil || claim.Device == "" {
		return nil
	}
	if !m.now().Before(time.Unix(claim.Expires, 0)) {
		return nil
	}
	return &claim
}

// RememberDevice marks the browser as a known device of user u (call it
// after a successful sign-in): it keeps the device id the browser already
// had for u, or makes one, and extends the cookie to DeviceTTL.
func (m *Manager) RememberDevice(w http.ResponseWriter, r *http.Request, userID int64, email string) {
	email = normalizeLoginEmail(email)
	id := ""
	if c := m.knownDevice(r); c != nil && c.UserID == userID {
		id = c.Device
	} else {
		var raw [16]byte
		_, _ = rand.Read(raw[:])
		id = hex.EncodeToString(raw[:])
	}
	exp := m.now().Add(DeviceTTL)
	secure := m.secureFor(r)
	http.SetCookie(w, &http.Cookie{
		Name:     deviceCookieName(secure),
		Value:    m.signDevice(deviceClaim{UserID: userID, Email: email, Device: id, Expires: exp.Unix()}),
		Path:     "/",
		Expires:  exp,
		MaxAge:   int(DeviceTTL / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	})
}

func deviceCookieName(secure bool) string {
	if secure {
		return SecureDeviceCookieName
	}
	return DeviceCookieName
}
