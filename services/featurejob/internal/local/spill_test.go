package local_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/local"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/rawtest"
)

// spills counts the runs and chunks an engine writes.
type spills map[string]int

func (s spills) engine(t *testing.T, store *objstore.Store, runRows, chunkRecords int) *local.Engine {
	return local.NewWithSpill(store, t.TempDir(), runRows, chunkRecords, func(kind string) { s[kind]++ })
}

func buildWith(t *testing.T, st *objstore.Store, e *local.Engine, raw []*eventsv1.StoredObject, p rawtest.Params, prefix string) (engine.Outputs, [2][]byte) {
	t.Helper()
	out, err := e.Build(context.Background(), engine.Inputs{RunID: "r1", SnapshotDate: p.SnapshotDate, Raw: raw, OutPrefix: prefix,
		LookbackDays: p.LookbackDays, LabelWindowDays: p.LabelWindowDays})
	if err != nil {
		t.Fatal(err)
	}
	var b [2][]byte
	for i, o := range []*eventsv1.StoredObject{out.Training, out.Scoring} {
		if b[i], err = st.Get(context.Background(), o.Name); err != nil {
			t.Fatal(err)
		}
	}
	return out, b
}

// TestSpilledBuildIsTheSame: work orders in random asset order (as the
// extractor writes them: it does not order the table), built with runs of
// 7 work orders and bucket chunks of 3 training rows, give the same objects,
// byte for byte, as the build that holds everything in memory; and the
// engine held no more than a run in memory: it wrote every full run and
// every full chunk out.
func TestSpilledBuildIsTheSame(t *testing.T) {
	st := objstoretest.New(t)
	const assets, workOrders, runRows, chunkRecords = 40, 3000, 7, 3
	raw := synthetic(t, st, "runs/r1/raw/", assets, workOrders)
	if wos := rawtest.ReadTable[features.WorkOrder](t, st, raw[1].Name); slices.IsSortedFunc(wos, func(a, b features.WorkOrder) int {
		return int(a.AssetID - b.AssetID)
	}) {
		t.Fatal("the input is sorted by asset: the test would not show the sort")
	}
	p := rawtest.Params{SnapshotDate: "2026-03-01"}
	inMemory := spills{}
	_, want := buildWith(t, st, inMemory.engine(t, st, 1<<20, 1<<20), raw, p, "runs/r1/memory/")
	if len(inMemory) != 0 {
		t.Fatalf("the in-memory build spilled %v", inMemory)
	}
	spilled := spills{}
	out, got := buildWith(t, st, spilled.engine(t, st, runRows, chunkRecords), raw, p, "runs/r1/spilled/")
	if !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) {
		t.Fatal("the spilled build's objects differ from the in-memory build's")
	}
	// Every full run went to disk; chunks: every full chunk of each
	// snapshot's rows.
	wantChunks := 0
	perSnapshot := map[string]int{}
	for _, r := range rawtest.Read(t, st, out.Training.Name) {
		perSnapshot[r.SnapshotDate]++
	}
	for _, n := range perSnapshot {
		wantChunks += n / chunkRecords
	}
	if spilled["run"] != workOrders/runRows || spilled["chunk"] != wantChunks || wantChunks == 0 {
		t.Fatalf("spilled %v, want %d runs and %d chunks", spilled, workOrders/runRows, wantChunks)
	}
}

// TestGoldenShuffledAndSpilled: the golden fixture's work orders shuffled
// and built with runs of 2 give the golden build's objects.
func TestGoldenShuffledAndSpilled(t *testing.T) {
	st := objstoretest.New(t)
	tables, p := rawtest.LoadGolden(t, golden)
	_, want := buildWith(t, st, local.New(st, t.TempDir()), rawtest.Write(t, st, "runs/r1/raw/", tables), p, "runs/r1/golden/")
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 5 {
		rng.Shuffle(len(tables.WorkOrders), func(i, j int) {
			tables.WorkOrders[i], tables.WorkOrders[j] = tables.WorkOrders[j], tables.WorkOrders[i]
		})
		s := spills{}
		_, got := buildWith(t, st, s.engine(t, st, 2, 1), rawtest.Write(t, st, "runs/r2/raw/", tables), p, "runs/r2/features/")
		if !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) || s["run"] == 0 || s["chunk"] == 0 {
			t.Fatalf("shuffle %d: objects differ from the golden build's (spilled %v)", i, s)
		}
	}
}

// TestTiesKeepInputOrder: an asset's work orders created in the same
// microsecond are summed in the order they were read, whether they share a
// run or each is its own: repair hours 1, 1e16, -1e16 sum to 0 in that
// order (1 is lost to rounding), to 1 in another.
func TestTiesKeepInputOrder(t *testing.T) {
	st := objstoretest.New(t)
	at := func(d string) int64 { v, _ := features.ParseDate(d); return int64(v) * features.MicrosPerDay }
	ptr := func(v float64) *float64 { return &v }
	commissioned, _ := features.ParseDate("2020-01-01")
	created, done := at("2025-06-01"), at("2025-06-02")
	tables := rawtest.Tables{Assets: []features.Asset{{ID: 7, VehicleType: "van", Status: "ACTIVE", CommissionedDate: commissioned}}}
	tables.WorkOrders = append(tables.WorkOrders, features.WorkOrder{ID: 1, AssetID: 7, Type: "PREVENTIVE", Priority: "LOW", CreatedAt: at("2024-01-01")})
	for i, h := range []float64{1, 1e16, -1e16} {
		tables.WorkOrders = append(tables.WorkOrders, features.WorkOrder{ID: int64(i + 2), AssetID: 7, Type: "CORRECTIVE", Priority: "LOW",
			CreatedAt: created, CompletedAt: &done, RepairHours: ptr(h)})
	}
	raw := rawtest.Write(t, st, "runs/r1/raw/", tables)
	p := rawtest.Params{SnapshotDate: "2026-03-01"}
	for _, runRows := range []int{1, 1 << 20} {
		out, _ := buildWith(t, st, local.NewWithSpill(st, t.TempDir(), runRows, 1, nil), raw, p, "runs/r1/features/")
		if s := rawtest.Read(t, st, out.Scoring.Name); len(s) != 1 || s[0].TotalWorkOrders != 3 || s[0].AvgRepairHours != 0 {
			t.Fatalf("runs of %d: scoring %+v, want 3 work orders averaging 0 repair hours", runRows, s)
		}
	}
}
