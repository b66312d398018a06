package local_test

import (
	"context"
	"flag"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/local"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/rawtest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/{training,scoring}.csv from the local engine")

const golden = "../../testdata/golden"

func build(t *testing.T, store *objstore.Store, raw []*eventsv1.StoredObject, p rawtest.Params) (engine.Outputs, error) {
	t.Helper()
	return local.New(store, t.TempDir()).Build(context.Background(), engine.Inputs{
		RunID: "r1", SnapshotDate: p.SnapshotDate, Raw: raw, OutPrefix: engine.OutPrefix("r1"),
		LookbackDays: p.LookbackDays, LabelWindowDays: p.LabelWindowDays,
	})
}

// TestGolden checks the local engine against the shared golden fixture that
// spark/test_features.py checks the PySpark script against.
func TestGolden(t *testing.T) {
	store := objstoretest.New(t)
	tables, p := rawtest.LoadGolden(t, golden)
	out, err := build(t, store, rawtest.Write(t, store, "runs/r1/raw/", tables), p)
	if err != nil {
		t.Fatal(err)
	}
	if out.Training.Name != "runs/r1/features/training.parquet" || out.Scoring.Name != "runs/r1/features/scoring.parquet" {
		t.Fatalf("outputs %v %v", out.Training, out.Scoring)
	}
	for _, f := range []struct {
		file string
		obj  *eventsv1.StoredObject
	}{{"training.csv", out.Training}, {"scoring.csv", out.Scoring}} {
		rows := rawtest.Read(t, store, f.obj.Name)
		if int64(len(rows)) != f.obj.Rows {
			t.Errorf("%s: %d rows, outputs say %d", f.file, len(rows), f.obj.Rows)
		}
		path := filepath.Join(golden, f.file)
		if *update {
			if err := rawtest.WriteRowsCSV(path, rows); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := rawtest.ReadRowsCSV(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != len(rows) {
			t.Errorf("%s: %d rows, golden has %d", f.file, len(rows), len(want))
		}
		for i := range min(len(want), len(rows)) {
			got := rawtest.FormatRow(rows[i])
			for j, col := range features.Columns {
				if !sameCell(got[j], want[i][j]) {
					t.Errorf("%s row %d (asset %s, %s) %s = %s, want %s", f.file, i+1, want[i][0], want[i][2], col, got[j], want[i][j])
				}
			}
		}
	}
}

func sameCell(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	return err1 == nil && err2 == nil && math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y))
}

// TestGoldenByHand pins a few rows of the fixture worked out by hand, so the
// golden files cannot drift unnoticed with -update.
func TestGoldenByHand(t *testing.T) {
	store := objstoretest.New(t)
	tables, p := rawtest.LoadGolden(t, golden)
	out, err := build(t, store, rawtest.Write(t, store, "runs/r1/raw/", tables), p)
	if err != nil {
		t.Fatal(err)
	}
	training := rawtest.Read(t, store, out.Training.Name)
	find := func(rows []features.Row, asset int64, snap string) *features.Row {
		for i := range rows {
			if rows[i].AssetID == asset && rows[i].SnapshotDate == snap {
				return &rows[i]
			}
		}
		return nil
	}
	// Snapshots: 180 days after the first work order (2025-01-10) is
	// 2025-07-09, so August to December (the last whose 60-day label
	// window ends by 2026-03-01).
	var snaps []string
	for _, r := range training {
		if !slices.Contains(snaps, r.SnapshotDate) {
			snaps = append(snaps, r.SnapshotDate)
		}
	}
	if want := []string{"2025-08-01", "2025-09-01", "2025-10-01", "2025-11-01", "2025-12-01"}; !slices.Equal(snaps, want) {
		t.Fatalf("snapshots %v, want %v", snaps, want)
	}
	// Truck 1 on 2025-09-01: the window is [2025-03-05, 2025-09-01), so WOs
	// 3 and 4 (1 and 2 are older); 4 (CRITICAL) completes after the
	// snapshot; 3 was done late (missed; 2, due in the window, on time);
	// last maintenance 2025-07-20 → 43 days; repair hours of 3 only; label:
	// WO 6 created 2025-10-01T00:00 lies in [09-01, 10-31).
	if r := find(training, 1, "2025-09-01"); r == nil || r.TotalWorkOrders != 2 || r.CompletedWorkOrders != 1 ||
		r.HighPriorityWorkOrders != 1 || r.CriticalWorkOrders != 1 || r.CorrectiveWorkOrders != 1 || r.MissedMaintenance != 1 ||
		r.DaysSinceLastMaintenance != 43 || r.AvgRepairHours != 3 || r.Label != 1 || r.AssetAgeDays != 2661 {
		t.Errorf("truck 1 at 2025-09-01: %+v", r)
	}
	// WO 6 is created exactly at 2025-10-01 00:00: not a feature of that
	// snapshot (3, 4, 5 are), but its label; 5 was skipped.
	if r := find(training, 1, "2025-10-01"); r == nil || r.TotalWorkOrders != 3 || r.Label != 1 || r.MissedMaintenance != 2 ||
		r.AvgRepairHours != 4.625 {
		t.Errorf("truck 1 at 2025-10-01: %+v", r)
	}
	// Van 2, commissioned 2025-09-15, appears from October; bus 3, retired
	// 2025-10-20 (its plans' latest end date), until October.
	if find(training, 2, "2025-09-01") != nil || find(training, 2, "2025-10-01") == nil {
		t.Error("van 2 should start at 2025-10-01")
	}
	if find(training, 3, "2025-10-01") == nil || find(training, 3, "2025-11-01") != nil {
		t.Error("bus 3 should end at 2025-10-01")
	}
	// Bus 3 on 2025-08-01: WO 13 completed at 23:59:59 the day before →
	// one day since maintenance; WO 14 skipped; label from the cancelled
	// breakdown report WO 15.
	if r := find(training, 3, "2025-08-01"); r == nil || r.DaysSinceLastMaintenance != 1 || r.MissedMaintenance != 1 || r.Label != 1 ||
		r.TotalWorkOrders != 3 || r.CompletedWorkOrders != 2 {
		t.Errorf("bus 3 at 2025-08-01: %+v", r)
	}
	// Car 5 has no work orders: days since maintenance = age.
	if r := find(training, 5, "2025-08-01"); r == nil || r.DaysSinceLastMaintenance != r.AssetAgeDays || r.TotalWorkOrders != 0 || r.Label != 0 {
		t.Errorf("car 5: %+v", r)
	}
	// Scoring: the ACTIVE assets 1, 2, 5 at 2026-03-01, unlabelled, current
	// meters; WO 8 (2026-03-05) is after the snapshot date.
	scoring := rawtest.Read(t, store, out.Scoring.Name)
	var ids []int64
	for _, r := range scoring {
		ids = append(ids, r.AssetID)
		if r.Label != features.Unlabelled || r.SnapshotDate != "2026-03-01" {
			t.Errorf("scoring row %+v", r)
		}
	}
	if !slices.Equal(ids, []int64{1, 2, 5}) {
		t.Errorf("scoring assets %v", ids)
	}
	// Truck 1: window [2025-09-02, 2026-03-01) holds WOs 6 and 7; 5 (due
	// 09-15, skipped) is missed; 6 has no repair hours; last maintenance
	// still 2025-07-20.
	if r := find(scoring, 1, "2026-03-01"); r == nil || r.CriticalWorkOrders != 0 || r.MeterReading != 250000 || r.TotalWorkOrders != 2 ||
		r.MissedMaintenance != 1 || r.AvgRepairHours != 0 || r.DaysSinceLastMaintenance != 224 {
		t.Errorf("truck 1 scoring: %+v", r)
	}
	if r := find(scoring, 2, "2026-03-01"); r == nil || r.MissedMaintenance != 1 {
		t.Errorf("van 2 scoring (WO 11 open past its due date): %+v", r)
	}
}

// TestPointInTime: nothing created, completed or due at or after a snapshot
// changes that snapshot's features. Every work order is moved to a random
// time after the snapshot in turn, and the row must stay the same except for
// its label.
func TestPointInTime(t *testing.T) {
	store := objstoretest.New(t)
	tables, p := rawtest.LoadGolden(t, golden)
	base, err := build(t, store, rawtest.Write(t, store, "runs/base/raw/", tables), p)
	if err != nil {
		t.Fatal(err)
	}
	want := rawtest.Read(t, store, base.Training.Name)
	const snap = "2025-10-01"
	s, _ := features.ParseDate(snap)
	sUS := int64(s) * features.MicrosPerDay
	later := []int64{sUS, sUS + 1, sUS + 40*features.MicrosPerDay, sUS + 200*features.MicrosPerDay}

	// Add work orders after the snapshot, of every kind, to every asset.
	extra := tables
	extra.WorkOrders = slices.Clone(tables.WorkOrders)
	id := int64(1000)
	for _, a := range tables.Assets {
		for _, at := range later {
			for _, typ := range []string{"PREVENTIVE", "CORRECTIVE"} {
				for _, prio := range []string{"LOW", "CRITICAL"} {
					id++
					done := at + 3600e6
					due := s + 3
					hours := 7.0
					extra.WorkOrders = append(extra.WorkOrders, features.WorkOrder{ID: id, AssetID: a.ID, Type: typ, Status: "COMPLETED",
						Priority: prio, CreatedAt: at, CompletedAt: &done, DueDate: &due, RepairHours: &hours})
				}
			}
		}
	}
	// And complete every open or cancelled work order created before the
	// snapshot, after it.
	for i, w := range extra.WorkOrders {
		if w.CreatedAt < sUS && w.CompletedAt == nil {
			done := sUS + 5*features.MicrosPerDay
			hours := 99.0
			extra.WorkOrders[i].CompletedAt, extra.WorkOrders[i].RepairHours = &done, &hours
		}
	}
	out, err := build(t, store, rawtest.Write(t, store, "runs/extra/raw/", extra), p)
	if err != nil {
		t.Fatal(err)
	}
	got := rawtest.Read(t, store, out.Training.Name)
	n := 0
	for _, w := range want {
		if w.SnapshotDate != snap {
			continue
		}
		for _, g := range got {
			if g.AssetID == w.AssetID && g.SnapshotDate == snap {
				n++
				if !slices.Equal(g.Vector(), w.Vector()) {
					t.Errorf("asset %d at %s: features changed by later work orders:\n got %v\nwant %v", w.AssetID, snap, g.Vector(), w.Vector())
				}
				if g.Label != 1 {
					t.Errorf("asset %d: label %d, want 1 (corrective work orders were added at the snapshot)", w.AssetID, g.Label)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rows compared")
	}
}

func TestBadInput(t *testing.T) {
	store := objstoretest.New(t)
	tables, p := rawtest.LoadGolden(t, golden)
	good := rawtest.Write(t, store, "runs/r1/raw/", tables)
	noAssets := rawtest.Write(t, store, "runs/r2/raw/", rawtest.Tables{WorkOrders: tables.WorkOrders, Plans: tables.Plans})
	if err := store.Put(context.Background(), "runs/r3/raw/work_orders.parquet", "text/plain", []byte("id,asset_id\n1,2\n")); err != nil {
		t.Fatal(err)
	}
	// Work orders where the assets should be: columns vehicle_type etc. are
	// missing.
	b, err := store.Get(context.Background(), good[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(context.Background(), "runs/r4/raw/assets.parquet", "application/vnd.apache.parquet", b); err != nil {
		t.Fatal(err)
	}
	wrongCols := slices.Clone(good)
	wrongCols[0] = &eventsv1.StoredObject{Name: "runs/r4/raw/assets.parquet"}
	corrupt := slices.Clone(good)
	corrupt[1] = &eventsv1.StoredObject{Name: "runs/r3/raw/work_orders.parquet"}
	missing := slices.Clone(good)
	missing[2] = &eventsv1.StoredObject{Name: "runs/gone/raw/maintenance_plans.parquet"}
	short := p
	short.SnapshotDate = "2025-08-01"
	for _, tc := range []struct {
		name   string
		raw    []*eventsv1.StoredObject
		p      rawtest.Params
		reason string
	}{
		{"no assets", slices.Concat(noAssets[:1], good[1:]), p, "raw assets table has no rows"},
		{"unreadable parquet", corrupt, p, "runs/r3/raw/work_orders.parquet is not readable Parquet"},
		{"missing object", missing, p, "runs/gone/raw/maintenance_plans.parquet is missing from the bucket"},
		{"not listed", good[:2], p, "raw.extracted lists no maintenance_plans.parquet object"},
		{"wrong columns", wrongCols, p, "missing columns vehicle_type, commissioned_date, meter_reading, engine_hours"},
		{"history too short", good, short, "no training snapshots"},
		{"bad snapshot date", good, rawtest.Params{SnapshotDate: "2025-8-1"}, "snapshot date"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(t, store, tc.raw, tc.p)
			if err == nil || !eventing.IsPermanent(err) {
				t.Fatalf("err %v, want a permanent error", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err %q, want it to say %q", err, tc.reason)
			}
		})
	}
	if objs, _ := store.List(context.Background(), "runs/r1/features/"); len(objs) != 0 {
		t.Fatalf("bad input left %v", objs)
	}
}

func TestRebuildReplacesOutputs(t *testing.T) {
	store := objstoretest.New(t)
	tables, p := rawtest.LoadGolden(t, golden)
	raw := rawtest.Write(t, store, "runs/r1/raw/", tables)
	for range 2 {
		if _, err := build(t, store, raw, p); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := store.List(context.Background(), "runs/r1/features/")
	if err != nil || len(objs) != 2 {
		t.Fatalf("%v %v", objs, err)
	}
}
