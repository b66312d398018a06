// Package authtest makes API tokens for control's tests.
package authtest

import "github.com/cmmsflow/cmmsflow/services/control/internal/auth"

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
