package password

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

var phc = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashRoundTrip(t *testing.T) {
	for _, pw := range []string{"correct horse battery staple", "", "ünïcødé:with:colons", strings.Repeat("x", 200)} {
		h, err := Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		if !phc.MatchString(h) {
			t.Fatalf("hash %q is not an argon2id PHC string with the default parameters", h)
		}
		if ok, err := Verify(h, pw); !ok || err != nil {
			t.Fatalf("Verify(Hash(%q)) = %v, %v", pw, ok, err)
		}
		if ok, err := Verify(h, pw+"x"); ok || err != nil {
			t.Fatalf("a wrong password: %v, %v", ok, err)
		}
		if err := Validate(h); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := Hash("same")
	b, _ := Hash("same")
	if a == b {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

// The parameters are read from the hash, not assumed.
func TestVerifyUsesTheHashsParameters(t *testing.T) {
	for _, p := range []params{{memoryKiB: 64, iterations: 1, threads: 1}, {memoryKiB: 4096, iterations: 3, threads: 4}} {
		h, err := hashWith("s3cret", p)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := Verify(h, "s3cret"); !ok || err != nil {
			t.Fatalf("%s: %v, %v", h, ok, err)
		}
		if ok, _ := Verify(h, "S3cret"); ok {
			t.Fatalf("%s: a wrong password verifies", h)
		}
	}
}

func TestVerifyBcrypt(t *testing.T) {
	raw, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(raw) // $2a$
	for _, variant := range []string{h, "$2b$" + h[4:], "$2y$" + h[4:]} {
		if ok, err := Verify(variant, "s3cret"); !ok || err != nil {
			t.Fatalf("%.4s: %v, %v", variant, ok, err)
		}
		if ok, err := Verify(variant, "s3crex"); ok || err != nil {
			t.Fatalf("%.4s, wrong password: %v, %v", variant, ok, err)
		}
		if err := Validate(variant); err != nil {
			t.Fatal(err)
		}
	}
	// bcrypt reads 72 bytes: a longer password is not the one hashed.
	long := strings.Repeat("a", 72)
	raw, _ = bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
	if ok, _ := Verify(string(raw), long); !ok {
		t.Fatal("72-byte password refused")
	}
	if ok, _ := Verify(string(raw), long+"b"); ok {
		t.Fatal("a 73-byte password verifies against the hash of its first 72 bytes")
	}
}

func TestMalformedHashes(t *testing.T) {
	good, _ := hashWith("pw", params{memoryKiB: 64, iterations: 1, threads: 1})
	f := strings.Split(good, "$") // "", argon2id, v=19, m=64,t=1,p=1, salt, key
	with := func(i int, v string) string {
		g := append([]string(nil), f...)
		g[i] = v
		return strings.Join(g, "$")
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for _, c := range []struct{ name, hash string }{
		{"empty", ""},
		{"plain text", "hunter2"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"sha256", "$5$rounds=5000$salt$hash"},
		{"too few fields", strings.Join(f[:5], "$")},
		{"too many fields", good + "$x"},
		{"version 16", with(2, "v=16")},
		{"no version", strings.Join(append(f[:2:2], f[3:]...), "$")},
		{"parameters out of order", with(3, "t=1,m=64,p=1")},
		{"parameter missing", with(3, "m=64,t=1")},
		{"parameter not a number", with(3, "m=64,t=x,p=1")},
		{"negative parameter", with(3, "m=64,t=-1,p=1")},
		{"t zero", with(3, "m=64,t=0,p=1")},
		{"p zero", with(3, "m=64,t=1,p=0")},
		{"p over 255", with(3, "m=4096,t=1,p=256")},
		{"m under 8p", with(3, "m=7,t=1,p=1")},
		{"m over the limit", with(3, "m=4194304,t=1,p=1")},
		{"t over the limit", with(3, "m=64,t=101,p=1")},
		{"salt not base64", with(4, "!!!!!!!!!!")},
		{"salt padded", with(4, f[4]+"==")},
		{"salt too short", with(4, "AAAAAA")},
		{"key not base64", with(5, "*"+f[5][1:])},
		{"key too short", with(5, "AAAAAAAAAA")},
		{"bcrypt truncated", string(bc[:40])},
		{"bcrypt bad characters", string(bc[:30]) + strings.Repeat("!", 30)},
		{"bcrypt cost over the limit", "$2b$17$" + string(bc[7:])},
		{"bcrypt one-digit cost", "$2b$4$" + string(bc[7:])},
	} {
		t.Run(c.name, func(t *testing.T) {
			const pw = "Tr0ub4dor&3"
			ok, err := Verify(c.hash, pw)
			if ok || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Verify: %v, %v; want ErrMalformed", ok, err)
			}
			if err := Validate(c.hash); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Validate: %v; want ErrMalformed", err)
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), f[4]) || strings.Contains(err.Error(), string(bc[7:29])) {
				t.Fatalf("the error quotes the password or the hash: %v", err)
			}
		})
	}
}
