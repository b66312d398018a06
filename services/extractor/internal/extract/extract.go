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
// matching libs/features raw row type, in order (columns.go: the types each
// is checked against before the first row).
var Tables = []Table{
	{Name: features.TableAssets, Query: AssetsQuery, write: writeRows(assetColumns)},
	{Name: features.TableWorkOrders, Query: WorkOrdersQuery, write: writeRows(workOrderColumns)},
	{Name: features.TableMaintenancePlans, Query: PlansQuery, write: writeRows(planColumns)},
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
	// Every column in the binary format, whatever the pool's
	// default_query_exec_mode (exec and simple_protocol would take text).
	rows, err := tx.Query(ctx, t.Query, pgx.QueryExecModeDescribeExec, pgx.QueryResultFormats{pgx.BinaryFormatCode})
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

// writeRows streams rows, decoded by cols, into a Parquet file on w.
func writeRows[T any](cols []column[T]) func(context.Context, pgx.Rows, io.Writer) (int64, error) {
	return func(ctx context.Context, rows pgx.Rows, w io.Writer) (int64, error) {
		if err := checkColumns(cols, rows); err != nil {
			return 0, err
		}
		pw := parquet.NewGenericWriter[T](w,
			parquet.MaxRowsPerRowGroup(RowGroupRows),
			parquet.Compression(fastSnappy{}),
			parquet.CreatedBy("cmmsflow-extractor", "1", ""))
		b := &batch[T]{rows: make([]T, batchRows), pw: pw}
		n, err := b.copyRows(ctx, cols, rows)
		if err != nil {
			return n, err
		}
		if err := pw.Close(); err != nil {
			return n, fmt.Errorf("close parquet: %w", err)
		}
		return n, nil
	}
}

// A batch is the rows decoded for one Write, with their buffers.
type batch[T any] struct {
	rows []T
	k    int
	bufs buffers
	pw   *parquet.GenericWriter[T]
}

// copyRows decodes rows in batches into b's writer and returns their number.
func (b *batch[T]) copyRows(ctx context.Context, cols []column[T], rows pgx.Rows) (int64, error) {
	var n int64
	for rows.Next() {
		if err := decodeRow(cols, &b.rows[b.k], rows.RawValues(), &b.bufs, rows); err != nil {
			return n, fmt.Errorf("decode row %d: %w", n+1, err)
		}
		b.k++
		n++
		if b.k == len(b.rows) {
			if err := b.flush(); err != nil {
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
	return n, b.flush()
}

// flush writes the batch's rows; parquet-go copies their values, so the
// buffers are free again.
func (b *batch[T]) flush() error {
	if b.k == 0 {
		return nil
	}
	if _, err := b.pw.Write(b.rows[:b.k]); err != nil {
		return fmt.Errorf("write parquet: %w", err)
	}
	b.k = 0
	b.bufs.reset()
	return nil
}
