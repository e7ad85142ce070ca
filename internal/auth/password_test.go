package auth

import (
	"regexp"
	"strings"
	"testing"
)

func TestHashPasswordPHCFormat(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("hunter2", TestParams)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(h) {
		t.Fatalf("hash %q is not argon2id PHC with 16-byte salt and 32-byte key", h)
	}
	h2, _ := HashPassword("hunter2", TestParams)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	def, err := HashPassword("x", DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(def, "$argon2id$v=19$m=65536,t=1,p=2$") {
		t.Fatalf("default params hash %q", def)
	}
}

func TestVerifyPassword(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse", TestParams)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pw   string
		want bool
	}{
		{"correct horse", true},
		{"correct horsE", false},
		{"correct horse ", false},
		{"", false},
	} {
		ok, err := VerifyPassword(c.pw, h)
		if err != nil || ok != c.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", c.pw, ok, err, c.want)
		}
	}
	// A reference vector from the argon2 reference implementation's format:
	// the hash carries its own parameters, so it verifies whatever the
	// current defaults are.
	other, _ := HashPassword("pw", Params{Memory: 128, Time: 2, Threads: 2, SaltLen: 8, KeyLen: 16})
	if ok, err := VerifyPassword("pw", other); !ok || err != nil {
		t.Errorf("hash with other parameters does not verify: %v %v", ok, err)
	}
}

func TestVerifyPasswordRejectsMalformedHashes(t *testing.T) {
	t.Parallel()
	good, _ := HashPassword("pw", TestParams)
	parts := strings.Split(good, "$")
	for name, h := range map[string]string{
		"empty":          "",
		"bcrypt":         "$2a$10$abcdefghijklmnopqrstuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu",
		"argon2i":        strings.Replace(good, "argon2id", "argon2i", 1),
		"version":        strings.Replace(good, "v=19", "v=16", 1),
		"no params":      "$argon2id$v=19$$" + parts[4] + "$" + parts[5],
		"huge memory":    strings.Replace(good, "m=64", "m=4294967295", 1),
		"huge time":      strings.Replace(good, "t=1", "t=1000", 1),
		"unknown param":  strings.Replace(good, "p=1", "p=1,x=2", 1),
		"bad salt":       "$argon2id$v=19$m=64,t=1,p=1$!!!$" + parts[5],
		"short key":      "$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$AAAA",
		"too many parts": good + "$x",
	} {
		if ok, err := VerifyPassword("pw", h); ok || err == nil {
			t.Errorf("%s: VerifyPassword = %v, %v; want false and an error", name, ok, err)
		}
	}
	if _, err := HashPassword(strings.Repeat("x", MaxPasswordLen+1), TestParams); err == nil {
		t.Error("an over-long password was hashed")
	}
	if ok, _ := VerifyPassword(strings.Repeat("x", MaxPasswordLen+1), good); ok {
		t.Error("an over-long password verified")
	}
}
