package cli

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// failedKPIRun adds a weekly_kpi_report run whose notifier failed, with the
// reporter's report.generated in the outbox.
func (c *control) failedKPIRun(t *testing.T, runID string) {
	t.Helper()
	c.insertRun(t, runID, events.WeeklyKPIReport, "failed", time.Now().Add(-time.Hour))
	c.exec(t, `UPDATE steps SET state = 'failed', error = 'smtp refused', figures = '{}' WHERE run_id = $1 AND step = 'notifier'`, runID)
	ev, err := eventing.New(events.ReportGenerated, events.Source(events.Reporter), runID, events.WeeklyKPIReport, "",
		&eventsv1.ReportGenerated{IsoWeek: "2026-W47"})
	if err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(context.Background(), c.pool, func(tx pgx.Tx) error { return eventing.Emit(context.Background(), tx, ev) }); err != nil {
		t.Fatal(err)
	}
}

func TestRetryWait(t *testing.T) {
	c := newControl(t)
	const runID = "scheduled__2026-11-23T08:00:00+00:00"
	c.failedKPIRun(t, runID)

	r := run(t, c.env(c.adminTok), "retry", runID, "--dry-run")
	if r.code != ExitOK || r.stdout != "dry run: run "+runID+" of weekly_kpi_report would run again from notifier (attempt 2); nothing changed\n" {
		t.Fatalf("retry --dry-run: %+v", r)
	}
	// The notifier's second attempt, as the projection records it.
	var wg sync.WaitGroup
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			var state string
			if err := c.pool.QueryRow(ctx, `SELECT state FROM runs WHERE run_id = $1`, runID).Scan(&state); err != nil || state == "running" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, q := range []string{
			`UPDATE steps SET state = 'running', attempts = 2, started_at = now() WHERE run_id = $1 AND step = 'notifier'`,
			`UPDATE steps SET state = 'success', ended_at = now(), figures = '{"emails_sent": 1}' WHERE run_id = $1 AND step = 'notifier'`,
			`UPDATE runs SET state = 'success', ended_at = now() WHERE run_id = $1`,
		} {
			time.Sleep(120 * time.Millisecond)
			c.exec(t, q, runID)
		}
	})
	r = run(t, c.env(c.adminTok), "retry", runID, "--wait", "--poll-interval", "30ms")
	wg.Wait()
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("retry --wait: %+v", r)
	}
	for _, re := range []string{
		`^run ` + regexp.QuoteMeta(runID) + ` of weekly_kpi_report runs again from notifier \(attempt 2\)\n`,
		`(?m)^\d\d:\d\d:\d\d  notifier\s+running \(attempt 2\)$`,
		`(?m)^\d\d:\d\d:\d\d  notifier\s+success \(attempt 2\) in \S+  emails_sent=1$`,
		`(?m)^\d\d:\d\d:\d\d  run\s+success\nrun \S+ succeeded in \S+\n$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("retry --wait output lacks %s:\n%s", re, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "reporter") {
		t.Errorf("the reporter, not re-run, is in the progress:\n%s", r.stdout)
	}
}

func TestRetryErrors(t *testing.T) {
	c := newControl(t)
	c.failedKPIRun(t, "failed-run")
	c.insertRun(t, "ok-run", events.PreventiveMaintenance, "success", time.Now())
	c.exec(t, `UPDATE runs SET state = 'running' WHERE run_id = 'ok-run'`)
	for _, tc := range []struct {
		name string
		tok  string
		args []string
		code int
		want string
	}{
		{"viewer", c.viewerTok, []string{"retry", "failed-run"}, ExitError, "permission denied (403)"},
		{"unknown step", c.adminTok, []string{"retry", "failed-run", "--from", "nope"}, ExitError,
			`invalid request (400): from_step: "nope" is not a step of weekly_kpi_report: want one of reporter, notifier`},
		{"running run", c.adminTok, []string{"retry", "ok-run"}, ExitError, `conflict (409): run "ok-run" is running`},
		{"unknown run", c.adminTok, []string{"retry", "nope"}, ExitError, `not found (404): run "nope" not found`},
		{"no run", c.adminTok, []string{"retry"}, ExitUsage, "accepts 1 arg(s), received 0"},
	} {
		r := run(t, c.env(tc.tok), tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%s: %d stdout %q stderr %q; want %d and %q", tc.name, r.code, r.stdout, r.stderr, tc.code, tc.want)
		}
	}
}
