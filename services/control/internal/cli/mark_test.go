package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

func TestMark(t *testing.T) {
	c := newControl(t)
	const runID = "scheduled__2026-11-23T08:00:00+00:00"
	c.failedKPIRun(t, runID)

	r := run(t, c.env(c.adminTok), "mark", runID, "skipped", "--step", "notifier", "--dry-run")
	if r.code != ExitOK || !strings.HasPrefix(r.stdout, "dry run: the run would be as follows; nothing changed\n") ||
		c.runState(t, runID) != "failed" {
		t.Fatalf("mark --dry-run: %+v", r)
	}
	r = run(t, c.env(c.adminTok), "mark", runID, "skipped", "--step", "notifier")
	for _, re := range []string{`(?m)^state:\s+success$`, `(?m)^state set by:\s+ops$`, `(?m)^notifier\s+skipped\s`} {
		if r.code != ExitOK || !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("mark --step: output lacks %s: %+v", re, r)
		}
	}
	r = run(t, c.env(c.adminTok), "mark", runID, "failed")
	if r.code != ExitOK || !regexp.MustCompile(`(?m)^error:\s+marked failed by ops$`).MatchString(r.stdout) {
		t.Fatalf("mark failed: %+v", r)
	}
	r = run(t, c.env(c.adminTok), "mark", runID, "running")
	if r.code != ExitError || !strings.Contains(r.stderr, "not one of success, failed, queued") {
		t.Fatalf("mark running: %+v", r)
	}
	r = run(t, c.env(c.viewerTok), "mark", runID, "success")
	if r.code != ExitError || c.runState(t, runID) != "failed" {
		t.Fatalf("a viewer's mark: %+v", r)
	}
}

func (c *control) runState(t *testing.T, runID string) string {
	t.Helper()
	var state string
	if err := c.pool.QueryRow(context.Background(), `SELECT state FROM runs WHERE run_id = $1`, runID).Scan(&state); err != nil {
		t.Fatal(err)
	}
	return state
}
