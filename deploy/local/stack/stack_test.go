package stack

import (
	"regexp"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/password"
)

// Each start gets an admin user with a random password, like its token.
func TestDefaultAdminUser(t *testing.T) {
	a, b := Options{Root: "/x"}, Options{Root: "/x"}
	if err := a.defaults(); err != nil {
		t.Fatal(err)
	}
	if err := b.defaults(); err != nil {
		t.Fatal(err)
	}
	if a.AdminUser != "admin" || !regexp.MustCompile(`^[A-Za-z0-9_-]{24}$`).MatchString(a.AdminPassword) {
		t.Fatalf("admin user %q, password %q", a.AdminUser, a.AdminPassword)
	}
	if a.AdminPassword == b.AdminPassword {
		t.Fatal("two starts have the same password")
	}
	c := Options{Root: "/x", AdminUser: "me", AdminPassword: "pw"}
	if err := c.defaults(); err != nil || c.AdminUser != "me" || c.AdminPassword != "pw" {
		t.Fatalf("given user and password not kept: %+v %v", c, err)
	}
}

func TestUserEntry(t *testing.T) {
	entry, err := userEntry("admin", "s3cret", "admin")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(entry, ":")
	if len(f) != 3 || f[0] != "admin" || f[2] != "admin" {
		t.Fatalf("entry %q, want admin:<hash>:admin", entry)
	}
	if ok, err := password.Verify(f[1], "s3cret"); !ok || err != nil {
		t.Fatalf("the hash does not verify the password: %v %v", ok, err)
	}
}
