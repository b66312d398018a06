package local

import (
	"context"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
)

// NewWithSpill is New with the spill sizes given: runs of runRows work
// orders, chunks of chunkRecords training figures; spilled is called for
// each run ("run") or chunk ("chunk") written.
func NewWithSpill(store *objstore.Store, tmpDir string, runRows, chunkRecords int, spilled func(kind string)) *Engine {
	e := New(store, tmpDir)
	e.spill = spill{runRows: runRows, chunkRecords: chunkRecords, spilled: spilled}
	return e
}

// ReadRaw reads the raw objects of in as a build does, each copied from the
// bucket to a file under dir and every row decoded (the columns a build
// reads), and nothing else: the floor of a build. It returns the rows read.
func (e *Engine) ReadRaw(ctx context.Context, in engine.Inputs, dir string) (int, error) {
	n := 0
	if err := readTable(ctx, e.store, in, dir, features.TableAssets, func(*assetIn) error { n++; return nil }); err != nil {
		return n, err
	}
	err := readTable(ctx, e.store, in, dir, features.TableWorkOrders, func(*workOrderIn) error { n++; return nil })
	if err != nil {
		return n, err
	}
	err = readTable(ctx, e.store, in, dir, features.TableMaintenancePlans, func(*planIn) error { n++; return nil })
	return n, err
}
