package extract_test

import (
	"context"
	"testing"

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
