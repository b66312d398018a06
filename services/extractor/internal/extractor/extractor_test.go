package extractor_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/extractor/internal/extractor"
)

type env struct {
	pool   *pgxpool.Pool
	store  *objstore.Store
	router *eventing.Router
}

// setup seeds a small demo fleet and returns a router serving the step,
// without a relay: emitted events stay in the outbox for the test to read.
func setup(t *testing.T) env {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	if _, err := fleet.Seed(ctx, pool, fleet.SeedOptions{Seed: 7, Assets: 40, Now: time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	store := objstoretest.New(t)
	h, err := extractor.New(pool, store)
	if err != nil {
		t.Fatal(err)
	}
	r := eventing.NewRouter(eventing.RouterConfig{Service: events.Extractor, Pool: pool,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.Register(r)
	return env{pool: pool, store: store, router: r}
}

func runStarted(t *testing.T, runID, pipeline string, conf map[string]string) eventing.Message {
	t.Helper()
	p := &eventsv1.RunStarted{Conf: conf, LogicalDate: timestamppb.New(time.Date(2026, 3, 15, 2, 0, 0, 0, time.UTC))}
	return eventingtest.Event(t, events.RunStarted, runID, pipeline, p).Message()
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func rawExtracted(t *testing.T, pool *pgxpool.Pool) []*eventsv1.RawExtracted {
	return eventingtest.Emitted(t, pool, events.RawExtracted, "", func() *eventsv1.RawExtracted { return &eventsv1.RawExtracted{} })
}

func readAll[T any](t *testing.T, store *objstore.Store, name string) []T {
	t.Helper()
	b, err := store.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parquet.Read[T](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("read back %s: %v", name, err)
	}
	return rows
}

func TestExtractWritesEveryTable(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	eventingtest.Deliver(t, e.router, runStarted(t, "manual__1", events.ETLMLTraining, nil), eventing.Handled)
	evs := rawExtracted(t, e.pool)
	if len(evs) != 1 {
		t.Fatalf("%d raw.extracted events, want 1", len(evs))
	}
	p := evs[0]
	if p.SnapshotDate != "2026-03-15" {
		t.Errorf("snapshot date %q, want the logical date's day", p.SnapshotDate)
	}
	if len(p.Objects) != len(features.RawTables) {
		t.Fatalf("%d objects, want %d", len(p.Objects), len(features.RawTables))
	}
	for i, table := range features.RawTables {
		o := p.Objects[i]
		want := "runs/manual__1/raw/" + table + ".parquet"
		if o.Name != want || o.Uri != "gs://"+objstoretest.Bucket+"/"+want {
			t.Errorf("object %d: %s %s, want %s", i, o.Name, o.Uri, want)
		}
		if n := count(t, e.pool, "SELECT count(*) FROM "+table); o.Rows != n || n == 0 {
			t.Errorf("%s: %d rows extracted, table has %d", table, o.Rows, n)
		}
		b, err := e.store.Get(ctx, o.Name)
		if err != nil || int64(len(b)) != o.Bytes {
			t.Errorf("%s: object is %d bytes, event says %d (%v)", table, len(b), o.Bytes, err)
		}
	}

	// Read back and compare with the database.
	assets := readAll[features.Asset](t, e.store, p.Objects[0].Name)
	wos := readAll[features.WorkOrder](t, e.store, p.Objects[1].Name)
	plans := readAll[features.MaintenancePlan](t, e.store, p.Objects[2].Name)
	if int64(len(assets)) != p.Objects[0].Rows || int64(len(wos)) != p.Objects[1].Rows || int64(len(plans)) != p.Objects[2].Rows {
		t.Fatalf("read back %d/%d/%d rows", len(assets), len(wos), len(plans))
	}
	var completed, nullRepair, withDue int64
	var repair float64
	for _, w := range wos {
		if w.CompletedAt != nil {
			completed++
		}
		if w.RepairHours == nil {
			nullRepair++
		} else {
			repair += *w.RepairHours
		}
		if w.DueDate != nil {
			withDue++
		}
	}
	if n := count(t, e.pool, `SELECT count(completed_at) FROM work_orders`); n != completed {
		t.Errorf("completed_at: %d non-null in parquet, %d in the table", completed, n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM work_orders WHERE repair_hours IS NULL`); n != nullRepair {
		t.Errorf("repair_hours: %d null in parquet, %d in the table", nullRepair, n)
	}
	if n := count(t, e.pool, `SELECT count(due_date) FROM work_orders`); n != withDue {
		t.Errorf("due_date: %d in parquet, %d in the table", withDue, n)
	}
	var dbRepair float64
	if err := e.pool.QueryRow(ctx, `SELECT coalesce(sum(repair_hours), 0)::float8 FROM work_orders`).Scan(&dbRepair); err != nil {
		t.Fatal(err)
	}
	if d := dbRepair - repair; d > 1e-6 || d < -1e-6 {
		t.Errorf("sum of repair hours %v, table %v", repair, dbRepair)
	}
	// One row in detail: dates and timestamps keep their values.
	var id int64
	var commissioned time.Time
	var created time.Time
	if err := e.pool.QueryRow(ctx, `SELECT id, commissioned_date, created_at FROM assets ORDER BY id LIMIT 1`).Scan(&id, &commissioned, &created); err != nil {
		t.Fatal(err)
	}
	for _, a := range assets {
		if a.ID == id {
			if features.FormatDate(a.CommissionedDate) != commissioned.Format(time.DateOnly) || a.CreatedAt != created.UnixMicro() {
				t.Errorf("asset %d: commissioned %s created %d, want %s %d", id, features.FormatDate(a.CommissionedDate),
					a.CreatedAt, commissioned.Format(time.DateOnly), created.UnixMicro())
			}
		}
	}

	// The step reported its figures.
	var done eventsv1.StepSucceeded
	if !eventingtest.Last(t, e.pool, events.StepSucceeded, &done) {
		t.Fatal("no step.succeeded")
	}
	figures := done.GetFigures()
	if figures["work_orders_rows"] != float64(p.Objects[1].Rows) || figures["assets_bytes"] != float64(p.Objects[0].Bytes) || figures["rows"] == 0 {
		t.Errorf("figures %v", figures)
	}
}

func TestRedeliveryRewritesTheSameObjects(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	msg := runStarted(t, "manual__2", events.ETLMLTraining, map[string]string{"snapshot_date": "2026-01-31"})
	eventingtest.Deliver(t, e.router, msg, eventing.Handled)
	eventingtest.Deliver(t, e.router, msg, eventing.Duplicate)
	objs, err := e.store.List(ctx, "runs/manual__2/")
	if err != nil || len(objs) != 3 {
		t.Fatalf("objects %v %v", objs, err)
	}
	// A new delivery for the same run (a step retried by hand, or a handler
	// that failed after writing) rewrites the objects: still three.
	if _, err := e.pool.Exec(ctx, `INSERT INTO work_orders (wo_number, asset_id, type, title) SELECT 'WO-NEW', min(id), 'CORRECTIVE', 'x' FROM assets`); err != nil {
		t.Fatal(err)
	}
	again := runStarted(t, "manual__2", events.ETLMLTraining, map[string]string{"snapshot_date": "2026-01-31"})
	eventingtest.Deliver(t, e.router, again, eventing.Handled)
	objs2, err := e.store.List(ctx, "runs/")
	if err != nil || len(objs2) != 3 {
		t.Fatalf("after redelivery %d objects (%v), want the same 3", len(objs2), err)
	}
	evs := rawExtracted(t, e.pool)
	if len(evs) != 2 || evs[1].Objects[1].Rows != evs[0].Objects[1].Rows+1 || evs[1].SnapshotDate != "2026-01-31" {
		t.Fatalf("events %v", evs)
	}
	if got := readAll[features.WorkOrder](t, e.store, "runs/manual__2/raw/work_orders.parquet"); int64(len(got)) != evs[1].Objects[1].Rows {
		t.Fatalf("rewritten object has %d rows", len(got))
	}
}

func TestBadInputIsDeadLettered(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, pipeline string
		conf           map[string]string
		reason         string
	}{
		{"bad snapshot date", events.ETLMLTraining, map[string]string{"snapshot_date": "31.01.2026"}, "conf snapshot_date"},
		{"other pipeline", events.WeeklyKPIReport, nil, "extractor takes cmmsflow.run.started.v1 only in etl_ml_training and model_monitoring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := runStarted(t, "bad__"+strings.ReplaceAll(tc.name, " ", "_"), tc.pipeline, tc.conf)
			eventingtest.Deliver(t, e.router, msg, eventing.DeadLettered)
			var reason string
			if err := e.pool.QueryRow(ctx, `SELECT reason FROM dead_letters WHERE event_id = $1`, msg.Attributes[eventing.AttrID]).Scan(&reason); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(reason, tc.reason) {
				t.Fatalf("reason %q, want it to mention %q", reason, tc.reason)
			}
		})
	}
	if objs, _ := e.store.List(ctx, "runs/"); len(objs) != 0 {
		t.Fatalf("bad input wrote %v", objs)
	}
}

func TestSnapshotDate(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 3, 14, 23, 30, 0, 0, time.FixedZone("x", -3*3600))) // 02:30 UTC on the 15th
	for _, tc := range []struct {
		p    *eventsv1.RunStarted
		want string
		ok   bool
	}{
		{&eventsv1.RunStarted{LogicalDate: at}, "2026-03-15", true},
		{&eventsv1.RunStarted{LogicalDate: at, Conf: map[string]string{"snapshot_date": " 2025-12-31 "}}, "2025-12-31", true},
		{&eventsv1.RunStarted{LogicalDate: at, Conf: map[string]string{"snapshot_date": "2025-02-30"}}, "", false},
		{&eventsv1.RunStarted{}, "", false},
	} {
		got, err := extractor.SnapshotDate(tc.p)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("%v: %q %v, want %q ok=%v", tc.p, got, err, tc.want, tc.ok)
		}
	}
}

// The step's declared edges are the registry's.
func TestRoutesMatchTheRegistry(t *testing.T) {
	eventingtest.CheckRoutes(t, setup(t).router, events.Extractor)
}
