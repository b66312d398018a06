// Package extract streams the CMMS tables the features need from PostgreSQL
// to Parquet objects in the bucket: every table in parallel, all from one
// consistent database snapshot, rows streamed from the server straight into
// row groups, so memory stays flat however large the tables grow.
package extract

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/parquet-go/parquet-go"
	"golang.org/x/sync/errgroup"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
)

// Tuning. A row group holds RowGroupRows rows in memory before it is encoded
// and written out; batchRows rows are converted per Write call.
const (
	RowGroupRows = 64 * 1024
	batchRows    = 1024
	contentType  = "application/vnd.apache.parquet"
)

// Table is one extracted table: its name (and object name) and the query
// whose rows become the object's rows.
type Table struct {
	Name  string
	Query string
	write func(ctx context.Context, rows pgx.Rows, w io.Writer) (int64, error)
}

// Tables are the extracted tables. Each Query selects the columns of the
// matching libs/features raw row type, in order.
var Tables = []Table{
	{Name: features.TableAssets, Query: AssetsQuery, write: writeRows(scanAsset)},
	{Name: features.TableWorkOrders, Query: WorkOrdersQuery, write: writeRows(scanWorkOrder)},
	{Name: features.TableMaintenancePlans, Query: PlansQuery, write: writeRows(scanPlan)},
}

// The queries. numeric columns are cast to float8 on the server.
const (
	AssetsQuery = `SELECT id, asset_tag, name, vehicle_type, make, model, year, status, commissioned_date,
	meter_reading::float8, engine_hours::float8, location, created_at, updated_at FROM assets`
	WorkOrdersQuery = `SELECT id, wo_number, asset_id, plan_id, due_date, type, status, priority, title,
	created_at, started_at, completed_at, repair_hours::float8 FROM work_orders`
	PlansQuery = `SELECT id, code, asset_id, name, interval_value, interval_unit, meter_interval::float8, meter_unit,
	lead_days, schedule_mode, next_due_date, next_due_meter::float8, last_completed_date, last_completed_meter::float8,
	end_date, priority, estimated_hours::float8, active, created_at FROM maintenance_plans`
)

// Bucket is where the objects go: *objstore.Store, or in benchmarks a sink.
type Bucket interface {
	Create(ctx context.Context, name, contentType string) io.WriteCloser
	URI(name string) string
}

var _ Bucket = (*objstore.Store)(nil)

// Object is one written table.
type Object struct {
	Table string
	Name  string // object name in the bucket
	URI   string
	Rows  int64
	Bytes int64
	Took  time.Duration
}

// Run extracts tables to <prefix><table>.parquet. pool must allow
// len(tables)+1 connections at once (one holds the snapshot the others read
// from). Writing an object of the same name replaces it, so running again for
// the same prefix rewrites the same objects. Objects come back in the order of
// tables.
func Run(ctx context.Context, pool *pgxpool.Pool, store Bucket, prefix string, tables []Table) ([]Object, error) {
	// One REPEATABLE READ transaction exports its snapshot; every table is
	// read in its own transaction on that snapshot, so the tables agree with
	// each other (no work order of an asset that is not in assets).
	lead, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("extract: begin: %w", err)
	}
	defer lead.Rollback(context.WithoutCancel(ctx))
	var snapshot string
	if err := lead.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
		return nil, fmt.Errorf("extract: export snapshot: %w", err)
	}
	out := make([]Object, len(tables))
	g, gctx := errgroup.WithContext(ctx)
	for i, t := range tables {
		g.Go(func() error {
			o, err := extractTable(gctx, pool, store, snapshot, prefix, t)
			if err != nil {
				return fmt.Errorf("extract %s: %w", t.Name, err)
			}
			out[i] = o
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func extractTable(ctx context.Context, pool *pgxpool.Pool, store Bucket, snapshot, prefix string, t Table) (Object, error) {
	started := time.Now()
	name := prefix + features.RawObject(t.Name)
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Object{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+snapshot+"'"); err != nil {
		return Object{}, fmt.Errorf("import snapshot: %w", err)
	}
	rows, err := tx.Query(ctx, t.Query)
	if err != nil {
		return Object{}, err
	}
	defer rows.Close()

	// Cancelling wctx before Close aborts the upload: a failed extraction
	// leaves the previous object (if any), never a truncated one.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	obj := store.Create(wctx, name, contentType)
	cw := &objstore.CountingWriter{W: obj}
	n, err := t.write(ctx, rows, cw)
	if err != nil {
		cancel()
		_ = obj.Close()
		return Object{}, err
	}
	if err := obj.Close(); err != nil {
		return Object{}, fmt.Errorf("upload %s: %w", name, err)
	}
	return Object{Table: t.Name, Name: name, URI: store.URI(name), Rows: n, Bytes: cw.N, Took: time.Since(started)}, nil
}

// writeRows streams rows through scan into a Parquet file on w.
func writeRows[T any](scan func(pgx.Rows, *T) error) func(context.Context, pgx.Rows, io.Writer) (int64, error) {
	return func(ctx context.Context, rows pgx.Rows, w io.Writer) (int64, error) {
		pw := parquet.NewGenericWriter[T](w,
			parquet.MaxRowsPerRowGroup(RowGroupRows),
			parquet.Compression(&parquet.Snappy),
			parquet.CreatedBy("cmmsflow-extractor", "1", ""))
		batch := make([]T, batchRows)
		var n int64
		k := 0
		flush := func() error {
			if k == 0 {
				return nil
			}
			if _, err := pw.Write(batch[:k]); err != nil {
				return fmt.Errorf("write parquet: %w", err)
			}
			clear(batch[:k])
			k = 0
			return nil
		}
		for rows.Next() {
			if err := scan(rows, &batch[k]); err != nil {
				return n, fmt.Errorf("scan row %d: %w", n+1, err)
			}
			k++
			n++
			if k == len(batch) {
				if err := flush(); err != nil {
					return n, err
				}
				if err := ctx.Err(); err != nil {
					return n, err
				}
			}
		}
		if err := rows.Err(); err != nil {
			return n, err
		}
		if err := flush(); err != nil {
			return n, err
		}
		if err := pw.Close(); err != nil {
			return n, fmt.Errorf("close parquet: %w", err)
		}
		return n, nil
	}
}

// Nullable scan targets converted to the raw types' representation.

func days(t time.Time) int32 { return features.Day(t) }

func optDays(t *time.Time) *int32 {
	if t == nil {
		return nil
	}
	d := features.Day(*t)
	return &d
}

func optMicros(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	m := t.UnixMicro()
	return &m
}

func scanAsset(rows pgx.Rows, a *features.Asset) error {
	var commissioned, created, updated time.Time
	if err := rows.Scan(&a.ID, &a.AssetTag, &a.Name, &a.VehicleType, &a.Make, &a.Model, &a.Year, &a.Status,
		&commissioned, &a.MeterReading, &a.EngineHours, &a.Location, &created, &updated); err != nil {
		return err
	}
	a.CommissionedDate, a.CreatedAt, a.UpdatedAt = days(commissioned), created.UnixMicro(), updated.UnixMicro()
	return nil
}

func scanWorkOrder(rows pgx.Rows, w *features.WorkOrder) error {
	var due, started, completed *time.Time
	var created time.Time
	if err := rows.Scan(&w.ID, &w.WONumber, &w.AssetID, &w.PlanID, &due, &w.Type, &w.Status, &w.Priority, &w.Title,
		&created, &started, &completed, &w.RepairHours); err != nil {
		return err
	}
	w.DueDate, w.CreatedAt, w.StartedAt, w.CompletedAt = optDays(due), created.UnixMicro(), optMicros(started), optMicros(completed)
	return nil
}

func scanPlan(rows pgx.Rows, p *features.MaintenancePlan) error {
	var next, last, end *time.Time
	var created time.Time
	if err := rows.Scan(&p.ID, &p.Code, &p.AssetID, &p.Name, &p.IntervalValue, &p.IntervalUnit, &p.MeterInterval, &p.MeterUnit,
		&p.LeadDays, &p.ScheduleMode, &next, &p.NextDueMeter, &last, &p.LastCompletedMeter,
		&end, &p.Priority, &p.EstimatedHours, &p.Active, &created); err != nil {
		return err
	}
	p.NextDueDate, p.LastCompletedDate, p.EndDate, p.CreatedAt = optDays(next), optDays(last), optDays(end), created.UnixMicro()
	return nil
}
