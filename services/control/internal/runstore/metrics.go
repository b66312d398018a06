package runstore

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// MetricsScope is the instrumentation scope of control's run metrics.
const MetricsScope = "github.com/cmmsflow/cmmsflow/services/control/internal/runstore"

// Metric attribute keys.
const (
	keyPipeline = attribute.Key("pipeline")
	keyStep     = attribute.Key("step")
	keyState    = attribute.Key("state")
)

// runBuckets (seconds) span a dry run (a second) to a run that waited hours
// for a slot or its schedule.
var runBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400}

// stepBuckets (seconds) span a database step (milliseconds) to a Dataproc
// job (an hour).
var stepBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// lagBuckets (seconds) span a kick delivered at once to a tick caught up
// by the missed-tick watcher (after its grace, ten minutes by default).
var lagBuckets = []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 86400}

// Metrics are control's run-level instruments. The transitions in this
// package note what they changed in the context's Tally (Metrics.Track),
// which records it once the caller's transaction has committed: a
// transition that changed no row, or whose transaction rolled back, records
// nothing. A nil *Metrics records nothing.
type Metrics struct {
	finished     metric.Int64Counter
	runDuration  metric.Float64Histogram
	stepDuration metric.Float64Histogram
	lag          metric.Float64Histogram
	missed       metric.Int64Counter
}

// NewMetrics creates the instruments on mp and registers the queued-runs
// gauge, read from db (a pool) when metrics are collected, bounded by
// queuedTimeout.
func NewMetrics(mp metric.MeterProvider, db DB) (*Metrics, error) {
	m := mp.Meter(MetricsScope)
	var x Metrics
	var errs [6]error
	x.finished, errs[0] = m.Int64Counter("cmmsflow.runs.finished", metric.WithUnit("{run}"),
		metric.WithDescription("Runs that ended, by pipeline and final state (success, failed, cancelled)."))
	x.runDuration, errs[1] = m.Float64Histogram("cmmsflow.runs.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from a run's queueing to its end, by pipeline and final state."),
		metric.WithExplicitBucketBoundaries(runBuckets...))
	x.stepDuration, errs[2] = m.Float64Histogram("cmmsflow.steps.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from a step's start to its end, by pipeline, step and final state."),
		metric.WithExplicitBucketBoundaries(stepBuckets...))
	x.lag, errs[3] = m.Float64Histogram("cmmsflow.schedule.lag", metric.WithUnit("s"),
		metric.WithDescription("Time from a cron tick to its scheduled run being queued, by pipeline."),
		metric.WithExplicitBucketBoundaries(lagBuckets...))
	x.missed, errs[4] = m.Int64Counter("cmmsflow.schedule.missed", metric.WithUnit("{tick}"),
		metric.WithDescription("Cron ticks that got no run within their grace period, by pipeline."))
	errs[5] = registerQueued(m, db)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	x.zero()
	return &x, nil
}

// zero starts the counters at 0 for every pipeline (and every final state):
// a series that first appears at 1 shows no increase, so an alert on the
// increase would miss the first failed run or missed tick after a restart.
func (m *Metrics) zero() {
	ctx := context.Background()
	for _, p := range events.Pipelines {
		for _, st := range []State{Success, Failed, Cancelled} {
			m.finished.Add(ctx, 0, metric.WithAttributes(keyPipeline.String(p.ID), keyState.String(string(st))))
		}
		m.missed.Add(ctx, 0, metric.WithAttributes(keyPipeline.String(p.ID)))
	}
}

// queuedTimeout bounds the gauge's query: a scrape is not held up by a slow
// database.
const queuedTimeout = time.Second

// registerQueued registers cmmsflow.runs.queued: the runs waiting for a slot
// (queued), by pipeline, read at collection time. A pipeline with none
// reports 0; when the database does not answer in time there is no reading.
func registerQueued(m metric.Meter, db DB) error {
	queued, err := m.Int64ObservableGauge("cmmsflow.runs.queued", metric.WithUnit("{run}"),
		metric.WithDescription("Runs queued, waiting for a slot (max_active_runs), by pipeline."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, queuedTimeout)
		defer cancel()
		rows, err := db.Query(ctx, `SELECT p.id, count(r.run_id) FROM pipelines p
			LEFT JOIN runs r ON r.pipeline = p.id AND r.state = 'queued' GROUP BY p.id`)
		if err != nil {
			return nil // the database is down: no reading this time
		}
		defer rows.Close()
		var pipeline string
		var n int64
		for rows.Next() {
			if rows.Scan(&pipeline, &n) == nil {
				o.ObserveInt64(queued, n, metric.WithAttributes(keyPipeline.String(pipeline)))
			}
		}
		return nil
	}, queued)
	return err
}

// TicksMissed counts n missed ticks of pipeline; call it once the
// transaction that recorded them (missed_ticks) has committed.
func (m *Metrics) TicksMissed(ctx context.Context, pipeline string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.missed.Add(ctx, int64(n), metric.WithAttributes(keyPipeline.String(pipeline)))
}

// Track returns ctx carrying a new Tally, which the transitions made with
// that context note their changes in, and the Tally: call its Record once
// the transaction has committed. On a nil *Metrics it returns ctx as is and
// a nil Tally (which records nothing).
func (m *Metrics) Track(ctx context.Context) (context.Context, *Tally) {
	if m == nil {
		return ctx, nil
	}
	t := &Tally{m: m}
	return context.WithValue(ctx, tallyKey{}, t), t
}

// Tally is what one transaction's transitions changed, recorded by Record
// after commit.
type Tally struct {
	m    *Metrics
	runs []runEnd
	stps []stepEnd
	lags []scheduleLag
}

type tallyKey struct{}

type runEnd struct {
	pipeline      string
	state         State
	queued, ended time.Time
}

type stepEnd struct {
	pipeline, step string
	state          State
	started, ended time.Time
}

type scheduleLag struct {
	pipeline     string
	tick, queued time.Time
}

// tallyOf returns the Tally ctx carries, or nil.
func tallyOf(ctx context.Context) *Tally {
	t, _ := ctx.Value(tallyKey{}).(*Tally)
	return t
}

func (t *Tally) runEnded(e runEnd) {
	if t != nil {
		t.runs = append(t.runs, e)
	}
}

func (t *Tally) stepEnded(e stepEnd) {
	if t != nil {
		t.stps = append(t.stps, e)
	}
}

func (t *Tally) scheduled(l scheduleLag) {
	if t != nil {
		t.lags = append(t.lags, l)
	}
}

// Record records what the transaction changed, once, and empties the
// Tally; call it after commit only.
func (t *Tally) Record(ctx context.Context) {
	if t == nil {
		return
	}
	m := t.m
	for _, r := range t.runs {
		attrs := metric.WithAttributes(keyPipeline.String(r.pipeline), keyState.String(string(r.state)))
		m.finished.Add(ctx, 1, attrs)
		m.runDuration.Record(ctx, seconds(r.queued, r.ended), attrs)
	}
	for _, s := range t.stps {
		m.stepDuration.Record(ctx, seconds(s.started, s.ended),
			metric.WithAttributes(keyPipeline.String(s.pipeline), keyStep.String(s.step), keyState.String(string(s.state))))
	}
	for _, l := range t.lags {
		m.lag.Record(ctx, seconds(l.tick, l.queued), metric.WithAttributes(keyPipeline.String(l.pipeline)))
	}
	t.runs, t.stps, t.lags = nil, nil, nil
}

// seconds is to - from in seconds, 0 when clocks put to first.
func seconds(from, to time.Time) float64 {
	return max(to.Sub(from), 0).Seconds()
}
