// Package password hashes and verifies login passwords. New hashes are
// argon2id in the PHC string format ($argon2id$v=19$m=…,t=…,p=…$salt$key,
// unpadded standard base64); verification also accepts bcrypt hashes
// ($2a$, $2b$, $2y$), so hashes made by other tools (htpasswd -B, an
// existing user table) can be configured as they are.
//
// No error of this package contains a password, nor the salt or key of a
// hash: they are safe to log and to show in configuration errors.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// params are an argon2id hash's cost parameters.
type params struct {
	memoryKiB  uint32
	iterations uint32
	threads    uint8
}

// defaults are the parameters of new hashes: OWASP's minimum for argon2id
// (Password Storage Cheat Sheet: 19 MiB, 2 passes, 1 lane). A server checking
// logins pays that per verification — about 20-40 ms of one core and 19 MiB —
// which keeps concurrent logins affordable while an offline guess still costs
// an attacker the same memory-hard work.
var defaults = params{memoryKiB: 19456, iterations: 2, threads: 1}

const (
	saltLen = 16 // bytes of random salt in a new hash
	keyLen  = 32 // bytes of derived key in a new hash
)

// Bounds on what a configured hash may ask for. A hash is configuration, and
// a typo such as m=1945600 would make every login allocate 1.9 GiB, or a
// bcrypt cost of 31 take days: refuse it up front instead.
const (
	maxMemoryKiB  = 1 << 21 // 2 GiB, RFC 9106's first recommended option
	maxIterations = 100
	minSaltLen    = 8  // argon2's minimum
	minKeyLen     = 16 // shorter keys are too easy to collide
	maxKeyLen     = 1024
	maxBcryptCost = 16 // about 5 s per verification
	// bcrypt reads only a password's first 72 bytes; bcrypt.GenerateFromPassword
	// refuses longer ones, so no configured hash was made from one.
	maxBcryptPassword = 72
)

// ErrMalformed is wrapped by every error about a hash that cannot be used.
var ErrMalformed = errors.New("malformed password hash")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Hash returns an argon2id PHC string of pw with a new random salt.
func Hash(pw string) (string, error) {
	return hashWith(pw, defaults)
}

func hashWith(pw string, p params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.iterations, p.memoryKiB, p.threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.memoryKiB, p.iterations, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether pw is the password of hash, an argon2id PHC string
// or a bcrypt hash, comparing in constant time. A wrong password is
// (false, nil); a hash that cannot be used is an error wrapping ErrMalformed.
func Verify(hash, pw string) (bool, error) {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		h, err := parseArgon2id(hash)
		if err != nil {
			return false, err
		}
		got := argon2.IDKey([]byte(pw), h.salt, h.iterations, h.memoryKiB, h.threads, uint32(len(h.key)))
		return subtle.ConstantTimeCompare(got, h.key) == 1, nil
	case isBcrypt(hash):
		return verifyBcrypt(hash, pw)
	}
	return false, malformed("not an argon2id ($argon2id$…) or bcrypt ($2a$, $2b$, $2y$) hash")
}

// Validate checks that hash can be verified against, without the cost of a
// verification: for configuration parsed at start-up.
func Validate(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		_, err := parseArgon2id(hash)
		return err
	case isBcrypt(hash):
		_, err := bcryptCost(hash)
		return err
	}
	return malformed("not an argon2id ($argon2id$…) or bcrypt ($2a$, $2b$, $2y$) hash")
}

type argon2idHash struct {
	params
	salt, key []byte
}

// parseArgon2id parses "$argon2id$v=19$m=M,t=T,p=P$salt$key", the form the
// reference implementation writes.
func parseArgon2id(hash string) (argon2idHash, error) {
	var h argon2idHash
	f := strings.Split(hash, "$")
	if len(f) != 6 || f[0] != "" {
		return h, malformed("argon2id: want $argon2id$v=19$m=…,t=…,p=…$salt$key")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, malformed("argon2id: only version 19 (v=19) is supported")
	}
	var err error
	if h.params, err = parseParams(f[3]); err != nil {
		return h, err
	}
	b64 := base64.RawStdEncoding.Strict()
	if h.salt, err = b64.DecodeString(f[4]); err != nil || len(h.salt) < minSaltLen {
		return h, malformed("argon2id: the salt is not unpadded base64 of at least %d bytes", minSaltLen)
	}
	if h.key, err = b64.DecodeString(f[5]); err != nil || len(h.key) < minKeyLen || len(h.key) > maxKeyLen {
		return h, malformed("argon2id: the key is not unpadded base64 of %d to %d bytes", minKeyLen, maxKeyLen)
	}
	return h, nil
}

// parseParams parses "m=M,t=T,p=P" within the bounds above.
func parseParams(s string) (params, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return params{}, malformed("argon2id: want parameters m=…,t=…,p=…")
	}
	var v [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		digits, ok := strings.CutPrefix(parts[i], name+"=")
		n, err := strconv.ParseUint(digits, 10, 32)
		if !ok || err != nil {
			return params{}, malformed("argon2id: want parameters m=…,t=…,p=… (decimal)")
		}
		v[i] = n
	}
	m, t, p := v[0], v[1], v[2]
	switch {
	case p < 1 || p > 255:
		return params{}, malformed("argon2id: p must be 1 to 255")
	case t < 1 || t > maxIterations:
		return params{}, malformed("argon2id: t must be 1 to %d", maxIterations)
	case m < 8*p || m > maxMemoryKiB:
		return params{}, malformed("argon2id: m must be 8×p to %d KiB", maxMemoryKiB)
	}
	return params{memoryKiB: uint32(m), iterations: uint32(t), threads: uint8(p)}, nil
}

// A bcrypt hash is "$2b$NN$" and 53 characters of bcrypt's base64 alphabet.
const (
	bcryptLen      = 60
	bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

func isBcrypt(hash string) bool {
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		if strings.HasPrefix(hash, prefix) {
			return true
		}
	}
	return false
}

// bcryptCost checks a bcrypt hash's shape and cost. bcrypt's own errors are
// not passed on: some quote bytes of the hash.
func bcryptCost(hash string) (int, error) {
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil || len(hash) != bcryptLen || strings.Trim(hash[bcryptLen-53:], bcryptAlphabet) != "" {
		return 0, malformed("bcrypt: want $2b$<two-digit cost>$<53 characters of salt and hash>")
	}
	if cost > maxBcryptCost {
		return 0, malformed("bcrypt: cost %d is over the limit of %d", cost, maxBcryptCost)
	}
	return cost, nil
}

func verifyBcrypt(hash, pw string) (bool, error) {
	if _, err := bcryptCost(hash); err != nil {
		return false, err
	}
	if len(pw) > maxBcryptPassword {
		// bcrypt would compare the first 72 bytes only and accept any suffix.
		return false, nil
	}
	switch err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)); {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	}
	return false, malformed("bcrypt: the hash cannot be read")
}
