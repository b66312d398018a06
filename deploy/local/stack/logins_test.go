package stack

import (
	"strings"
	"testing"
)

// A login is named after its service and database, and stays a plain
// identifier of at most 63 bytes whatever the database is called.
func TestLoginName(t *testing.T) {
	long := strings.Repeat("x", 60)
	for _, c := range []struct{ url, want string }{
		{"postgres://postgres@127.0.0.1:54320/cmmsflow?sslmode=disable", "svc_pmgen_cmmsflow"},
		{"postgres://postgres@127.0.0.1:5432/e2e_1a2b3c4d", "svc_pmgen_e2e_1a2b3c4d"},
		{"postgres://postgres@127.0.0.1:5432/", "svc_pmgen_cmmsflow"},
	} {
		if got := loginName("pmgen", c.url); got != c.want {
			t.Errorf("%s: %q, want %q", c.url, got, c.want)
		}
	}
	for _, u := range []string{"postgres://h/" + long, "postgres://h/Fleet-DB"} {
		got := loginName("featurejob", u)
		if len(got) > 63 || !isIdent(got) || !strings.HasPrefix(got, "svc_featurejob_") {
			t.Errorf("%s: %q, want a plain identifier of at most 63 bytes", u, got)
		}
		if other := loginName("featurejob", u+"2"); other == got {
			t.Errorf("%s and %s2 share the login %q", u, u, got)
		}
	}
}
