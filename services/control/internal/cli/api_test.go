package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/services/control/internal/app"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
)

// discardPublisher is the outbox relay's publisher in tests: it drops
// every message (no pipeline service runs; the tests move runs on by hand).
type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, string, eventing.Message) error { return nil }

// control is a control API served on a loopback port over a fresh database,
// with an admin and a viewer token.
type control struct {
	pool                *pgxpool.Pool
	url                 string
	adminTok, viewerTok string
}

func newControl(t *testing.T) *control {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	adminTok, adminEntry, err := auth.NewToken(auth.RoleAdmin, "ops")
	if err != nil {
		t.Fatal(err)
	}
	viewerTok, viewerEntry, err := auth.NewToken(auth.RoleViewer, "dash")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	relay := eventing.NewRelay(pool, discardPublisher{}, log, time.Hour)
	s := &service.Service{
		Name: events.Control, Log: log, Pool: pool, Relay: relay, Mux: http.NewServeMux(),
		Router: eventing.NewRouter(eventing.RouterConfig{Service: events.Control, Pool: pool, Relay: relay, Log: log}),
	}
	c, err := app.Start(ctx, s, app.Config{APITokens: adminEntry + "," + viewerEntry, TriggerRateLimit: 0, TriggerBurst: 1,
		StaleRunSweepInterval: time.Hour, MissedTickGrace: time.Hour, MissedTickInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = service.NewHTTPServer(ctx, s.Handler)
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		c.Close()
	})
	return &control{pool: pool, url: ts.URL, adminTok: adminTok, viewerTok: viewerTok}
}

// env is the CLI's environment for this control and token.
func (c *control) env(token string) map[string]string {
	return map[string]string{EnvControl: c.url, EnvToken: token}
}

func (c *control) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := c.pool.Exec(context.Background(), q, args...); err != nil {
		t.Error(err)
	}
}

// insertRun adds a finished scheduled run with its steps.
func (c *control) insertRun(t *testing.T, runID, pipeline, state string, queued time.Time) {
	t.Helper()
	c.exec(t, `INSERT INTO runs (run_id, pipeline, state, source, logical_date, queued_at, started_at, ended_at, error)
		VALUES ($1, $2, $3::text, 'scheduled', $4::timestamptz, $4, $4 + interval '1 second', $4 + interval '42 seconds',
		        CASE WHEN $3 = 'failed' THEN 'notifier: smtp refused' ELSE '' END)`,
		runID, pipeline, state, queued)
	pl, _ := events.LookupPipeline(pipeline)
	for i, st := range pl.Steps {
		c.exec(t, `INSERT INTO steps (run_id, step, position, state, attempts, started_at, ended_at, figures, summary)
			VALUES ($1, $2, $3, 'success', 1, $4::timestamptz, $4 + interval '3 seconds', '{"work_orders_created": 12, "score": 0.8125}', 'did its job')`,
			runID, st, i, queued)
	}
}

func TestPipelinesPauseUnpause(t *testing.T) {
	c := newControl(t)
	c.insertRun(t, "scheduled__2026-11-20T06:00:00+00:00", "preventive_maintenance", "success", time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC))

	r := run(t, c.env(c.viewerTok), "pipelines")
	if r.code != ExitOK {
		t.Fatalf("pipelines: %+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 1+len(events.Pipelines) || !regexp.MustCompile(`^ID\s+SCHEDULE\s+PAUSED\s+LAST RUN\s+NEXT RUN$`).MatchString(lines[0]) {
		t.Fatalf("pipelines output:\n%s", r.stdout)
	}
	pm := regexp.MustCompile(`(?m)^preventive_maintenance\s+(.+?)\s+no\s+success \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)
	if !pm.MatchString(r.stdout) {
		t.Errorf("no preventive_maintenance row with its last run:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`(?m)^weekly_kpi_report\s+.+\s+no\s+-\s+\d{4}-`).MatchString(r.stdout) {
		t.Errorf("a never-run pipeline should show - as last run:\n%s", r.stdout)
	}

	// Pausing needs an admin token.
	r = run(t, c.env(c.viewerTok), "pause", "preventive_maintenance")
	if r.code != ExitError || !strings.Contains(r.stderr, "permission denied (403): this command needs an admin token") {
		t.Fatalf("pause as viewer: %+v", r)
	}
	r = run(t, c.env(c.adminTok), "pause", "preventive_maintenance")
	if r.code != ExitOK || !strings.HasPrefix(r.stdout, "preventive_maintenance paused") {
		t.Fatalf("pause: %+v", r)
	}
	r = run(t, c.env(c.viewerTok), "pipelines")
	if !regexp.MustCompile(`(?m)^preventive_maintenance\s+.+\s+yes\s+success`).MatchString(r.stdout) {
		t.Errorf("pipelines after pause:\n%s", r.stdout)
	}
	// --control and --token-stdin override the environment.
	r = runInput(t, strings.NewReader(c.adminTok+"\n"), map[string]string{EnvControl: "http://127.0.0.1:1", EnvToken: "wrong"},
		"unpause", "preventive_maintenance", "--control", c.url, "--token-stdin")
	if r.code != ExitOK || !strings.HasPrefix(r.stdout, "preventive_maintenance unpaused") {
		t.Fatalf("unpause: %+v", r)
	}
	r = run(t, c.env(c.adminTok), "pause", "no_such_pipeline")
	if r.code != ExitError || !strings.Contains(r.stderr, `not found (404): pipeline "no_such_pipeline" not found`) {
		t.Fatalf("pause unknown: %+v", r)
	}
}

func TestAPIErrors(t *testing.T) {
	c := newControl(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no token", c.env(""), []string{"pipelines"}, ExitError,
			"cmmsflow: no API token (401 unauthenticated): set CMMSFLOW_TOKEN or pipe it in with --token-stdin"},
		{"bad token", c.env("cmf_nope"), []string{"runs"}, ExitError,
			"cmmsflow: control refused the token (401 unauthenticated)"},
		{"viewer triggers", c.env(c.viewerTok), []string{"trigger", "preventive_maintenance"}, ExitError,
			"cmmsflow: permission denied (403)"},
		{"unknown pipeline", c.env(c.adminTok), []string{"trigger", "nope"}, ExitError,
			`cmmsflow: not found (404): pipeline "nope" not found`},
		{"bad conf value", c.env(c.adminTok), []string{"trigger", "preventive_maintenance", "--conf", "as_of=tomorrow"}, ExitError,
			`cmmsflow: invalid request (400): conf: key "as_of"`},
		{"conf without =", c.env(c.adminTok), []string{"trigger", "preventive_maintenance", "--conf", "as_of"}, ExitUsage,
			`invalid --conf "as_of": want key=value`},
		{"unknown run", c.env(c.viewerTok), []string{"run", "manual__nope"}, ExitError,
			`cmmsflow: not found (404): run "manual__nope" not found`},
		{"runs of unknown pipeline", c.env(c.viewerTok), []string{"runs", "nope"}, ExitError,
			`cmmsflow: not found (404): pipeline "nope" not found`},
		{"bad state", c.env(c.viewerTok), []string{"runs", "--state", "done"}, ExitError,
			`cmmsflow: invalid request (400): state: "done" is not one of`},
		{"bad limit", c.env(c.viewerTok), []string{"runs", "--limit", "0"}, ExitUsage, "invalid --limit 0"},
		{"bad control URL", map[string]string{EnvControl: "127.0.0.1:8080", EnvToken: "x"}, []string{"pipelines"}, ExitUsage,
			`invalid control URL "127.0.0.1:8080"`},
		{"control down", map[string]string{EnvControl: "http://127.0.0.1:1", EnvToken: "x"}, []string{"pipelines"}, ExitError,
			"cmmsflow: cannot reach control at http://127.0.0.1:1 (unavailable)"},
		{"run without id", c.env(c.viewerTok), []string{"run"}, ExitUsage, "accepts 1 arg(s), received 0"},
		{"trigger bad poll interval", c.env(c.adminTok), []string{"trigger", "preventive_maintenance", "--wait", "--poll-interval", "0s"}, ExitUsage,
			"invalid --poll-interval 0s: must be positive"},
		{"retry bad poll interval", c.env(c.adminTok), []string{"retry", "manual__nope", "--poll-interval", "-1s"}, ExitUsage,
			"invalid --poll-interval -1s: must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.env, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Errorf("%v: got %d stdout %q stderr %q; want %d and %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.want)
			}
		})
	}
}

func TestRunsAndRun(t *testing.T) {
	c := newControl(t)
	base := time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)
	for i := range 130 {
		state := "success"
		if i%10 == 3 {
			state = "failed"
		}
		c.insertRun(t, "scheduled__"+base.Add(time.Duration(i)*time.Hour).Format(time.RFC3339), "preventive_maintenance", state, base.Add(time.Duration(i)*time.Hour))
	}
	c.insertRun(t, "scheduled__2026-10-01T06:00:00Z", "weekly_kpi_report", "success", base.AddDate(0, -1, 0))

	r := run(t, c.env(c.viewerTok), "runs", "preventive_maintenance", "--limit", "5")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != ExitOK || len(lines) != 6 || !regexp.MustCompile(`^RUN ID\s+STATE\s+SOURCE\s+QUEUED\s+DURATION\s+ERROR$`).MatchString(lines[0]) ||
		!strings.HasPrefix(lines[1], "scheduled__"+base.Add(129*time.Hour).Format(time.RFC3339)+" ") ||
		!regexp.MustCompile(`\ssuccess\s+scheduled\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+41s\s*$`).MatchString(lines[1]) {
		t.Fatalf("runs --limit 5: %+v", r)
	}
	// More than a page: the CLI follows next_page_token.
	r = run(t, c.env(c.viewerTok), "runs", "preventive_maintenance", "--limit", "1000")
	if n := strings.Count(r.stdout, "\n"); r.code != ExitOK || n != 131 {
		t.Fatalf("runs --limit 1000: %d lines, %+v", n, r.code)
	}
	r = run(t, c.env(c.viewerTok), "runs", "preventive_maintenance", "--state", "failed", "--limit", "100")
	if n := strings.Count(r.stdout, "\n"); r.code != ExitOK || n != 14 || strings.Contains(r.stdout, " success ") ||
		!strings.Contains(r.stdout, "notifier: smtp refused") {
		t.Fatalf("runs --state failed: %d lines\n%s", n, r.stdout)
	}
	// Every pipeline: a PIPELINE column.
	r = run(t, c.env(c.viewerTok), "runs", "--limit", "200")
	if r.code != ExitOK || !strings.Contains(r.stdout, "PIPELINE") || !strings.Contains(r.stdout, "weekly_kpi_report") {
		t.Fatalf("runs of every pipeline: %+v", r)
	}
	r = run(t, c.env(c.viewerTok), "runs", "weekly_kpi_report", "--state", "running")
	if r.code != ExitOK || r.stdout != "no runs\n" {
		t.Fatalf("no runs: %+v", r)
	}

	id := "scheduled__" + base.Add(3*time.Hour).Format(time.RFC3339)
	r = run(t, c.env(c.viewerTok), "run", id)
	if r.code != ExitOK {
		t.Fatalf("run: %+v", r)
	}
	for _, re := range []string{
		`(?m)^run:\s+` + regexp.QuoteMeta(id) + `$`,
		`(?m)^pipeline:\s+preventive_maintenance$`,
		`(?m)^state:\s+failed$`,
		`(?m)^error:\s+notifier: smtp refused$`,
		`(?m)^STEP\s+STATE\s+ATTEMPTS\s+STARTED\s+ENDED\s+DURATION\s+ERROR$`,
		`(?m)^pmgen\s+success\s+1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+3s\s*$`,
		`(?m)^notifier\s+success\s+1\s`,
		`(?m)^pmgen: did its job\n  score=0\.8125 work_orders_created=12$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("run output lacks %s:\n%s", re, r.stdout)
		}
	}
}

// driver moves the newest manual run of a pipeline through its steps, as
// the projection would on the step services' events: each step running,
// then success (or, for failStep, a retry and then failed).
func (c *control) driver(t *testing.T, pipeline, failStep string) (wait func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		var runID string
		for runID == "" {
			err := c.pool.QueryRow(ctx, `SELECT run_id FROM runs WHERE pipeline = $1 AND source = 'manual' ORDER BY queued_at DESC LIMIT 1`, pipeline).Scan(&runID)
			if err != nil {
				if ctx.Err() != nil {
					t.Error("no manual run appeared")
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		step := func(q string, args ...any) {
			time.Sleep(120 * time.Millisecond) // several polls apart
			if _, err := c.pool.Exec(ctx, q, args...); err != nil {
				t.Error(err)
			}
		}
		pl, _ := events.LookupPipeline(pipeline)
		for i, st := range pl.Steps {
			c.exec(t, `INSERT INTO steps (run_id, step, position, state) VALUES ($1, $2, $3, 'pending')`, runID, st, i)
		}
		step(`UPDATE runs SET state = 'running', started_at = now() WHERE run_id = $1`, runID)
		for _, st := range pl.Steps {
			step(`UPDATE steps SET state = 'running', attempts = 1, started_at = now() WHERE run_id = $1 AND step = $2`, runID, st)
			if st == failStep {
				step(`UPDATE steps SET state = 'up_for_retry', error = 'smtp: connection refused' WHERE run_id = $1 AND step = $2`, runID, st)
				step(`UPDATE steps SET state = 'running', attempts = 2, error = '' WHERE run_id = $1 AND step = $2`, runID, st)
				step(`UPDATE steps SET state = 'failed', ended_at = now(), error = 'smtp: connection refused' WHERE run_id = $1 AND step = $2`, runID, st)
				step(`UPDATE runs SET state = 'failed', ended_at = now(), error = $2 WHERE run_id = $1`, runID, st+": smtp: connection refused")
				return
			}
			step(`UPDATE steps SET state = 'success', ended_at = now(), figures = '{"rows": 1500, "ratio": 0.25}' WHERE run_id = $1 AND step = $2`, runID, st)
		}
		step(`UPDATE runs SET state = 'success', ended_at = now() WHERE run_id = $1`, runID)
	})
	return func() { wg.Wait(); cancel() }
}

func TestTriggerWaitSuccess(t *testing.T) {
	c := newControl(t)
	wait := c.driver(t, "preventive_maintenance", "")
	r := run(t, c.env(c.adminTok), "trigger", "preventive_maintenance", "--conf", "as_of=2026-11-30",
		"--idempotency-key", "ops-42", "--wait", "--poll-interval", "30ms")
	wait()
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("trigger --wait: %+v", r)
	}
	for _, re := range []string{
		`^queued run manual__\S+ of preventive_maintenance\n`,
		`(?m)^\d\d:\d\d:\d\d  run\s+queued$`,
		`(?m)^\d\d:\d\d:\d\d  run\s+running$`,
		`(?m)^\d\d:\d\d:\d\d  pmgen\s+running$`,
		`(?m)^\d\d:\d\d:\d\d  pmgen\s+success in \S+  ratio=0\.25 rows=1500$`,
		`(?m)^\d\d:\d\d:\d\d  notifier\s+running$`,
		`(?m)^\d\d:\d\d:\d\d  notifier\s+success in \S+  ratio=0\.25 rows=1500$`,
		`(?m)^\d\d:\d\d:\d\d  run\s+success\nrun manual__\S+ succeeded in \S+\n$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("trigger --wait output lacks %s:\n%s", re, r.stdout)
		}
	}
	// Every change once: pmgen's running line is printed once however often it was polled.
	if n := strings.Count(r.stdout, "pmgen       running"); n != 1 {
		t.Errorf("pmgen running printed %d times:\n%s", n, r.stdout)
	}

	// The same idempotency key again: the same run, not a new one; no --wait needed.
	r2 := run(t, c.env(c.adminTok), "trigger", "preventive_maintenance", "--conf", "as_of=2026-11-30", "--idempotency-key", "ops-42")
	if r2.code != ExitOK || !regexp.MustCompile(`^idempotency key "ops-42" already used: run manual__\S+ of preventive_maintenance is success\n$`).MatchString(r2.stdout) {
		t.Fatalf("repeat trigger: %+v", r2)
	}
	// …with another conf it is a conflict.
	r2 = run(t, c.env(c.adminTok), "trigger", "preventive_maintenance", "--conf", "as_of=2026-12-01", "--idempotency-key", "ops-42")
	if r2.code != ExitError || !strings.Contains(r2.stderr, "conflict (409): idempotency_key \"ops-42\" was used with a different conf") {
		t.Fatalf("conflicting repeat: %+v", r2)
	}
}

func TestTriggerWaitFailure(t *testing.T) {
	c := newControl(t)
	wait := c.driver(t, "weekly_kpi_report", "notifier")
	r := run(t, c.env(c.adminTok), "trigger", "weekly_kpi_report", "--wait", "--poll-interval", "30ms")
	wait()
	if r.code != ExitError {
		t.Fatalf("trigger --wait of a failing run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, re := range []string{
		`(?m)^\d\d:\d\d:\d\d  reporter\s+success in `,
		`(?m)^\d\d:\d\d:\d\d  notifier\s+up_for_retry \(attempt 1\)  error: smtp: connection refused$`,
		`(?m)^\d\d:\d\d:\d\d  notifier\s+running \(attempt 2\)$`,
		`(?m)^\d\d:\d\d:\d\d  notifier\s+failed \(attempt 2\) in \S+  error: smtp: connection refused$`,
		`(?m)^\d\d:\d\d:\d\d  run\s+failed\n$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("output lacks %s:\n%s", re, r.stdout)
		}
	}
	if !regexp.MustCompile(`^run manual__\S+ failed: notifier: smtp: connection refused\n$`).MatchString(r.stderr) {
		t.Errorf("stderr: %q", r.stderr)
	}

	// Without --wait the trigger returns at once.
	r = run(t, c.env(c.adminTok), "trigger", "weekly_kpi_report", "--conf", "week=2026-W47")
	if r.code != ExitOK || !regexp.MustCompile(`^queued run manual__\S+ of weekly_kpi_report\n$`).MatchString(r.stdout) {
		t.Fatalf("trigger: %+v", r)
	}
}

func TestGRPCTarget(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":      "dns:///127.0.0.1:8080 false",
		"http://localhost":           "dns:///localhost:80 false",
		"https://control.run.app/":   "dns:///control.run.app:443 true",
		"https://[::1]:9443":         "dns:///[::1]:9443 true",
		"ftp://x":                    "error",
		"http://host/path":           "error",
		"http://user:pw@host:1":      "error",
		"127.0.0.1:8080":             "error",
		"http://127.0.0.1:8080?x=1":  "error",
		"":                           "error",
		"https://control.example:80": "dns:///control.example:80 true",
	} {
		target, secure, err := grpcTarget(in)
		got := "error"
		if err == nil {
			got = target + " " + map[bool]string{true: "true", false: "false"}[secure]
		}
		if got != want {
			t.Errorf("grpcTarget(%q) = %s, want %s", in, got, want)
		}
	}
}

// backfill creates the runs of a range of ticks, once: a second call and a
// dry run create nothing; bad ranges are the API's 400s.
func TestBackfillCommand(t *testing.T) {
	c := newControl(t)
	args := []string{"backfill", "weekly_kpi_report", "--from", "2026-11-02", "--to", "2026-11-22"}
	r := run(t, c.env(c.adminTok), append(args, "--dry-run")...)
	if r.code != ExitOK || r.stdout != "3 ticks from 2026-11-02 to 2026-11-22; 0 have their run, 3 would be created (dry run)\n" {
		t.Fatalf("dry run: %+v", r)
	}
	r = run(t, c.env(c.adminTok), args...)
	want := "queued scheduled__2026-11-02T08:00:00+00:00\nqueued scheduled__2026-11-09T08:00:00+00:00\nqueued scheduled__2026-11-16T08:00:00+00:00\n" +
		"3 ticks from 2026-11-02 to 2026-11-22: 3 runs created, 0 had their run\n"
	if r.code != ExitOK || r.stdout != want {
		t.Fatalf("backfill: %+v", r)
	}
	if r = run(t, c.env(c.adminTok), args...); r.code != ExitOK || !strings.HasSuffix(r.stdout, "0 runs created, 3 had their run\n") {
		t.Fatalf("backfill again: %+v", r)
	}
	if r = run(t, c.env(c.adminTok), "backfill", "preventive_maintenance", "--from", "2020-01-01", "--to", "2026-01-01"); r.code != ExitError ||
		!strings.Contains(r.stderr, "invalid request (400): from_date, to_date: the range holds more than 366 ticks") {
		t.Fatalf("too long: %+v", r)
	}
	if r = run(t, c.env(c.adminTok), "backfill", "preventive_maintenance", "--from", "2020-01-01"); r.code != ExitUsage {
		t.Fatalf("no --to: %+v", r)
	}
}
