// Package local is featurejob's local engine: Go over the raw Parquet
// objects, writing the feature objects back to the bucket.
//
// Its memory is bounded by the assets, not by the work orders. The inputs
// are copied to temporary files (Parquet needs random access); the assets
// and their plans are held in memory. The work orders are sorted by asset
// then creation externally (sort.go: sorted runs of at most 512Ki work
// orders written to the temporary directory, then merged), so the
// computation holds one asset's work orders at a time. It goes through the
// assets in ID order, but the training rows are written snapshot by
// snapshot: each asset's figures at each snapshot go to that snapshot's
// bucket (buckets.go: 512 records a snapshot in memory, the rest in the
// temporary directory), and the rows are streamed out of the buckets in row
// groups. The scoring rows (one per ACTIVE asset) are held in memory.
package local

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/featurefile"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
)

// Name is the engine's FEATURE_ENGINE value.
const Name = "local"

const (
	contentType  = "application/vnd.apache.parquet"
	rowGroupRows = 64 * 1024
	batchRows    = 1024
)

// Engine is the local engine.
type Engine struct {
	store  *objstore.Store
	tmpDir string
	spill  spill
}

// spill sizes the engine's bounded memory: runRows work orders are sorted
// in memory before a run is written out (about 40 bytes each), and each
// snapshot's bucket keeps chunkRecords training figures (52 bytes each).
// spilled, if set, is called with "run" or "chunk" for each run or chunk
// written (tests).
type spill struct {
	runRows, chunkRecords int
	spilled               func(kind string)
}

var defaultSpill = spill{runRows: 1 << 19, chunkRecords: 512}

var _ engine.Engine = (*Engine)(nil)

// New returns the engine over store; tmpDir ("" for the system's) holds the
// inputs and the spilled work orders and training figures while a build
// runs.
func New(store *objstore.Store, tmpDir string) *Engine {
	return &Engine{store: store, tmpDir: tmpDir, spill: defaultSpill}
}

// Build implements engine.Engine.
func (e *Engine) Build(ctx context.Context, in engine.Inputs) (engine.Outputs, error) {
	in, err := in.Normalized()
	if err != nil {
		return engine.Outputs{}, err
	}
	snapshot, _ := features.ParseDate(in.SnapshotDate)
	dir, err := os.MkdirTemp(e.tmpDir, "featurejob-")
	if err != nil {
		return engine.Outputs{}, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)

	assets, index, err := e.loadAssets(ctx, in, dir)
	if err != nil {
		return engine.Outputs{}, err
	}
	wos, err := e.loadWorkOrders(ctx, in, dir, index)
	if err != nil {
		return engine.Outputs{}, err
	}
	defer wos.close()
	p := Params{SnapshotDate: snapshot, LookbackDays: in.LookbackDays, LabelWindowDays: in.LabelWindowDays}
	snaps, err := Snapshots(wos.earliest, p)
	if err != nil {
		return engine.Outputs{}, eventing.Permanent(err)
	}
	training := newBuckets(dir, len(snaps), e.spill.chunkRecords, e.spill.spilled)
	defer training.close()
	scoring, err := compute(ctx, assets, wos, snaps, p, training)
	if err != nil {
		return engine.Outputs{}, err
	}
	if len(scoring) == 0 {
		return engine.Outputs{}, eventing.Permanent(errors.New("no ACTIVE asset to score at the snapshot date"))
	}
	res, positives, err := e.writeOutputs(ctx, in.OutPrefix, assets, snaps, p, training, scoring)
	if err != nil {
		return engine.Outputs{}, err
	}
	res.Figures = map[string]float64{
		"snapshots":     float64(len(snaps)),
		"positives":     float64(positives),
		"positive_rate": float64(positives) / float64(max(1, res.Training.GetRows())),
		"work_orders":   float64(wos.n),
		"assets":        float64(len(assets)),
	}
	return res, nil
}

// compute goes through the assets in ID order with their work orders:
// their training figures go to the snapshots' buckets, their scoring rows
// are returned.
func compute(ctx context.Context, assets []Asset, wos *woSorter, snaps []int32, p Params, training *buckets) ([]features.Row, error) {
	var scoring []features.Row
	next := int32(0) // the next asset to compute
	asset := func(i int32, ws []WorkOrder) error {
		a := &assets[i]
		return AssetCounts(a, ws, snaps, p, func(k int, c *Counts) error { return training.add(k, i, c) }, func(c *Counts) {
			scoring = append(scoring, features.Row{})
			Row(&scoring[len(scoring)-1], a, c, p.SnapshotDate, p, false)
		})
	}
	err := wos.eachAsset(ctx, func(i int32, ws []WorkOrder) error {
		for ; next < i; next++ { // assets without work orders
			if err := asset(next, nil); err != nil {
				return err
			}
		}
		next = i + 1
		return asset(i, ws)
	})
	for ; err == nil && int(next) < len(assets); next++ {
		err = asset(next, nil)
	}
	return scoring, err
}

// writeOutputs writes the training rows, snapshot by snapshot from the
// buckets, and the scoring rows.
func (e *Engine) writeOutputs(ctx context.Context, prefix string, assets []Asset, snaps []int32, p Params, training *buckets, scoring []features.Row) (engine.Outputs, int64, error) {
	var res engine.Outputs
	var positives int64
	var err error
	res.Training, err = e.write(ctx, prefix+features.TrainingObject, func(w *parquet.GenericWriter[features.Row]) (int64, error) {
		var n int64
		batch := make([]features.Row, 0, batchRows)
		for k, s := range snaps {
			err := training.each(k, func(i int32, c *Counts) error {
				batch = append(batch, features.Row{})
				Row(&batch[len(batch)-1], &assets[i], c, s, p, true)
				n++
				positives += int64(c.Label)
				if len(batch) < batchRows {
					return nil
				}
				_, err := w.Write(batch)
				batch = batch[:0]
				return cmp.Or(err, ctx.Err())
			})
			if err != nil {
				return n, err
			}
		}
		_, err := w.Write(batch)
		return n, err
	})
	if err != nil {
		return res, 0, err
	}
	res.Scoring, err = e.write(ctx, prefix+features.ScoringObject, func(w *parquet.GenericWriter[features.Row]) (int64, error) {
		_, err := w.Write(scoring)
		return int64(len(scoring)), err
	})
	return res, positives, err
}

// write streams rows from fill into a Parquet object.
func (e *Engine) write(ctx context.Context, name string, fill func(*parquet.GenericWriter[features.Row]) (int64, error)) (*eventsv1.StoredObject, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	obj := e.store.Create(wctx, name, contentType)
	cw := &objstore.CountingWriter{W: obj}
	pw := parquet.NewGenericWriter[features.Row](cw,
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.Compression(&parquet.Snappy),
		parquet.CreatedBy("cmmsflow-featurejob", "1", ""))
	n, err := fill(pw)
	if err == nil {
		err = pw.Close()
	}
	if err != nil {
		cancel() // abort the upload: no partial object
		_ = obj.Close()
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	if err := obj.Close(); err != nil {
		return nil, fmt.Errorf("upload %s: %w", name, err)
	}
	return &eventsv1.StoredObject{Name: name, Uri: e.store.URI(name), Rows: n, Bytes: cw.N, ContentType: contentType}, nil
}

// The columns read from each raw table (a subset of libs/features' raw
// types).

type assetIn struct {
	ID               int64   `parquet:"id"`
	VehicleType      string  `parquet:"vehicle_type"`
	Status           string  `parquet:"status"`
	CommissionedDate int32   `parquet:"commissioned_date,date"`
	MeterReading     float64 `parquet:"meter_reading"`
	EngineHours      float64 `parquet:"engine_hours"`
}

type workOrderIn struct {
	AssetID     int64    `parquet:"asset_id"`
	DueDate     *int32   `parquet:"due_date,date"`
	Type        string   `parquet:"type"`
	Priority    string   `parquet:"priority"`
	CreatedAt   int64    `parquet:"created_at,timestamp(microsecond)"`
	CompletedAt *int64   `parquet:"completed_at,timestamp(microsecond)"`
	RepairHours *float64 `parquet:"repair_hours"`
}

type planIn struct {
	AssetID int64  `parquet:"asset_id"`
	EndDate *int32 `parquet:"end_date,date"`
}

var priorities = map[string]uint8{"LOW": prioLow, "MEDIUM": prioMedium, "HIGH": prioHigh, "CRITICAL": prioCritical}

// loadAssets reads the assets, sorted by ID, and the retirement days of
// the RETIRED ones from their plans; index maps an ID to its place.
func (e *Engine) loadAssets(ctx context.Context, in engine.Inputs, dir string) (assets []Asset, index map[int64]int32, err error) {
	err = readTable(ctx, e.store, in, dir, features.TableAssets, func(a *assetIn) error {
		assets = append(assets, Asset{ID: a.ID, VehicleType: a.VehicleType, Status: a.Status,
			Commissioned: a.CommissionedDate, End: noEnd, Meter: a.MeterReading, Hours: a.EngineHours})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(assets) == 0 {
		return nil, nil, eventing.Permanent(errors.New("the raw assets table has no rows: nothing to build features for"))
	}
	slices.SortFunc(assets, func(a, b Asset) int { return cmp.Compare(a.ID, b.ID) })
	index = make(map[int64]int32, len(assets))
	for i, a := range assets {
		if _, dup := index[a.ID]; dup {
			return nil, nil, eventing.Permanent(fmt.Errorf("the raw assets table has asset id %d twice", a.ID))
		}
		index[a.ID] = int32(i)
	}
	err = readTable(ctx, e.store, in, dir, features.TableMaintenancePlans, func(p *planIn) error {
		i, ok := index[p.AssetID]
		if !ok || p.EndDate == nil || assets[i].Status != "RETIRED" {
			return nil
		}
		if a := &assets[i]; a.End == noEnd || *p.EndDate > a.End {
			a.End = *p.EndDate
		}
		return nil
	})
	return assets, index, err
}

// loadWorkOrders reads the work orders of the assets into a sorter.
func (e *Engine) loadWorkOrders(ctx context.Context, in engine.Inputs, dir string, index map[int64]int32) (*woSorter, error) {
	wos := newWOSorter(dir, e.spill.runRows, e.spill.spilled)
	err := readTable(ctx, e.store, in, dir, features.TableWorkOrders, func(w *workOrderIn) error {
		i, ok := index[w.AssetID]
		if !ok {
			return nil // an asset deleted meanwhile; the snapshot makes this rare
		}
		prio, ok := priorities[w.Priority]
		if !ok {
			return eventing.Permanent(fmt.Errorf("work order of asset %d has priority %q", w.AssetID, w.Priority))
		}
		wo := WorkOrder{Asset: i, Created: w.CreatedAt, Completed: never, Due: noDue,
			Preventive: w.Type == "PREVENTIVE", Corrective: w.Type == "CORRECTIVE", Priority: prio}
		if w.CompletedAt != nil {
			wo.Completed = *w.CompletedAt
		}
		if w.DueDate != nil {
			wo.Due = *w.DueDate
		}
		if w.RepairHours != nil {
			wo.HasRepair, wo.Repair = true, *w.RepairHours
		}
		return wos.add(&wo)
	})
	if err != nil {
		wos.close()
		return nil, err
	}
	return wos, nil
}

// readTable copies the table's raw object to a temporary file and calls row
// for each of its rows. Whatever is wrong with the object's content is
// permanent; failing to reach the bucket is not.
func readTable[T any](ctx context.Context, store *objstore.Store, in engine.Inputs, dir, table string, row func(*T) error) error {
	obj, err := in.RawObject(table)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, table+".parquet")
	size, err := download(ctx, store, obj.GetName(), path)
	if err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return eventing.Permanent(fmt.Errorf("raw %s object %s is missing from the bucket", table, obj.GetName()))
		}
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bad := func(err error) error {
		return eventing.Permanent(fmt.Errorf("raw %s object %s is not readable Parquet of the expected schema: %w", table, obj.GetName(), err))
	}
	r, err := featurefile.Open[T](f, size)
	if err != nil {
		return bad(err)
	}
	defer r.Close()
	buf := make([]T, batchRows)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		for i := range n {
			if err := row(&buf[i]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return bad(err)
		}
	}
}

func download(ctx context.Context, store *objstore.Store, name, path string) (int64, error) {
	r, err := store.Open(ctx, name)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", name, err)
	}
	return n, nil
}
