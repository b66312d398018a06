package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/scheduler/internal/sync/synctest"
)

func env(t *testing.T, fake *synctest.Server) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "proj-1")
	t.Setenv("SCHEDULER_LOCATION", "europe-west1")
	t.Setenv("SCHEDULER_EMULATOR_HOST", fake.Addr)
	t.Setenv("CRON_TIME_ZONE", "")
	t.Setenv("SCHEDULER_JOB_PREFIX", "")
	t.Setenv("LOG_FORMAT", "text")
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), err
}

// --dry-run prints the plan and writes nothing; a run applies it; the next
// run finds nothing to do.
func TestRun(t *testing.T) {
	fake := synctest.New(t)
	env(t, fake)
	out, err := runCmd(t, "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if fake.Writes() != 0 || !strings.Contains(out, "3 to create") || !strings.Contains(out, "dry run: nothing changed") {
		t.Fatalf("dry run: %d writes\n%s", fake.Writes(), out)
	}
	if out, err = runCmd(t); err != nil || fake.Calls("CreateJob") != 3 || !strings.Contains(out, "applied") {
		t.Fatalf("sync: %v, %d creates\n%s", err, fake.Calls("CreateJob"), out)
	}
	if out, err = runCmd(t); err != nil || fake.Writes() != 3 || !strings.Contains(out, "in sync: nothing to do") {
		t.Fatalf("second sync: %v, %d writes\n%s", err, fake.Writes(), out)
	}
	t.Setenv("CRON_TIME_ZONE", "Europe/Berlin")
	if out, err = runCmd(t); err != nil || fake.Calls("UpdateJob") != 3 {
		t.Fatalf("zone change: %v, %d updates\n%s", err, fake.Calls("UpdateJob"), out)
	}
	for name, j := range fake.Jobs() {
		if j.GetTimeZone() != "Europe/Berlin" {
			t.Errorf("%s: time zone %q", name, j.GetTimeZone())
		}
	}
}

func TestRunErrors(t *testing.T) {
	fake := synctest.New(t)
	env(t, fake)
	if out, err := runCmd(t, "extra"); err == nil || !strings.Contains(out, "usage: sync") {
		t.Errorf("extra argument: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "--bogus"); err == nil {
		t.Error("unknown flag accepted")
	}
	t.Setenv("CRON_TIME_ZONE", "Mars/Olympus")
	if _, err := runCmd(t); err == nil || !strings.Contains(err.Error(), "CRON_TIME_ZONE") {
		t.Errorf("bad zone: %v", err)
	}
	t.Setenv("CRON_TIME_ZONE", "")
	t.Setenv("SCHEDULER_LOCATION", "")
	if _, err := runCmd(t); err == nil || !strings.Contains(err.Error(), "SCHEDULER_LOCATION") {
		t.Errorf("no location: %v", err)
	}
	if fake.Writes() != 0 {
		t.Errorf("%d writes", fake.Writes())
	}
}
