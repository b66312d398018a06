package eventing_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/pubsubtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

type harness struct {
	pool   *pgxpool.Pool
	ps     *pubsubtest.Server
	router *eventing.Router
	srv    *httptest.Server
}

// newHarness serves a router for the pmgen service (the first step of the
// preventive maintenance pipeline) over HTTP, on a fresh database and an
// in-process Pub/Sub.
func newHarness(t *testing.T, timeout time.Duration) *harness {
	t.Helper()
	return newLoggingHarness(t, timeout, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// newLoggingHarness is newHarness with the router logging to log.
func newLoggingHarness(t *testing.T, timeout time.Duration, log *slog.Logger) *harness {
	t.Helper()
	pool := pgtest.New(t)
	ps := pubsubtest.New(t)
	pub := eventing.NewPubSubPublisher(ps.Client)
	t.Cleanup(pub.Close)
	relay := eventing.NewRelay(pool, pub, log, time.Hour)
	router := eventing.NewRouter(eventing.RouterConfig{Service: events.Pmgen, Pool: pool, Relay: relay, Log: log,
		Timeout: timeout, MaxBody: 64 << 10, RunWatch: 5 * time.Millisecond})
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	return &harness{pool: pool, ps: ps, router: router, srv: srv}
}

func runStarted(t *testing.T) eventing.Event {
	t.Helper()
	ev, err := eventing.New(events.RunStarted, events.Source(events.Control), "manual__2026-11-27T06:00:00+00:00",
		events.PreventiveMaintenance, "", &eventsv1.RunStarted{Conf: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func pushBody(m eventing.Message, messageID string) string {
	b, _ := json.Marshal(map[string]any{
		"message": map[string]any{
			"data":        base64.StdEncoding.EncodeToString(m.Data),
			"attributes":  m.Attributes,
			"messageId":   messageID,
			"publishTime": time.Now().UTC().Format(time.RFC3339Nano),
		},
		"subscription": "projects/p/subscriptions/run-started--pmgen",
	})
	return string(b)
}

func (h *harness) post(t *testing.T, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(h.srv.URL, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (h *harness) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := h.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// effect is pmgen's step as a test sees it: its database effect is one
// technician row per event, its output an empty work-orders-generated.
func effect(_ context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.RunStarted
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	return eventing.StepResult{
		Output:  &eventsv1.WorkOrdersGenerated{},
		Figures: map[string]float64{"rows": 1},
		Commit: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO technicians (code, name, email) VALUES ($1, 'n', 'e@x')`, ev.ID())
			return err
		},
	}, nil
}

// handleStep registers f as pmgen's step: run-started in, work-orders out.
func (h *harness) handleStep(f eventing.StepFunc) {
	h.router.HandleStep(events.RunStarted, events.WorkOrdersGenerated, f)
}

func expectMessages(t *testing.T, r *pubsubtest.Reader, n int) []*eventsv1.StepFailed {
	t.Helper()
	var failed []*eventsv1.StepFailed
	for i := 0; i < n; i++ {
		m := r.Next(5 * time.Second)
		if m == nil {
			t.Fatalf("got %d messages, want %d", i, n)
		}
		if m.Attributes[eventing.AttrType] == events.StepFailed {
			var f eventsv1.StepFailed
			ev, err := eventing.FromMessage(eventing.Message{Attributes: m.Attributes, Data: m.Data})
			if err != nil {
				t.Fatal(err)
			}
			if err := ev.Decode(&f); err != nil {
				t.Fatal(err)
			}
			failed = append(failed, &f)
		}
	}
	if m := r.Next(300 * time.Millisecond); m != nil {
		t.Fatalf("unexpected extra message %v", m.Attributes)
	}
	return failed
}

func TestDuplicateDeliveriesHaveOneEffect(t *testing.T) {
	h := newHarness(t, time.Minute)
	started := h.ps.Subscribe(t, "step-started")
	succeeded := h.ps.Subscribe(t, "step-succeeded")
	h.handleStep(effect)
	ev := runStarted(t)

	// Three sequential deliveries of the same event (Pub/Sub redelivers with
	// new message ids when the outbox republishes).
	var outcomes []string
	for i := range 3 {
		code, body := h.post(t, pushBody(ev.Message(), fmt.Sprint(i)))
		if code != http.StatusOK {
			t.Fatalf("delivery %d: %d %s", i, code, body)
		}
		outcomes = append(outcomes, body)
	}
	want := []string{`{"outcome":"handled"}`, `{"outcome":"duplicate"}`, `{"outcome":"duplicate"}`}
	if fmt.Sprint(outcomes) != fmt.Sprint(want) {
		t.Fatalf("outcomes %v, want %v", outcomes, want)
	}
	// Three concurrent deliveries of another event: one works, the others
	// find it processed, or leased (503, retry later) while it works.
	ev2 := runStarted(t)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := h.post(t, pushBody(ev2.Message(), fmt.Sprint("c", i)))
			if code != http.StatusOK && !(code == http.StatusServiceUnavailable && strings.HasPrefix(body, "leased")) {
				t.Errorf("concurrent delivery: %d %s", code, body)
			}
		}()
	}
	wg.Wait()

	if n := h.count(t, `SELECT count(*) FROM technicians`); n != 2 {
		t.Fatalf("%d effect rows for 2 distinct events delivered 3 times each, want 2", n)
	}
	if n := h.count(t, `SELECT count(*) FROM processed_events WHERE consumer = 'pmgen'`); n != 2 {
		t.Fatalf("processed_events has %d rows, want 2", n)
	}
	expectMessages(t, succeeded, 2)
	// The step is reported started in the claim, which duplicates never
	// pass, concurrent or not.
	expectMessages(t, started, 2)
	if n := h.count(t, `SELECT count(*) FROM outbox WHERE published_at IS NULL`); n != 0 {
		t.Fatalf("%d outbox rows left unpublished after the request returned", n)
	}
}

func TestPermanentlyBadEventsAreDeadLettered(t *testing.T) {
	h := newHarness(t, time.Minute)
	failedTopic := h.ps.Subscribe(t, "step-failed")
	h.handleStep(effect)
	h.router.Handle(events.PipelineTriggered, func(context.Context, pgx.Tx, eventing.Event) error {
		var m map[string]int
		_ = m["x"]
		panic("boom")
	})

	good := runStarted(t).Message()
	with := func(mut func(a map[string]string)) eventing.Message {
		m := eventing.Message{Attributes: map[string]string{}, Data: good.Data}
		for k, v := range good.Attributes {
			m.Attributes[k] = v
		}
		m.Attributes[eventing.AttrID] = fmt.Sprint("bad-", time.Now().UnixNano())
		mut(m.Attributes)
		return m
	}
	tests := []struct {
		name       string
		body       string
		reason     string
		stepFailed bool // the event names a pmgen run: its step must fail
	}{
		{"garbage body", "}{ not json", "decode push body", false},
		{"wrong base64", `{"message":{"data":"!!notbase64","messageId":"b64"}}`, "decode push body", false},
		{"missing attributes", pushBody(with(func(a map[string]string) { delete(a, eventing.AttrType); delete(a, eventing.AttrSource) }), "m1"), "missing attributes: ce-source, ce-type", true},
		{"unknown event type", pushBody(with(func(a map[string]string) { a[eventing.AttrType] = "cmmsflow.nothing.happened.v1" }), "u1"), `does not handle event type "cmmsflow.nothing.happened.v1"`, true},
		{"wrong schema version", pushBody(with(func(a map[string]string) { a[eventing.AttrType] = "cmmsflow.run.started.v2" }), "v2"), `does not handle event type "cmmsflow.run.started.v2"`, true},
		{"invalid payload", pushBody(eventing.Message{Attributes: with(func(map[string]string) {}).Attributes, Data: []byte(`{"conf":42}`)}, "p1"), "decode cmmsflow.run.started.v1 data", true},
		{"unhandled step report", pushBody(with(func(a map[string]string) { a[eventing.AttrType] = events.StepFailed }), "s1"), `does not handle event type "cmmsflow.step.failed.v1"`, false},
		{"handler panic", pushBody(with(func(a map[string]string) {
			a[eventing.AttrType] = events.PipelineTriggered
			a[eventing.AttrID] = "panicky"
		}), "x1"), "handler panic: boom", true},
		{"huge body", `{"message":{"data":"` + strings.Repeat("QUFB", 20000) + `"}}`, "push body exceeds 65536 bytes", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.count(t, `SELECT count(*) FROM dead_letters`)
			code, body := h.post(t, tt.body)
			if code != http.StatusOK || body != `{"outcome":"dead-lettered"}` {
				t.Fatalf("got %d %s, want 200 dead-lettered (ack)", code, body)
			}
			var reason, runID string
			err := h.pool.QueryRow(context.Background(), `SELECT reason, run_id FROM dead_letters ORDER BY id DESC LIMIT 1`).Scan(&reason, &runID)
			if err != nil || h.count(t, `SELECT count(*) FROM dead_letters`) != before+1 {
				t.Fatalf("no dead letter recorded: %v", err)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason %q, want it to contain %q", reason, tt.reason)
			}
			if tt.stepFailed {
				if runID != good.Attributes[eventing.AttrRunID] {
					t.Fatalf("dead letter run_id %q", runID)
				}
				f := expectMessages(t, failedTopic, 1)
				if len(f) != 1 || f[0].Retrying || f[0].Step != events.Pmgen || !strings.Contains(f[0].Error, tt.reason) {
					t.Fatalf("step failed event %v", f)
				}
			}
			// The same bad message again is acked without a second record
			// when it has an id to recognise it by.
			if tt.stepFailed {
				if code, body := h.post(t, tt.body); code != http.StatusOK || body != `{"outcome":"duplicate"}` {
					t.Fatalf("redelivered poison: %d %s", code, body)
				}
			}
		})
	}
	// Still serving: a good event is handled.
	if code, body := h.post(t, pushBody(good, "ok")); code != http.StatusOK || body != `{"outcome":"handled"}` {
		t.Fatalf("after bad input: %d %s", code, body)
	}
	if n := h.count(t, `SELECT count(*) FROM technicians`); n != 1 {
		t.Fatalf("%d effect rows, want 1: nothing of a bad event may be written", n)
	}
}

func TestTransientFailureIsRetriedUntilSuccess(t *testing.T) {
	h := newHarness(t, time.Second)
	failedTopic := h.ps.Subscribe(t, "step-failed")
	var calls atomic.Int32
	h.handleStep(func(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
		// Fail with a result: its commit must not be written.
		res, err := effect(ctx, ev)
		if err != nil {
			return res, err
		}
		switch calls.Add(1) {
		case 1:
			return res, errors.New("backend answered 503")
		case 2:
			<-ctx.Done() // exceeds the handler timeout
			return res, ctx.Err()
		}
		return res, nil
	})
	body := pushBody(runStarted(t).Message(), "t1")
	for i, want := range []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK} {
		if code, b := h.post(t, body); code != want {
			t.Fatalf("attempt %d: %d %s, want %d", i+1, code, b, want)
		}
		if i < 2 && h.count(t, `SELECT count(*) FROM technicians`) != 0 {
			t.Fatalf("a failed attempt left its effect behind")
		}
	}
	if n := h.count(t, `SELECT count(*) FROM technicians`); n != 1 {
		t.Fatalf("%d effect rows, want 1", n)
	}
	if n := h.count(t, `SELECT count(*) FROM dead_letters`); n != 0 {
		t.Fatalf("a transient failure was dead-lettered")
	}
	f := expectMessages(t, failedTopic, 2)
	if len(f) != 2 || !f[0].Retrying || !f[1].Retrying || !strings.Contains(f[0].Error, "503") || !strings.Contains(f[1].Error, "deadline") {
		t.Fatalf("retry reports %v", f)
	}
}

// runIn inserts a run of the preventive maintenance pipeline in state and
// returns the run-started event of it.
func (h *harness) runIn(t *testing.T, state string) eventing.Event {
	t.Helper()
	ev, err := eventing.New(events.RunStarted, events.Source(events.Control), "manual__"+state,
		events.PreventiveMaintenance, "", &eventsv1.RunStarted{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(context.Background(), `INSERT INTO pipelines (id) VALUES ($1) ON CONFLICT DO NOTHING`, events.PreventiveMaintenance); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(context.Background(), `INSERT INTO runs (run_id, pipeline, state, source, logical_date)
		VALUES ($1, $2, $3, 'manual', now())`, ev.RunID, events.PreventiveMaintenance, state); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestStepOfStoppedRunIsNotPerformed: a step event of a run that is no
// longer active (cancelled, failed, success, skipped) is acked as cancelled
// and recorded, and the step neither runs nor reports; a queued or running
// run's step is performed.
func TestStepOfStoppedRunIsNotPerformed(t *testing.T) {
	h := newHarness(t, time.Minute)
	var calls atomic.Int32
	h.handleStep(func(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
		calls.Add(1)
		return effect(ctx, ev)
	})
	for _, state := range []string{"cancelled", "failed", "success", "skipped"} {
		t.Run(state, func(t *testing.T) {
			ev := h.runIn(t, state)
			for i, want := range []string{`{"outcome":"cancelled"}`, `{"outcome":"duplicate"}`} {
				if code, body := h.post(t, pushBody(ev.Message(), fmt.Sprint(state, i))); code != http.StatusOK || body != want {
					t.Fatalf("delivery %d: %d %s, want %s", i+1, code, body, want)
				}
			}
			if n := h.count(t, `SELECT count(*) FROM processed_events WHERE event_id = $1`, ev.ID()); n != 1 {
				t.Fatalf("the event is recorded %d times, want once", n)
			}
			if calls.Load() != 0 || eventingtest.Count(t, h.pool, "", "") != 0 {
				t.Fatalf("a %s run's step ran (%d calls) or reported", state, calls.Load())
			}
		})
	}
	for _, state := range []string{"queued", "running"} {
		if code, body := h.post(t, pushBody(h.runIn(t, state).Message(), state)); code != http.StatusOK || body != `{"outcome":"handled"}` {
			t.Fatalf("a %s run's step: %d %s, want handled", state, code, body)
		}
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls, want the queued and the running run's steps", calls.Load())
	}
}

// TestStepIsStoppedWhenItsRunStops: a run that stops being active while its
// step is at work cancels the handler's context with cause ErrRunStopped;
// the delivery is acked as cancelled and recorded, nothing the handler wrote
// commits, whatever it returns, and the step reports neither success nor
// failure. A redelivery does not call the handler again.
func TestStepIsStoppedWhenItsRunStops(t *testing.T) {
	for _, tt := range []struct {
		name   string
		result func(ctx context.Context) error
	}{
		{"handler returns the cause", context.Cause},
		{"handler returns success anyway", func(context.Context) error { return nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, time.Minute)
			var calls atomic.Int32
			at, cause := make(chan struct{}), make(chan error, 1)
			h.handleStep(func(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
				calls.Add(1)
				res, err := effect(ctx, ev)
				if err != nil {
					return res, err
				}
				close(at)
				<-ctx.Done()
				cause <- context.Cause(ctx)
				return res, tt.result(ctx)
			})
			ev := h.runIn(t, "running")
			go func() {
				<-at
				if _, err := h.pool.Exec(context.Background(), `UPDATE runs SET state = 'failed' WHERE run_id = $1`, ev.RunID); err != nil {
					t.Error(err)
				}
			}()
			if code, body := h.post(t, pushBody(ev.Message(), "1")); code != http.StatusOK || body != `{"outcome":"cancelled"}` {
				t.Fatalf("%d %s, want 200 cancelled", code, body)
			}
			if err := <-cause; !errors.Is(err, eventing.ErrRunStopped) {
				t.Fatalf("handler's context cause %v, want ErrRunStopped", err)
			}
			if n := h.count(t, `SELECT count(*) FROM processed_events WHERE event_id = $1`, ev.ID()); n != 1 {
				t.Fatalf("the event is recorded %d times, want once", n)
			}
			if n := h.count(t, `SELECT count(*) FROM technicians`); n != 0 {
				t.Fatalf("%d effect rows of a stopped step committed", n)
			}
			if n := eventingtest.Count(t, h.pool, events.StepSucceeded, "") + eventingtest.Count(t, h.pool, events.StepFailed, ""); n != 0 {
				t.Fatalf("%d step outcome events for a stopped step, want none", n)
			}
			if code, body := h.post(t, pushBody(ev.Message(), "2")); code != http.StatusOK || body != `{"outcome":"duplicate"}` {
				t.Fatalf("redelivery: %d %s, want 200 duplicate", code, body)
			}
			if calls.Load() != 1 {
				t.Fatalf("%d handler calls, want 1", calls.Load())
			}
		})
	}
}

// syncBuffer is a log sink safe for the router's concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes the JSON lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// TestStepLogLinesNameRunStepAndAttempt: every line a step handler logs
// through its context logger names the event, run, pipeline and step, and the
// router marks each attempt it reports started with one StepStartedLog line.
func TestStepLogLinesNameRunStepAndAttempt(t *testing.T) {
	h := newHarness(t, time.Minute)
	var sink syncBuffer
	log := slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
	router := eventing.NewRouter(eventing.RouterConfig{Service: events.Pmgen, Pool: h.pool, Log: log})
	var calls atomic.Int32
	router.HandleStep(events.RunStarted, events.WorkOrdersGenerated, func(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
		n := calls.Add(1)
		logging.From(ctx).DebugContext(ctx, "handling", "call", n)
		if n == 1 {
			return eventing.StepResult{}, errors.New("backend answered 503")
		}
		return effect(ctx, ev)
	})
	ev := runStarted(t)
	for i, want := range []eventing.Outcome{eventing.Retry, eventing.Handled} {
		m := ev.Message()
		m.DeliveryAttempt = i + 1
		if out, _ := router.Process(context.Background(), m); out != want {
			t.Fatalf("delivery %d: %s, want %s", i+1, out, want)
		}
	}
	var got []string
	for _, l := range sink.lines(t) {
		if l["run_id"] != ev.RunID || l["pipeline"] != events.PreventiveMaintenance || l["step"] != events.Pmgen || l["event_id"] != ev.ID() {
			t.Errorf("line without the run's attributes: %v", l)
		}
		got = append(got, fmt.Sprintf("%s %v %v", l["msg"], l["delivery_attempt"], l["call"]))
	}
	want := []string{
		eventing.StepStartedLog + " 1 <nil>", "handling 1 1", "event failed, will be retried 1 <nil>",
		eventing.StepStartedLog + " 2 <nil>", "handling 2 2", "event handled 2 <nil>",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
