package reporter_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/reporter/internal/reporter"
)

func newHandler(t *testing.T, env map[string]string) (*reporter.Handler, error) {
	t.Helper()
	env["DATABASE_URL"] = "postgres://unused"
	var cfg reporter.Config
	if err := config.LoadFrom(context.Background(), &cfg, env); err != nil {
		t.Fatal(err)
	}
	return reporter.New(cfg, objstoretest.New(t))
}

func TestConfig(t *testing.T) {
	if _, err := newHandler(t, map[string]string{}); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, env := range map[string]map[string]string{
		"bad zone":    {"REPORT_TIME_ZONE": "Mars/Olympus"},
		"local zone":  {"REPORT_TIME_ZONE": "Local"},
		"tiny window": {"REPORT_MTBF_WINDOW_DAYS": "3"},
		"drift order": {"DRIFT_WARN": "0.3", "DRIFT_ALERT": "0.2"},
		"drift zero":  {"DRIFT_WARN": "0"},
	} {
		if _, err := newHandler(t, env); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestWeekRule(t *testing.T) {
	h, err := newHandler(t, map[string]string{"REPORT_TIME_ZONE": "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	monday := timestamppb.New(time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)) // Mon 08:00 in Berlin
	for _, tt := range []struct {
		conf map[string]string
		want string
		err  bool
	}{
		{nil, "2026-W47", false},
		{map[string]string{"week": "2026-W10"}, "2026-W10", false},
		{map[string]string{"week": " 2026-W10 "}, "2026-W10", false},
		{map[string]string{"week": "2025-W53"}, "", true},
		{map[string]string{"week": "last week"}, "", true},
		{map[string]string{"other": "x"}, "2026-W47", false},
	} {
		w, err := h.Week(&eventsv1.RunStarted{LogicalDate: monday, Conf: tt.conf})
		if (err != nil) != tt.err || (!tt.err && w.String() != tt.want) {
			t.Errorf("conf %v: %v, %v; want %s (error %v)", tt.conf, w, err, tt.want, tt.err)
		}
	}
	if _, err := h.Week(&eventsv1.RunStarted{}); err == nil {
		t.Error("no logical date: no error")
	}
}

type fixture struct {
	t      *testing.T
	pool   *pgxpool.Pool
	router *eventing.Router
	count  func(sql string, args ...any) int
}

// newFixture seeds a week's work order and returns a router with the step
// on a test bucket, which wrap (when not nil) may wrap.
func newFixture(t *testing.T, wrap func(reporter.Bucket) reporter.Bucket) (*fixture, func(name string) []byte, func() []string) {
	pool := pgtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `
		INSERT INTO assets (asset_tag, name, vehicle_type, commissioned_date) VALUES ('TRK-1', 'Truck', 'truck', '2020-01-01');
		INSERT INTO work_orders (wo_number, asset_id, type, status, title, created_at, started_at, completed_at, repair_hours)
		SELECT 'W1', id, 'CORRECTIVE', 'COMPLETED', 'Brakes', '2026-11-17 08:00Z', '2026-11-17 09:00Z', '2026-11-17 12:00Z', 3 FROM assets`); err != nil {
		t.Fatal(err)
	}
	store := objstoretest.New(t)
	var cfg reporter.Config
	if err := config.LoadFrom(ctx, &cfg, map[string]string{"DATABASE_URL": "postgres://unused"}); err != nil {
		t.Fatal(err)
	}
	var bucket reporter.Bucket = store
	if wrap != nil {
		bucket = wrap(store)
	}
	h, err := reporter.New(cfg, bucket)
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Reporter, Pool: pool, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.Register(r, pool)
	f := &fixture{t: t, pool: pool, router: r, count: func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}}
	get := func(name string) []byte {
		b, err := store.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	list := func() []string {
		objs, err := store.List(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, o := range objs {
			names = append(names, o.Name)
		}
		return names
	}
	return f, get, list
}

func runStarted(t *testing.T, runID string, logical time.Time, conf map[string]string) eventing.Event {
	t.Helper()
	return eventingtest.Event(t, events.RunStarted, runID, events.WeeklyKPIReport,
		&eventsv1.RunStarted{LogicalDate: timestamppb.New(logical), Conf: conf})
}

// Three deliveries of the same run-started: one report, one set of
// objects, one report.generated in the outbox.
func TestStepIsIdempotent(t *testing.T) {
	f, get, list := newFixture(t, nil)
	ev := runStarted(t, "scheduled__2026-11-23T08:00:00+00:00", time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), nil)
	for _, want := range []eventing.Outcome{eventing.Handled, eventing.Duplicate, eventing.Duplicate} {
		eventingtest.Deliver(t, f.router, ev.Message(), want)
	}
	want := []string{"reports/2026-W47/kpis.csv", "reports/2026-W47/mtbf_by_type.png", "reports/2026-W47/report.html",
		"reports/2026-W47/report.pdf", "reports/2026-W47/trend_12w.png", "reports/2026-W47/wo_status.png"}
	if got := list(); !slices.Equal(got, want) {
		t.Fatalf("objects %v,\nwant %v", got, want)
	}
	if n := eventingtest.Count(t, f.pool, events.ReportGenerated, ""); n != 1 {
		t.Fatalf("%d report.generated events, want 1", n)
	}
	if n := eventingtest.Count(t, f.pool, events.StepSucceeded, ""); n != 1 {
		t.Fatalf("%d step.succeeded events, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM reports WHERE iso_week = '2026-W47' AND pdf_uri = 'gs://test-bucket/reports/2026-W47/report.pdf'
		AND (kpis->>'mttr_hours')::float = 3`); n != 1 {
		t.Fatalf("reports row missing or wrong")
	}
	if !strings.HasPrefix(string(get("reports/2026-W47/report.pdf")), "%PDF-") ||
		!strings.Contains(string(get("reports/2026-W47/report.html")), "2026-W47") {
		t.Fatal("stored report content")
	}

	// The event tells the notifier where everything is.
	var gen eventsv1.ReportGenerated
	if !eventingtest.Last(t, f.pool, events.ReportGenerated, &gen) {
		t.Fatal("no report.generated")
	}
	if gen.IsoWeek != "2026-W47" || gen.Pdf.GetName() != "reports/2026-W47/report.pdf" || gen.Pdf.GetBytes() == 0 ||
		gen.Html.GetContentType() != "text/html; charset=utf-8" || len(gen.Charts) != 3 || gen.Kpis["wo_opened"] != 1 {
		t.Fatalf("event %v", &gen)
	}

	// Another run for the same week (a manual regeneration) overwrites the
	// same objects and the report's row.
	again := runStarted(t, "manual__2026-11-24T10:00:00+00:00", time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), map[string]string{"week": "2026-W47"})
	eventingtest.Deliver(t, f.router, again.Message(), eventing.Handled)
	if got := list(); !slices.Equal(got, want) {
		t.Fatalf("after regeneration: objects %v", got)
	}
	if n := f.count(`SELECT count(*) FROM reports WHERE run_id = 'manual__2026-11-24T10:00:00+00:00'`); n != 1 {
		t.Fatal("reports row not replaced")
	}
}

// A bad conf week is permanent: dead-lettered, the step failed with the
// reason, nothing stored.
func TestBadWeekFailsTheStep(t *testing.T) {
	f, _, list := newFixture(t, nil)
	ev := runStarted(t, "manual__x", time.Now(), map[string]string{"week": "2026-W99"})
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.DeadLettered)
	if n := f.count(`SELECT count(*) FROM dead_letters WHERE consumer = 'reporter' AND reason LIKE '%conf week%'`); n != 1 {
		t.Fatalf("%d dead letters", n)
	}
	if n := eventingtest.Count(t, f.pool, events.StepFailed, ""); n != 1 {
		t.Fatalf("%d step.failed", n)
	}
	if objs := list(); len(objs) != 0 {
		t.Fatalf("stored %v", objs)
	}
}

// A run of another pipeline is refused for good by the router: dead-lettered
// with the reason, nothing built.
func TestAnotherPipelineIsRefused(t *testing.T) {
	f, _, list := newFixture(t, nil)
	ev := eventingtest.Event(t, events.RunStarted, "run-1", events.PreventiveMaintenance,
		&eventsv1.RunStarted{LogicalDate: timestamppb.New(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC))})
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.DeadLettered)
	if n := f.count(`SELECT count(*) FROM dead_letters WHERE reason LIKE '%reporter takes cmmsflow.run.started.v1 only in weekly_kpi_report%'`); n != 1 {
		t.Fatalf("%d dead letters with the reason", n)
	}
	if n := f.count(`SELECT count(*) FROM reports`); n != 0 || len(list()) != 0 {
		t.Fatalf("%d reports rows, %v stored", n, list())
	}
}

// slowBucket holds the upload of the PDF for hold, as a slow object store
// would.
type slowBucket struct {
	reporter.Bucket
	hold time.Duration
}

func (b slowBucket) Put(ctx context.Context, name, contentType string, data []byte) error {
	if strings.HasSuffix(name, reporter.FilePDF) {
		select {
		case <-time.After(b.hold):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.Bucket.Put(ctx, name, contentType, data)
}

// The KPI queries, the rendering and the uploads run with no transaction
// open: while the object store takes 2 s over the PDF, no transaction on the
// database is older than 1 s, and the report is recorded after all.
func TestNoTransactionWhileUploading(t *testing.T) {
	const hold = 2 * time.Second
	f, _, _ := newFixture(t, func(b reporter.Bucket) reporter.Bucket { return slowBucket{Bucket: b, hold: hold} })
	ev := runStarted(t, "scheduled__2026-11-23T08:00:00+00:00", time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), nil)
	longest := eventingtest.WatchTransactions(t, f.pool)
	started := time.Now()
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	took, oldest := time.Since(started), longest()
	if took < hold {
		t.Fatalf("the step took %s, less than the upload's %s hold", took, hold)
	}
	if oldest > time.Second {
		t.Errorf("a transaction stayed open %s while the report was uploaded, want at most 1s", oldest)
	} else {
		t.Logf("oldest transaction seen during a %s upload: %s", hold, oldest)
	}
	if n := f.count(`SELECT count(*) FROM reports WHERE iso_week = '2026-W47'`); n != 1 {
		t.Fatalf("%d reports rows, want 1", n)
	}
	if n := eventingtest.Count(t, f.pool, events.ReportGenerated, ""); n != 1 {
		t.Fatalf("%d report.generated events, want 1", n)
	}
}

// The step's declared edges are the registry's.
func TestRoutesMatchTheRegistry(t *testing.T) {
	f, _, _ := newFixture(t, nil)
	eventingtest.CheckRoutes(t, f.router, events.Reporter)
}

// The stored report carries the model-health section of the monitoring
// recorded in the week.
func TestStepReportsModelHealth(t *testing.T) {
	f, get, _ := newFixture(t, nil)
	if _, err := f.pool.Exec(context.Background(), `
		INSERT INTO model_scorings (run_id, pipeline, model_version, role, snapshot_date, scored_assets, risk_bands, risk_levels,
		                            psi, max_psi, drift, scored_at)
		VALUES ('mon1', 'model_monitoring', 'v20261101-abc', 'champion', '2026-11-21', 1, '{}', '{}',
		        '{"asset_age_days": 0.8, "score": 0.05}', 0.8, 'alert', '2026-11-21 05:00Z')`); err != nil {
		t.Fatal(err)
	}
	ev := runStarted(t, "scheduled__2026-11-23T08:00:00+00:00", time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), nil)
	eventingtest.Deliver(t, f.router, ev.Message(), eventing.Handled)
	html := string(get("reports/2026-W47/report.html"))
	for _, want := range []string{"Model health", "v20261101-abc", "asset_age_days 0.800 (alert)", "not yet: no label window has passed"} {
		if !strings.Contains(html, want) {
			t.Errorf("stored HTML lacks %q", want)
		}
	}
}
