package extract_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/services/extractor/internal/extract"
)

// fillEdges adds rows with every nullable column both NULL and not, dates
// and timestamps before 1970, before 2000, BC and far ahead, non-ASCII and
// empty strings, to what fill wrote (ids above its).
func fillEdges(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	for _, q := range []string{
		`INSERT INTO assets (id, asset_tag, name, vehicle_type, make, model, year, status, commissioned_date,
			meter_reading, engine_hours, location, created_at, updated_at) VALUES
		(100001, 'E-1', 'Škoda Ω', 'car', 'Škoda', '', 1969, 'ACTIVE', '1969-12-31', 0.1, 0, '',
			'1969-12-31 23:59:59.999999+00', '1999-12-31 23:59:59.5+00'),
		(100002, 'E-2', 'old', 'bus', '', '', NULL, 'RETIRED', '4000-01-01 BC', 99999999999.9, 99999.9, 'x',
			'4000-01-01 00:00:00.000001+00 BC', '2000-01-01 00:00:00+00'),
		(100003, 'E-3', 'future', 'van', 'm', 'n', -1, 'INACTIVE', '5000000-01-01', 0, 0, 'y',
			'200000-01-01 12:00:00.000001+00', '1900-01-01 00:00:00.000001+00')`,
		`INSERT INTO maintenance_plans (id, code, asset_id, name, interval_value, interval_unit, meter_interval,
			meter_unit, lead_days, schedule_mode, next_due_date, next_due_meter, last_completed_date,
			last_completed_meter, end_date, priority, estimated_hours, active, created_at) VALUES
		(100001, 'E-P1', 100001, 'meter', NULL, NULL, 5000, 'km', 3, 'floating', NULL, 12000.5, '1999-12-31',
			7000, '1960-02-29', 'HIGH', 2.5, false, '1950-06-01 01:02:03.456789+00'),
		(100002, 'E-P2', 100002, 'both', 1, 'years', 250, 'hours', 0, 'fixed', '1970-01-01', NULL, NULL,
			NULL, NULL, 'LOW', 0, true, '2000-01-01 00:00:00.000001+00')`,
		`INSERT INTO work_orders (wo_number, asset_id, plan_id, due_date, type, status, priority, title,
			created_at, started_at, completed_at, repair_hours) VALUES
		('E-W1', 100001, 100001, '1969-07-20', 'PREVENTIVE', 'COMPLETED', 'LOW', 'Ω',
			'1969-07-16 13:32:00+00', '1969-07-20 20:17:40.5+00', '1969-07-24 16:50:35+00', 0),
		('E-W2', 100002, 100002, NULL, 'CORRECTIVE', 'OPEN', 'HIGH', '',
			'1999-12-31 23:59:59.999999+00', NULL, '2000-01-01 00:00:00.000001+00', 1234.56),
		('E-W3', 100003, NULL, '2000-01-01', 'CORRECTIVE', 'OPEN', 'HIGH', 'x',
			'2000-01-01 00:00:00+00', '1999-01-01 00:00:00+00', NULL, NULL)`,
	} {
		if _, err := pool.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// The extracted Parquet files, read back, hold what pgx's Scan into
// time.Time and pointers (the extractor's earlier decoding, scanRef below)
// makes of the same rows: over row group and batch boundaries, through a
// pool of the default query exec mode and one of the simple protocol (whose
// results would be text but for the formats the extractor sets).
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	fill(t, pool, 3_000, extract.RowGroupRows+3_000)
	fillEdges(t, pool)
	cfg := pool.Config().Copy()
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	simple, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer simple.Close()
	for name, p := range map[string]*pgxpool.Pool{"default": pool, "simple_protocol": simple} {
		t.Run(name, func(t *testing.T) {
			store := objstoretest.New(t)
			objs, err := extract.Run(ctx, p, store, "runs/x/raw/", extract.Tables)
			if err != nil {
				t.Fatal(err)
			}
			checkTable(t, pool, store, objs[0], extract.AssetsQuery, scanRefAsset, func(r features.Asset) int64 { return r.ID })
			checkTable(t, pool, store, objs[1], extract.WorkOrdersQuery, scanRefWorkOrder, func(r features.WorkOrder) int64 { return r.ID })
			checkTable(t, pool, store, objs[2], extract.PlansQuery, scanRefPlan, func(r features.MaintenancePlan) int64 { return r.ID })
		})
	}
}

// checkTable compares obj's rows, read back, with query's scanned by ref.
func checkTable[T any](t *testing.T, pool *pgxpool.Pool, store *objstore.Store, obj extract.Object,
	query string, ref func(pgx.CollectableRow, *T) error, id func(T) int64) {
	t.Helper()
	ctx := context.Background()
	data, err := store.Get(ctx, obj.Name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parquet.Read[T](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	checkSnappy(t, data)
	rows, err := pool.Query(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { var v T; err := ref(r, &v); return v, err })
	if err != nil {
		t.Fatal(err)
	}
	byID := func(a, b T) int { return cmp.Compare(id(a), id(b)) }
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	if len(got) != len(want) || int64(len(got)) != obj.Rows {
		t.Fatalf("%s: %d rows read back, %d reported, want %d", obj.Table, len(got), obj.Rows, len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s row %d:\n got %s\nwant %s", obj.Table, i, show(got[i]), show(want[i]))
		}
	}
}

// checkSnappy checks that every column chunk of the Parquet file data is
// SNAPPY-compressed.
func checkSnappy(t *testing.T, data []byte) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range f.Metadata().RowGroups {
		for _, c := range rg.Columns {
			if c.MetaData.Codec != format.Snappy {
				t.Fatalf("column %v is compressed with %v, want SNAPPY", c.MetaData.PathInSchema, c.MetaData.Codec)
			}
		}
	}
}

// show is a row with its pointers followed.
func show(v any) string {
	rv := reflect.ValueOf(v)
	var b strings.Builder
	for i := range rv.NumField() {
		f := rv.Field(i)
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			f = f.Elem()
		}
		fmt.Fprintf(&b, "%s=%v ", rv.Type().Field(i).Name, f)
	}
	return b.String()
}

// Infinite dates and timestamps, and timestamps past the int64 microseconds
// since 1970, fail the extraction with the column named: Parquet's DATE and
// TIMESTAMP have no such values (pgx's Scan into time.Time failed on the
// infinities too, and wrapped the far timestamps around).
func TestInfinityRejected(t *testing.T) {
	ctx := context.Background()
	cases := []struct{ table, set, want string }{
		{"work_orders", `due_date = 'infinity'`, "row 2000: column due_date: date infinity"},
		{"work_orders", `due_date = '-infinity'`, "column due_date: date -infinity"},
		{"work_orders", `created_at = 'infinity'`, "column created_at: timestamptz infinity"},
		{"work_orders", `started_at = '-infinity', completed_at = NULL`, "column started_at: timestamptz -infinity"},
		{"work_orders", `completed_at = '294276-12-31 00:00:00+00'`, "column completed_at: timestamptz 9223371244800000000 µs after 2000-01-01 is past"},
		{"assets", `commissioned_date = '-infinity'`, "column commissioned_date: date -infinity"},
		{"maintenance_plans", `next_due_date = 'infinity'`, "column next_due_date: date infinity"},
	}
	for _, c := range cases {
		t.Run(c.table+"/"+c.set, func(t *testing.T) {
			pool := pgtest.New(t)
			fill(t, pool, 10, 2_000)
			// The last row, in the work orders' second batch.
			if _, err := pool.Exec(ctx, `UPDATE `+c.table+` SET `+c.set+` WHERE id = (SELECT max(id) FROM `+c.table+`)`); err != nil {
				t.Fatal(err)
			}
			_, err := extract.Run(ctx, pool, objstoretest.New(t), "runs/x/raw/", tableNamed(t, c.table))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func tableNamed(t *testing.T, name string) []extract.Table {
	for _, tb := range extract.Tables {
		if tb.Name == name {
			return []extract.Table{tb}
		}
	}
	t.Fatalf("no table %s", name)
	return nil
}

// A query whose columns are not of the types the row type's decoders take
// fails before its first row, naming the column.
func TestColumnTypesChecked(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	fill(t, pool, 10, 100)
	cases := []struct{ query, want string }{
		{strings.Replace(extract.WorkOrdersQuery, "repair_hours::float8", "repair_hours", 1),
			"column 13 (repair_hours) is of type numeric, want float8"},
		{strings.Replace(extract.WorkOrdersQuery, "due_date", "due_date::timestamptz", 1),
			"column 5 (due_date) is of type timestamptz, want date"},
		{strings.Replace(extract.WorkOrdersQuery, ", repair_hours::float8", "", 1),
			"the query returns 12 columns, the row type has 13"},
	}
	for _, c := range cases {
		tb := extract.Tables[1]
		tb.Query = c.query
		if _, err := extract.Run(ctx, pool, objstoretest.New(t), "runs/x/raw/", []extract.Table{tb}); err == nil ||
			!strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}

// The extractor's earlier decoding, pgx's Scan into time.Time and pointers,
// as the reference of TestRoundTrip.

func scanRefAsset(rows pgx.CollectableRow, a *features.Asset) error {
	var commissioned, created, updated time.Time
	if err := rows.Scan(&a.ID, &a.AssetTag, &a.Name, &a.VehicleType, &a.Make, &a.Model, &a.Year, &a.Status,
		&commissioned, &a.MeterReading, &a.EngineHours, &a.Location, &created, &updated); err != nil {
		return err
	}
	a.CommissionedDate, a.CreatedAt, a.UpdatedAt = features.Day(commissioned), created.UnixMicro(), updated.UnixMicro()
	return nil
}

func scanRefWorkOrder(rows pgx.CollectableRow, w *features.WorkOrder) error {
	var due, started, completed *time.Time
	var created time.Time
	if err := rows.Scan(&w.ID, &w.WONumber, &w.AssetID, &w.PlanID, &due, &w.Type, &w.Status, &w.Priority, &w.Title,
		&created, &started, &completed, &w.RepairHours); err != nil {
		return err
	}
	w.DueDate, w.CreatedAt, w.StartedAt, w.CompletedAt = refDays(due), created.UnixMicro(), refMicros(started), refMicros(completed)
	return nil
}

func scanRefPlan(rows pgx.CollectableRow, p *features.MaintenancePlan) error {
	var next, last, end *time.Time
	var created time.Time
	if err := rows.Scan(&p.ID, &p.Code, &p.AssetID, &p.Name, &p.IntervalValue, &p.IntervalUnit, &p.MeterInterval, &p.MeterUnit,
		&p.LeadDays, &p.ScheduleMode, &next, &p.NextDueMeter, &last, &p.LastCompletedMeter,
		&end, &p.Priority, &p.EstimatedHours, &p.Active, &created); err != nil {
		return err
	}
	p.NextDueDate, p.LastCompletedDate, p.EndDate, p.CreatedAt = refDays(next), refDays(last), refDays(end), created.UnixMicro()
	return nil
}

func refDays(t *time.Time) *int32 {
	if t == nil {
		return nil
	}
	d := features.Day(*t)
	return &d
}

func refMicros(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	m := t.UnixMicro()
	return &m
}
