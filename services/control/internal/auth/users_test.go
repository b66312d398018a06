package auth

import (
	"strings"
	"testing"
)

// Cheap hashes of "airflow-pw" (argon2id m=64 KiB, bcrypt cost 4), so the
// tests do not spend a default verification each.
const (
	argonPW  = "$argon2id$v=19$m=64,t=1,p=1$5e9n+8bJn/Y58lqxSpzR0A$/tFaSJ/3Ld9bmj9LdivwKz4iSPIXJNDYk37xowVjWtg"
	bcryptPW = "$2a$04$v5IyIInvE4tq2u7kwrvAgORyZdln.KI45tgRCxhv31Olhzpaz98pi"
)

func TestAcceptUsers(t *testing.T) {
	good := []struct {
		in    string
		names map[string]Role
	}{
		{"", map[string]Role{}},
		{" ,\n", map[string]Role{}},
		{"alice:" + argonPW + ":admin", map[string]Role{"alice": RoleAdmin}},
		{"alice:" + argonPW + ":admin,bob:" + bcryptPW + ":viewer", map[string]Role{"alice": RoleAdmin, "bob": RoleViewer}},
		{" alice:" + argonPW + ":admin ,\n bob@x.io:" + argonPW + ":viewer,", map[string]Role{"alice": RoleAdmin, "bob@x.io": RoleViewer}},
	}
	for _, c := range good {
		tk, _ := ParseTokens(hashA + ":admin:ops")
		if err := tk.AcceptUsers(c.in); err != nil || tk.Users() != len(c.names) {
			t.Errorf("%q: %v, %d users", c.in, err, tk.Users())
			continue
		}
		for name, role := range c.names {
			if u, ok := tk.users[name]; !ok || u.id.Role != role || u.id.Name != name {
				t.Errorf("%q: user %s is %+v", c.in, name, u)
			}
		}
	}
	salt := strings.Split(argonPW, "$")[4]
	for _, c := range []struct{ in, want string }{
		{"alice:" + argonPW, "entry 1: want <name>:<argon2id or bcrypt hash>:<role>"},
		{"alice:" + argonPW + ":root", "entry 1: user alice: unknown role"},
		{"alice:" + argonPW + ":admin,bob:" + argonPW + ":root", "entry 2: user bob: unknown role"},
		{"a b:" + argonPW + ":admin", "entry 1: the name must be"},
		{":" + argonPW + ":admin", "entry 1: the name must be"},
		{"alice:" + strings.Replace(argonPW, ",p=1", "", 1) + ":admin", "entry 1: user alice: malformed password hash"},
		{"alice:" + strings.Replace(argonPW, "m=64", "m=6x", 1) + ":admin", "entry 1:"},
		{"alice:hunter2:admin", "entry 1: user alice: malformed password hash"},
		{"alice::admin", "entry 1: user alice: malformed password hash"},
		{"alice:" + bcryptPW[:50] + ":viewer", "entry 1: user alice: malformed password hash"},
		{"alice:" + argonPW + ":admin:extra", "entry 1: want"},
		{"alice:" + argonPW + ":admin,alice:" + bcryptPW + ":viewer", `entry 2: user "alice" is listed twice`},
		{"ops:" + argonPW + ":admin", `entry 1: name "ops" is a token's name`},
	} {
		tk, _ := ParseTokens(hashA + ":admin:ops")
		err := tk.AcceptUsers(c.in)
		if err == nil || !strings.Contains(err.Error(), "API_USERS "+c.want) {
			t.Errorf("%q: %v, want an error with %q", c.in, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), bcryptPW[7:30]) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error quotes the hash: %v", err)
		}
	}
}

func TestNewUser(t *testing.T) {
	entry, err := NewUser("airflow", RoleViewer, "s3cret,with:colons")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(entry, "airflow:$argon2id$v=19$m=19456,t=2,p=1$") || !strings.HasSuffix(entry, ":viewer") {
		t.Fatalf("entry %q", entry)
	}
	tk, _ := ParseTokens("")
	if err := tk.AcceptUsers(entry + "," + entry[:len(entry)-len("viewer")] + "admin"); err == nil {
		t.Fatal("the same user twice accepted")
	}
	if err := tk.AcceptUsers(entry); err != nil || tk.Users() != 1 {
		t.Fatalf("the entry does not parse: %v", err)
	}
	g := NewGuard(tk, Policy, RateLimit{}, discard)
	if _, err := g.CheckBearerOrBasic(t.Context(), methodRead, basic("airflow", "s3cret,with:colons")); err != nil {
		t.Fatalf("the password does not log in: %v", err)
	}
	for _, c := range []struct {
		name string
		role Role
		pw   string
	}{{"a b", RoleAdmin, "x"}, {"", RoleAdmin, "x"}, {"ok", RoleNone, "x"}, {"ok", RoleAdmin, ""}} {
		if _, err := NewUser(c.name, c.role, c.pw); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
