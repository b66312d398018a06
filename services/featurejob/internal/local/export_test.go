package local

import "github.com/cmmsflow/cmmsflow/libs/objstore"

// NewWithSpill is New with the spill sizes given: runs of runRows work
// orders, chunks of chunkRecords training figures; spilled is called for
// each run ("run") or chunk ("chunk") written.
func NewWithSpill(store *objstore.Store, tmpDir string, runRows, chunkRecords int, spilled func(kind string)) *Engine {
	e := New(store, tmpDir)
	e.spill = spill{runRows: runRows, chunkRecords: chunkRecords, spilled: spilled}
	return e
}
