package cli

import (
	"strings"
	"testing"
)

// A malformed RUN_ID is a usage error, refused before control is called
// (none answers at 127.0.0.1:1: a call would fail with status 1).
func TestRunIDArgumentValidated(t *testing.T) {
	env := map[string]string{EnvControl: "http://127.0.0.1:1", EnvToken: "cmf_x"}
	long := strings.Repeat("r", 251)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", ".."}, `RUN_ID "..": ".." is not a run id: a URL path cannot name it`},
		{[]string{"run", "."}, `RUN_ID ".": "." is not a run id: a URL path cannot name it`},
		{[]string{"retry", "a/b"}, `RUN_ID "a/b": must not contain "/"`},
		{[]string{"mark", "a\tb", "failed"}, `RUN_ID "a\tb": must not contain control characters`},
		{[]string{"run", long}, `RUN_ID "` + long + `": 251 characters, more than 250`},
		{[]string{"retry", ""}, `RUN_ID "": required`},
	} {
		r := run(t, env, tc.args...)
		if r.code != ExitUsage || !strings.HasPrefix(r.stderr, "cmmsflow: "+tc.want+"\n") {
			t.Errorf("%q: %+v, want usage error %q", tc.args, r, tc.want)
		}
	}
	if r := run(t, env, "run", "scheduled__2026-12-02T06:00:00+00:00"); r.code != ExitError || !strings.Contains(r.stderr, "cannot reach control") {
		t.Errorf("a well-formed run id should reach for control: %+v", r)
	}
}
