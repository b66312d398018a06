// Package rawtest writes raw tables (as the extractor would) into a test
// bucket, from Go values or from the golden fixture's CSV files, and reads
// feature objects back.
package rawtest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// Tables is one set of raw tables.
type Tables struct {
	Assets     []features.Asset
	WorkOrders []features.WorkOrder
	Plans      []features.MaintenancePlan
}

// Params are the golden fixture's parameters (params.json).
type Params struct {
	SnapshotDate    string `json:"snapshot_date"`
	LookbackDays    int    `json:"lookback_days"`
	LabelWindowDays int    `json:"label_window_days"`
}

// Write stores the tables as Parquet under prefix and returns the objects as
// raw.extracted lists them.
func Write(tb testing.TB, store *objstore.Store, prefix string, t Tables) []*eventsv1.StoredObject {
	tb.Helper()
	return []*eventsv1.StoredObject{
		Put(tb, store, prefix+features.RawObject(features.TableAssets), slices.Values(t.Assets)),
		Put(tb, store, prefix+features.RawObject(features.TableWorkOrders), slices.Values(t.WorkOrders)),
		Put(tb, store, prefix+features.RawObject(features.TableMaintenancePlans), slices.Values(t.Plans)),
	}
}

// Put streams rows into a Parquet object (a batch at a time, so a large
// generated table need not be held in memory) and returns the object.
func Put[T any](tb testing.TB, store *objstore.Store, name string, rows iter.Seq[T]) *eventsv1.StoredObject {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	obj := store.Create(ctx, name, "application/vnd.apache.parquet")
	cw := &objstore.CountingWriter{W: obj}
	w := parquet.NewGenericWriter[T](cw, parquet.MaxRowsPerRowGroup(64*1024))
	batch := make([]T, 0, 1024)
	var n int64
	flush := func() {
		if _, err := w.Write(batch); err != nil {
			tb.Fatal(err)
		}
		n += int64(len(batch))
		batch = batch[:0]
	}
	for r := range rows {
		if batch = append(batch, r); len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := obj.Close(); err != nil {
		tb.Fatal(err)
	}
	return &eventsv1.StoredObject{Name: name, Uri: store.URI(name), Rows: n, Bytes: cw.N}
}

// Read reads a feature object.
func Read(tb testing.TB, store *objstore.Store, name string) []features.Row {
	tb.Helper()
	return ReadTable[features.Row](tb, store, name)
}

// ReadTable reads a Parquet object's rows.
func ReadTable[T any](tb testing.TB, store *objstore.Store, name string) []T {
	tb.Helper()
	b, err := store.Get(context.Background(), name)
	if err != nil {
		tb.Fatal(err)
	}
	rows, err := parquet.Read[T](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		tb.Fatalf("read %s: %v", name, err)
	}
	return rows
}

// LoadGolden reads the fixture in dir: assets.csv, work_orders.csv,
// maintenance_plans.csv and params.json.
func LoadGolden(tb testing.TB, dir string) (Tables, Params) {
	tb.Helper()
	var t Tables
	for _, r := range readCSV(tb, filepath.Join(dir, "assets.csv")) {
		t.Assets = append(t.Assets, features.Asset{
			ID: r.int("id"), AssetTag: r.s("asset_tag"), Name: r.s("asset_tag"), VehicleType: r.s("vehicle_type"),
			Status: r.s("status"), CommissionedDate: *r.date("commissioned_date"),
			MeterReading: *r.float("meter_reading"), EngineHours: *r.float("engine_hours"),
		})
	}
	for _, r := range readCSV(tb, filepath.Join(dir, "work_orders.csv")) {
		t.WorkOrders = append(t.WorkOrders, features.WorkOrder{
			ID: r.int("id"), WONumber: "WO-" + r.s("id"), AssetID: r.int("asset_id"), Type: r.s("type"), Status: r.s("status"),
			Priority: r.s("priority"), Title: "golden", CreatedAt: *r.ts("created_at"), CompletedAt: r.ts("completed_at"),
			DueDate: r.date("due_date"), RepairHours: r.float("repair_hours"),
		})
	}
	for _, r := range readCSV(tb, filepath.Join(dir, "maintenance_plans.csv")) {
		t.Plans = append(t.Plans, features.MaintenancePlan{
			ID: r.int("id"), Code: "PM-" + r.s("id"), AssetID: r.int("asset_id"), Name: "golden", EndDate: r.date("end_date"),
		})
	}
	var p Params
	b, err := os.ReadFile(filepath.Join(dir, "params.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		tb.Fatal(err)
	}
	return t, p
}

type record struct {
	tb  testing.TB
	col map[string]int
	v   []string
}

func readCSV(tb testing.TB, path string) []record {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil || len(all) == 0 {
		tb.Fatalf("%s: %v", path, err)
	}
	col := map[string]int{}
	for i, h := range all[0] {
		col[h] = i
	}
	var out []record
	for _, v := range all[1:] {
		out = append(out, record{tb: tb, col: col, v: v})
	}
	return out
}

func (r record) s(name string) string {
	i, ok := r.col[name]
	if !ok {
		r.tb.Fatalf("no column %s", name)
	}
	return r.v[i]
}

func (r record) int(name string) int64 {
	return parsed(r, name, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) })
}

func (r record) float(name string) *float64 {
	return optional(r, name, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
}

func (r record) date(name string) *int32 { return optional(r, name, features.ParseDate) }

// ts is an RFC 3339 timestamp in microseconds since the epoch.
func (r record) ts(name string) *int64 {
	return optional(r, name, func(s string) (int64, error) {
		t, err := time.Parse(time.RFC3339, s)
		return t.UnixMicro(), err
	})
}

// parsed is column name of r read by parse; an error fails the test.
func parsed[T any](r record, name string, parse func(string) (T, error)) T {
	v, err := parse(r.s(name))
	if err != nil {
		r.tb.Fatalf("%s: %v", name, err)
	}
	return v
}

// optional is parsed, or nil when the column is empty.
func optional[T any](r record, name string, parse func(string) (T, error)) *T {
	if r.s(name) == "" {
		return nil
	}
	v := parsed(r, name, parse)
	return &v
}

// FormatRow is a row as a CSV record in features.Columns order.
func FormatRow(r features.Row) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	i := func(v int32) string { return strconv.Itoa(int(v)) }
	return []string{
		strconv.FormatInt(r.AssetID, 10), r.VehicleType, r.SnapshotDate,
		i(r.AssetAgeDays), i(r.DaysSinceLastMaintenance),
		i(r.TotalWorkOrders), i(r.CompletedWorkOrders), i(r.HighPriorityWorkOrders), i(r.CriticalWorkOrders),
		i(r.CorrectiveWorkOrders), i(r.MissedMaintenance),
		f(r.AvgRepairHours), f(r.WorkOrderCompletionRate), f(r.HighPriorityRatio),
		f(r.MeterReading), f(r.EngineHours),
		i(r.Label),
	}
}

// WriteRowsCSV writes rows with a header of features.Columns.
func WriteRowsCSV(path string, rows []features.Row) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(features.Columns)
	for _, r := range rows {
		_ = w.Write(FormatRow(r))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// ReadRowsCSV reads a CSV written by WriteRowsCSV (header checked).
func ReadRowsCSV(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	all, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(all) == 0 || fmt.Sprint(all[0]) != fmt.Sprint(features.Columns) {
		return nil, fmt.Errorf("%s: header is not features.Columns", path)
	}
	return all[1:], nil
}
