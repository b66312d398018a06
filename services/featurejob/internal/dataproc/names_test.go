package dataproc

import (
	"regexp"
	"strings"
	"testing"
)

var (
	clusterNameRe = regexp.MustCompile(`^[a-z](?:[-a-z0-9]{0,49}[a-z0-9])?$`)
	batchIDRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{2,61}[a-z0-9]$`)
	jobIDRe       = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,100}$`)
	labelValueRe  = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
)

func TestResourceID(t *testing.T) {
	for _, run := range []string{
		"manual__2024-06-02T02:00:00+00:00",
		"scheduled__2024-06-02T02:00:00.123456+00:00",
		"r1",
		"___",
		"ÄÖÜ-run",
		strings.Repeat("x", 300),
		"-leading-and-trailing-",
	} {
		id := ResourceID(run)
		if id != ResourceID(run) {
			t.Errorf("ResourceID(%q) not deterministic", run)
		}
		for name, re := range map[string]*regexp.Regexp{"cluster name": clusterNameRe, "batch id": batchIDRe} {
			if !re.MatchString(id) {
				t.Errorf("ResourceID(%q) = %q: not a valid %s", run, id, name)
			}
		}
		if j := jobID(id, maxAttempts); !jobIDRe.MatchString(j) {
			t.Errorf("job id %q invalid", j)
		}
		if v := labelValue(run); !labelValueRe.MatchString(v) {
			t.Errorf("labelValue(%q) = %q: invalid label value", run, v)
		}
	}
	if got, want := ResourceID("manual__2024-06-02T02:00:00+00:00"), "cmmsflow-manual-2024-06-02t02-00-00-00-00-"; !strings.HasPrefix(got, want) {
		t.Errorf("ResourceID = %q, want prefix %q", got, want)
	}
	// Ids that sanitise alike stay distinct.
	if ResourceID("run:1") == ResourceID("run/1") {
		t.Error("run:1 and run/1 share a resource id")
	}
	if got := labelValue("manual__2024-06-02T02:00:00+00:00"); got != "manual__2024-06-02t02-00-00-00-00" {
		t.Errorf("labelValue = %q", got)
	}
}

func TestScriptObject(t *testing.T) {
	a, b := ScriptObject([]byte("print(1)")), ScriptObject([]byte("print(2)"))
	if a == b || a != ScriptObject([]byte("print(1)")) {
		t.Errorf("ScriptObject not content-addressed: %q %q", a, b)
	}
	if !regexp.MustCompile(`^code/features-[0-9a-f]{12}\.py$`).MatchString(a) {
		t.Errorf("ScriptObject = %q", a)
	}
}
