package runstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

var t0 = time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)

var steps = []string{"extract", "load", "report"}

// seed is a run newStore queues.
type seed struct {
	id, pipeline string
	minutes      int // queued at t0 plus minutes
}

// newStore is a database with pipelines a and b and the seeds' runs.
func newStore(t *testing.T, seeds ...seed) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.New(t)
	for _, id := range []string{"a", "b"} {
		if _, err := pool.Exec(context.Background(), `INSERT INTO pipelines (id) VALUES ($1) ON CONFLICT DO NOTHING`, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range seeds {
		insert(t, pool, r.id, r.pipeline, r.minutes)
	}
	return pool
}

// insert queues run id of pipeline, queued at t0 plus minutes.
func insert(t *testing.T, db runstore.DB, id, pipeline string, minutes int) *controlv1.Run {
	t.Helper()
	at := t0.Add(time.Duration(minutes) * time.Minute)
	run, err := runstore.Insert(context.Background(), db, runstore.NewRun{RunID: id, Pipeline: pipeline, Source: "manual",
		Conf: []byte(`{"as_of":"2026-03-01","n":1}`), Logical: at, Queued: at})
	if err != nil {
		t.Fatalf("insert %s: %v", id, err)
	}
	return run
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, db runstore.DB, id string) *controlv1.Run {
	t.Helper()
	run, err := runstore.Get(context.Background(), db, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return run
}

// stepStates lists a run's steps as step=state/attempts.
func stepStates(run *controlv1.Run) []string {
	var out []string
	for _, s := range run.GetSteps() {
		out = append(out, s.GetStep()+"="+s.GetState()+"/"+string(rune('0'+s.GetAttempts())))
	}
	return out
}

func ids(runs []*controlv1.Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.GetRunId())
	}
	return out
}

func TestParseState(t *testing.T) {
	if s, err := runstore.ParseRunState("cancelled"); err != nil || s != runstore.Cancelled {
		t.Fatalf("ParseRunState(cancelled) = %q, %v", s, err)
	}
	if _, err := runstore.ParseRunState("pending"); err == nil ||
		err.Error() != `"pending" is not one of queued, running, success, failed, cancelled, skipped` {
		t.Fatalf("ParseRunState(pending): %v", err)
	}
	if s, err := runstore.ParseStepState("up_for_retry"); err != nil || s != runstore.UpForRetry {
		t.Fatalf("ParseStepState(up_for_retry) = %q, %v", s, err)
	}
	if _, err := runstore.ParseStepState("queued"); err == nil {
		t.Fatal("queued is no step state")
	}
	for _, s := range runstore.RunStates {
		if s.Active() != (s == runstore.Queued || s == runstore.Running) {
			t.Errorf("%s.Active() = %v", s, s.Active())
		}
	}
}

// TestInsertGet: a queued run as inserted, a taken id or idempotency key is
// ErrExists, an unknown run ErrNotFound; Start makes it running with its
// steps pending.
func TestInsertGet(t *testing.T) {
	ctx := context.Background()
	pool := newStore(t)
	run := insert(t, pool, "r1", "a", 0)
	if run.GetState() != "queued" || run.GetSource() != "manual" || !run.GetQueuedAt().AsTime().Equal(t0) ||
		run.GetConf()["as_of"] != "2026-03-01" || len(run.GetConf()) != 1 || run.GetStartedAt() != nil {
		t.Fatalf("inserted %v", run)
	}
	if _, err := runstore.Insert(ctx, pool, runstore.NewRun{RunID: "r1", Pipeline: "a", Source: "manual", Logical: t0, Queued: t0}); !errors.Is(err, runstore.ErrExists) {
		t.Fatalf("taken run id: %v", err)
	}
	keyed := runstore.NewRun{RunID: "r2", Pipeline: "a", Source: "manual", Logical: t0, Queued: t0, IdempotencyKey: "k"}
	if _, err := runstore.Insert(ctx, pool, keyed); err != nil {
		t.Fatal(err)
	}
	keyed.RunID = "r3"
	if _, err := runstore.Insert(ctx, pool, keyed); !errors.Is(err, runstore.ErrExists) {
		t.Fatalf("taken idempotency key: %v", err)
	}
	if got, err := runstore.ByIdempotencyKey(ctx, pool, "a", "k"); err != nil || got.GetRunId() != "r2" || got.GetIdempotencyKey() != "k" {
		t.Fatalf("by key: %v, %v", got, err)
	}
	if _, err := runstore.ByIdempotencyKey(ctx, pool, "b", "k"); !errors.Is(err, runstore.ErrNotFound) {
		t.Fatalf("key of another pipeline: %v", err)
	}
	if _, err := runstore.Get(ctx, pool, "nope"); !errors.Is(err, runstore.ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}
	must(t, runstore.Start(ctx, pool, "r1", "4bf92f3577b34da6a3ce929d0e0e4736", steps))
	run = get(t, pool, "r1")
	if run.GetState() != "running" || run.GetStartedAt() == nil ||
		!slices.Equal(stepStates(run), []string{"extract=pending/0", "load=pending/0", "report=pending/0"}) {
		t.Fatalf("started %v", run)
	}
	if n, err := runstore.CountRunning(ctx, pool, "a"); err != nil || n != 1 {
		t.Fatalf("running %d, %v", n, err)
	}
	q, err := runstore.OldestQueued(ctx, pool, "a", 10)
	if err != nil || len(q) != 1 || q[0].RunID != "r2" {
		t.Fatalf("queued %v, %v", q, err)
	}
	missing, err := runstore.Missing(ctx, pool, []string{"x", "r1", "y", "r2"})
	if err != nil || !slices.Equal(missing, []int{0, 2}) {
		t.Fatalf("missing %v, %v", missing, err)
	}
}

// TestInsertTriggered: a trigger inserts its run, gives an already queued
// run without a traceparent its own, and changes nothing after.
func TestInsertTriggered(t *testing.T) {
	ctx := context.Background()
	pool := newStore(t)
	if beat, err := runstore.LastScheduled(ctx, pool); err != nil || beat != nil {
		t.Fatalf("heartbeat before any scheduled run: %v, %v", beat, err)
	}
	nr := runstore.NewRun{RunID: "s1", Pipeline: "a", Source: "scheduled", Conf: []byte(`{}`), Logical: t0}
	for i, want := range []bool{true, false} {
		if changed, err := runstore.InsertTriggered(ctx, pool, nr, "00-tp"); err != nil || changed != want {
			t.Fatalf("trigger %d: %v, %v", i, changed, err)
		}
	}
	if beat, err := runstore.LastScheduled(ctx, pool); err != nil || beat == nil {
		t.Fatalf("heartbeat: %v, %v", beat, err)
	}
	insert(t, pool, "m1", "a", 0)
	nr.RunID = "m1"
	if changed, err := runstore.InsertTriggered(ctx, pool, nr, "00-tp"); err != nil || !changed {
		t.Fatalf("trigger of a queued run: %v, %v", changed, err)
	}
	q, err := runstore.OldestQueued(ctx, pool, "a", 10)
	if err != nil || len(q) != 2 || q[0].TraceParent != "00-tp" || q[1].TraceParent != "00-tp" {
		t.Fatalf("queued %+v, %v", q, err)
	}
	if created, err := runstore.Queue(ctx, pool, "s1", "a", "backfill", t0); err != nil || created {
		t.Fatalf("queue existing: %v, %v", created, err)
	}
	if created, err := runstore.Queue(ctx, pool, "s2", "a", "backfill", t0); err != nil || !created {
		t.Fatalf("queue: %v, %v", created, err)
	}
}

// TestStepEvents: a step's end before its start counts the attempt, and
// the start then does not; a step set by hand ignores its events.
func TestStepEvents(t *testing.T) {
	ctx := context.Background()
	pool := newStore(t, seed{"r", "a", 0})
	must(t, runstore.Start(ctx, pool, "r", "", steps))
	// extract: its success before its start.
	must(t, runstore.EndStep(ctx, pool, "r", "extract"))
	must(t, runstore.StepSucceeded(ctx, pool, "r", "extract", t0.Add(2*time.Minute), []byte(`{"rows":3}`), "3 rows"))
	must(t, runstore.StartStep(ctx, pool, "r", "extract", t0.Add(time.Minute)))
	// load: one retried attempt, then a second that fails.
	must(t, runstore.StartStep(ctx, pool, "r", "load", t0.Add(3*time.Minute)))
	must(t, runstore.EndStep(ctx, pool, "r", "load"))
	must(t, runstore.StepRetrying(ctx, pool, "r", "load", "flaky"))
	must(t, runstore.EndStep(ctx, pool, "r", "load"))
	must(t, runstore.StepFailed(ctx, pool, "r", "load", "broken", t0.Add(5*time.Minute), []byte(`{}`)))
	must(t, runstore.StartStep(ctx, pool, "r", "load", t0.Add(4*time.Minute)))
	run := get(t, pool, "r")
	if want := []string{"extract=success/1", "load=failed/2", "report=pending/0"}; !slices.Equal(stepStates(run), want) {
		t.Fatalf("steps %v, want %v", stepStates(run), want)
	}
	ex := run.GetSteps()[0]
	if !ex.GetStartedAt().AsTime().Equal(t0.Add(time.Minute)) || ex.GetSummary() != "3 rows" || ex.GetFigures()["rows"] != 3 {
		t.Fatalf("extract %v", ex)
	}
	if ended, err := runstore.Fail(ctx, pool, "r", "load: broken", t0.Add(5*time.Minute)); err != nil || !ended {
		t.Fatalf("fail: %v, %v", ended, err)
	}
	if ended, err := runstore.Succeed(ctx, pool, "r", t0.Add(6*time.Minute)); err != nil || ended {
		t.Fatalf("succeed an ended run: %v, %v", ended, err)
	}
	must(t, runstore.SetStepState(ctx, pool, "r", "report", runstore.Skipped, "", "ops"))
	must(t, runstore.StartStep(ctx, pool, "r", "report", t0.Add(7*time.Minute)))
	must(t, runstore.EndStep(ctx, pool, "r", "report"))
	must(t, runstore.StepSucceeded(ctx, pool, "r", "report", t0.Add(7*time.Minute), []byte(`{}`), ""))
	run = get(t, pool, "r")
	if run.GetState() != "failed" || run.GetError() != "load: broken" || stepStates(run)[2] != "report=skipped/0" ||
		run.GetSteps()[2].GetStateSetBy() != "ops" {
		t.Fatalf("run %v", run)
	}
}

// TestByHand: stopping, marking, requeueing and a retry's resets.
func TestByHand(t *testing.T) {
	ctx := context.Background()
	pool := newStore(t, seed{"r", "a", 0})
	must(t, runstore.Start(ctx, pool, "r", "", steps))
	must(t, runstore.StepSucceeded(ctx, pool, "r", "extract", t0, []byte(`{}`), ""))
	must(t, runstore.StartStep(ctx, pool, "r", "load", t0))
	must(t, runstore.StopSteps(ctx, pool, "r", "ops", "cancelled by ops"))
	must(t, runstore.SetState(ctx, pool, "r", runstore.Cancelled, "cancelled by ops", "ops"))
	run := get(t, pool, "r")
	if want := []string{"extract=success/0", "load=failed/1", "report=skipped/0"}; run.GetState() != "cancelled" ||
		run.GetStateSetBy() != "ops" || run.GetEndedAt() == nil || !slices.Equal(stepStates(run), want) ||
		run.GetSteps()[1].GetError() != "cancelled by ops" || run.GetSteps()[2].GetError() != "" {
		t.Fatalf("stopped %v", run)
	}
	o, err := runstore.Outcome(ctx, pool, "r")
	if err != nil || o != (runstore.StepOutcome{Failed: "load: cancelled by ops", Undone: "load"}) {
		t.Fatalf("outcome %+v, %v", o, err)
	}
	info, err := runstore.ReadForRetry(ctx, pool, "r")
	if err != nil || !info.Logical.Equal(t0) || len(info.Steps) != 3 || info.Steps[1] != (runstore.StepState{Step: "load", State: runstore.Failed}) {
		t.Fatalf("retry info %+v, %v", info, err)
	}
	must(t, runstore.ResetSteps(ctx, pool, "r", 1))
	must(t, runstore.Restart(ctx, pool, "r", "trace"))
	run = get(t, pool, "r")
	if want := []string{"extract=success/0", "load=pending/1", "report=pending/0"}; run.GetState() != "running" ||
		run.GetEndedAt() != nil || run.GetError() != "" || run.GetStateSetBy() != "" || !slices.Equal(stepStates(run), want) {
		t.Fatalf("retried %v", run)
	}
	must(t, runstore.MarkStepsSucceeded(ctx, pool, "r", "ops"))
	must(t, runstore.SetState(ctx, pool, "r", runstore.Success, "", "ops"))
	if o, err := runstore.Outcome(ctx, pool, "r"); err != nil || o != (runstore.StepOutcome{}) {
		t.Fatalf("outcome %+v, %v", o, err)
	}
	must(t, runstore.Requeue(ctx, pool, "r"))
	run = get(t, pool, "r")
	if want := []string{"extract=pending/0", "load=pending/1", "report=pending/0"}; run.GetState() != "queued" ||
		run.GetStartedAt() != nil || !slices.Equal(stepStates(run), want) {
		t.Fatalf("requeued %v", run)
	}
	var retries int
	if err := pool.QueryRow(ctx, `SELECT retries FROM runs WHERE run_id = 'r'`).Scan(&retries); err != nil || retries != 2 {
		t.Fatalf("retries %d, %v", retries, err)
	}
}

// TestList: filters, both orders, keyset and offset paging, and the count.
func TestList(t *testing.T) {
	ctx := context.Background()
	pool := newStore(t, seed{"a1", "a", 0}, seed{"a2", "a", 1}, seed{"b1", "b", 2}, seed{"a3", "a", 3})
	must(t, runstore.Start(ctx, pool, "a2", "", steps))
	list := func(f runstore.Filter, o runstore.Order, p runstore.Page) []string {
		t.Helper()
		runs, err := runstore.List(ctx, pool, f, o, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if len(r.GetSteps()) != 0 {
				t.Fatalf("listed run %s with steps", r.GetRunId())
			}
		}
		return ids(runs)
	}
	cases := []struct {
		name string
		f    runstore.Filter
		o    runstore.Order
		p    runstore.Page
		want []string
	}{
		{"all", runstore.Filter{}, runstore.Order{}, runstore.Page{}, []string{"a3", "b1", "a2", "a1"}},
		{"pipeline", runstore.Filter{Pipeline: "a"}, runstore.Order{}, runstore.Page{Limit: 2}, []string{"a3", "a2"}},
		{"states", runstore.Filter{States: []runstore.State{runstore.Running, runstore.Failed}}, runstore.Order{}, runstore.Page{}, []string{"a2"}},
		{"no states", runstore.Filter{States: []runstore.State{}}, runstore.Order{}, runstore.Page{}, nil},
		{"after", runstore.Filter{After: &runstore.Cursor{QueuedAt: t0.Add(2 * time.Minute), RunID: "b1"}}, runstore.Order{}, runstore.Page{}, []string{"a2", "a1"}},
		{"bounds", runstore.Filter{Bounds: []runstore.Bound{{Column: runstore.LogicalDate, Time: t0.Add(time.Minute)},
			{Column: runstore.LogicalDate, Before: true, Time: t0.Add(2 * time.Minute)}}}, runstore.Order{}, runstore.Page{}, []string{"b1", "a2"}},
		{"started first, nulls last", runstore.Filter{}, runstore.Order{Column: runstore.StartedAt}, runstore.Page{}, []string{"a2", "a1", "a3", "b1"}},
		{"run id descending, offset", runstore.Filter{}, runstore.Order{Column: runstore.RunID, Desc: true}, runstore.Page{Limit: 2, Offset: 1}, []string{"a3", "a2"}},
	}
	for _, c := range cases {
		if got := list(c.f, c.o, c.p); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if n, err := runstore.Count(ctx, pool, runstore.Filter{Pipeline: "a", States: []runstore.State{runstore.Queued}}); err != nil || n != 2 {
		t.Fatalf("count %d, %v", n, err)
	}
	if _, err := runstore.List(ctx, pool, runstore.Filter{}, runstore.Order{Column: "conf"}, runstore.Page{}); err == nil {
		t.Fatal("ordered by a column not listed")
	}
	ps, err := runstore.Pipelines(ctx, pool, []string{"b", "a", "c"})
	if err != nil || len(ps) != 2 || ps[0].ID != "b" || ps[0].Last.GetRunId() != "b1" || ps[0].Queued != 1 ||
		ps[1].Last.GetRunId() != "a3" || ps[1].Running != 1 || ps[1].Queued != 2 {
		t.Fatalf("pipelines %+v, %v", ps, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO pipelines (id) VALUES ('c')`); err != nil {
		t.Fatal(err)
	}
	if ps, err := runstore.Pipelines(ctx, pool, []string{"c"}); err != nil || len(ps) != 1 || ps[0].Last != nil {
		t.Fatalf("pipeline without runs %+v, %v", ps, err)
	}
}

// TestFailStale: a quiet running run is failed with its open step; a
// queued run waiting for a slot is not stale; a run's steps end as the
// sweeper finds them.
func TestFailStale(t *testing.T) {
	ctx := context.Background()
	pool := newStore(t, seed{"old", "a", 0}, seed{"waiting", "a", 1}, seed{"none", "b", 0})
	must(t, runstore.Start(ctx, pool, "old", "4bf92f3577b34da6a3ce929d0e0e4736", steps))
	if _, err := pool.Exec(ctx, `UPDATE runs SET started_at = now() - interval '2 hours' WHERE run_id = 'old'`); err != nil {
		t.Fatal(err)
	}
	must(t, runstore.StartStep(ctx, pool, "old", "load", t0))
	stale, err := runstore.FailStale(ctx, pool, "a", time.Hour, "timed out")
	if err != nil || len(stale) != 1 || stale[0] != (runstore.StaleRun{RunID: "old", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}) {
		t.Fatalf("stale %v, %v", stale, err)
	}
	if step, err := runstore.FailOpenSteps(ctx, pool, "old", "timed out"); err != nil || step != "load" {
		t.Fatalf("open step %q, %v", step, err)
	}
	if step, err := runstore.FailOpenSteps(ctx, pool, "old", "timed out"); err != nil || step != "" {
		t.Fatalf("no open step %q, %v", step, err)
	}
	if step, err := runstore.FailFirstPending(ctx, pool, "old", "timed out"); err != nil || step != "extract" {
		t.Fatalf("first pending %q, %v", step, err)
	}
	if _, err := runstore.FailFirstPending(ctx, pool, "none", "timed out"); !errors.Is(err, runstore.ErrNotFound) {
		t.Fatalf("run without steps: %v", err)
	}
	if step, err := runstore.FirstUnsucceeded(ctx, pool, "old"); err != nil || step != "extract" {
		t.Fatalf("first unsucceeded %q, %v", step, err)
	}
	if pl, err := runstore.PipelineOf(ctx, pool, "none"); err != nil || pl != "b" {
		t.Fatalf("pipeline %q, %v", pl, err)
	}
	// "waiting" was queued an hour ago by t0, but the clock is now: make it
	// old, then it is stale only once no run of a is running (old failed).
	if _, err := pool.Exec(ctx, `UPDATE runs SET queued_at = now() - interval '2 hours' WHERE run_id = 'waiting'`); err != nil {
		t.Fatal(err)
	}
	stale, err = runstore.FailStale(ctx, pool, "a", time.Hour, "timed out")
	if err != nil || len(stale) != 1 || stale[0].RunID != "waiting" {
		t.Fatalf("stale %v, %v", stale, err)
	}
	trace, queued, err := runstore.Trace(ctx, pool, "old")
	if err != nil || trace != "4bf92f3577b34da6a3ce929d0e0e4736" || !queued.Equal(t0) {
		t.Fatalf("trace %q %s, %v", trace, queued, err)
	}
	if _, _, err := runstore.Trace(ctx, pool, "nope"); !errors.Is(err, runstore.ErrNotFound) {
		t.Fatalf("trace of an unknown run: %v", err)
	}
}

// TestLockRun: the pipeline and state of a run; ErrNotFound for none.
func TestLockRun(t *testing.T) {
	ctx := context.Background()
	pool := newStore(t, seed{"r", "b", 0})
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if pl, st, err := runstore.LockRun(ctx, tx, "r"); err != nil || pl != "b" || st != runstore.Queued {
		t.Fatalf("lock: %s %s, %v", pl, st, err)
	}
	if _, _, err := runstore.LockRun(ctx, tx, "nope"); !errors.Is(err, runstore.ErrNotFound) {
		t.Fatalf("lock unknown: %v", err)
	}
}
