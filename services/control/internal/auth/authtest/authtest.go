// Package authtest makes API tokens and users for control's tests.
package authtest

import (
	"crypto/rand"
	"encoding/base64"

	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
)

// Token makes a token of role r named name and its API_TOKENS entry, for a
// test's package-level variables (it panics if the system has no
// randomness).
func Token(r auth.Role, name string) (token, entry string) {
	token, entry, err := auth.NewToken(r, name)
	if err != nil {
		panic(err)
	}
	return token, entry
}

// User makes a user of role r named name, with a random password, and its
// API_USERS entry (it panics if the system has no randomness).
func User(r auth.Role, name string) (password, entry string) {
	password = rand.Text()
	entry, err := auth.NewUser(name, r, password)
	if err != nil {
		panic(err)
	}
	return password, entry
}

// Basic is the Authorization value of HTTP Basic credentials.
func Basic(name, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(name+":"+password))
}
