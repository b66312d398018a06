package extract_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/cmmsflow/cmmsflow/libs/features"

	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/services/extractor/internal/extract"
)

// TestFailedTableLeavesNoObject: a table whose query fails aborts its upload
// (and the others'), so no truncated object is left behind.
func TestFailedTableLeavesNoObject(t *testing.T) {
	ctx := context.Background()
	xpool := pgtest.New(t)
	fill(t, xpool, 10, 100)
	store := objstoretest.New(t)
	bad := extract.Tables[1]
	bad.Query = `SELECT id, wo_number, asset_id, plan_id, due_date, type, status, priority, title,
		created_at, started_at, completed_at, (1 / (id - id))::float8 FROM work_orders` // division by zero on the first row
	if _, err := extract.Run(ctx, xpool, store, "runs/x/raw/", []extract.Table{bad}); err == nil {
		t.Fatal("no error")
	}
	objs, err := store.List(ctx, "runs/x/")
	if err != nil || len(objs) != 0 {
		t.Fatalf("left %v %v", objs, err)
	}
	objs2, err := extract.Run(ctx, xpool, store, "runs/x/raw/", extract.Tables)
	if err != nil || objs2[1].Rows != 100 || objs2[0].Rows != 10 || objs2[2].Rows != 10 {
		t.Fatalf("%+v %v", objs2, err)
	}
}

// Rows over many batches all arrive, with their NULLs.
func TestRowsAcrossBatches(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	fill(t, pool, 10, 5_000)
	store := objstoretest.New(t)
	objs, err := extract.Run(ctx, pool, store, "runs/x/raw/", extract.Tables[1:2])
	if err != nil || objs[0].Rows != 5_000 {
		t.Fatalf("%+v %v", objs, err)
	}
	data, err := store.Get(ctx, objs[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parquet.Read[features.WorkOrder](bytes.NewReader(data), int64(len(data)))
	if err != nil || len(rows) != 5_000 {
		t.Fatalf("read %d rows (%v)", len(rows), err)
	}
	var idSum, open int64
	for _, r := range rows {
		idSum += r.ID
		if r.CompletedAt == nil {
			open++
		}
	}
	var wantSum, wantOpen int64
	if err := pool.QueryRow(ctx, `SELECT sum(id), count(*) FILTER (WHERE completed_at IS NULL) FROM work_orders`).
		Scan(&wantSum, &wantOpen); err != nil {
		t.Fatal(err)
	}
	if idSum != wantSum || open != wantOpen || open == 0 {
		t.Errorf("ids sum to %d with %d open, want %d and %d", idSum, open, wantSum, wantOpen)
	}
}

// A failure mid-stream, in the database's rows after some batches were
// encoded or in the upload once a row group is written, ends the run with
// its error and leaves no object.
func TestFailureMidStream(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	// More than a row group (extract.RowGroupRows), so that one is written
	// to the bucket while rows are still being read.
	fill(t, pool, 10, extract.RowGroupRows+5_000)
	store := objstoretest.New(t)
	bad := extract.Tables[1]
	bad.Query = `SELECT id, wo_number, asset_id, plan_id, due_date, type, status, priority, title,
		created_at, started_at, completed_at, (1 / (4000 - id))::float8 FROM work_orders ORDER BY id` // fails at row 4,000
	if _, err := extract.Run(ctx, pool, store, "runs/x/raw/", []extract.Table{bad}); err == nil ||
		!strings.Contains(err.Error(), "division by zero") {
		t.Errorf("err = %v, want the division by zero", err)
	}
	if _, err := extract.Run(ctx, pool, failingBucket{after: 50_000}, "runs/y/raw/", extract.Tables[1:2]); err == nil ||
		!strings.Contains(err.Error(), "bucket is full") {
		t.Errorf("err = %v, want the bucket's", err)
	}
	if objs, err := store.List(ctx, "runs/"); err != nil || len(objs) != 0 {
		t.Fatalf("left %v %v", objs, err)
	}
}

// failingBucket's objects fail once after bytes have been written.
type failingBucket struct{ after int }

func (b failingBucket) Create(context.Context, string, string) io.WriteCloser {
	return &failingWriter{left: b.after}
}
func (failingBucket) URI(name string) string { return "failing:///" + name }

type failingWriter struct{ left int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.left -= len(p); w.left < 0 {
		return 0, errors.New("bucket is full")
	}
	return len(p), nil
}
func (*failingWriter) Close() error { return nil }
