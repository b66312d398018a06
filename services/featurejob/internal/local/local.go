// Package local is featurejob's local engine: Go over the raw Parquet
// objects, writing the feature objects back to the bucket. The inputs are
// copied to temporary files (Parquet needs random access); the work orders
// are held in a compact form (about 50 bytes each) and the training rows are
// streamed out in row groups.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
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
}

var _ engine.Engine = (*Engine)(nil)

// New returns the engine over store; tmpDir ("" for the system's) holds the
// inputs while a build runs.
func New(store *objstore.Store, tmpDir string) *Engine {
	return &Engine{store: store, tmpDir: tmpDir}
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

	ds, err := e.load(ctx, in, dir)
	if err != nil {
		return engine.Outputs{}, err
	}
	p := Params{SnapshotDate: snapshot, LookbackDays: in.LookbackDays, LabelWindowDays: in.LabelWindowDays}

	var res engine.Outputs
	var snapshots int
	var positives int64
	var batch []features.Row
	res.Training, err = e.write(ctx, in.OutPrefix+features.TrainingObject, func(w *parquet.GenericWriter[features.Row]) (int64, error) {
		var n int64
		snapshots, err = ds.Training(p, func(r *features.Row) error {
			batch = append(batch, *r)
			n++
			positives += int64(r.Label)
			if len(batch) == batchRows {
				_, err := w.Write(batch)
				batch = batch[:0]
				return err
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		_, err := w.Write(batch)
		return n, err
	})
	if err != nil {
		if errors.Is(err, ErrNoSnapshots) {
			return engine.Outputs{}, eventing.Permanent(err)
		}
		return engine.Outputs{}, err
	}
	scoring := ds.Scoring(p)
	if len(scoring) == 0 {
		return engine.Outputs{}, eventing.Permanent(errors.New("no ACTIVE asset to score at the snapshot date"))
	}
	res.Scoring, err = e.write(ctx, in.OutPrefix+features.ScoringObject, func(w *parquet.GenericWriter[features.Row]) (int64, error) {
		_, err := w.Write(scoring)
		return int64(len(scoring)), err
	})
	if err != nil {
		return engine.Outputs{}, err
	}
	res.Figures = map[string]float64{
		"snapshots":     float64(snapshots),
		"positives":     float64(positives),
		"positive_rate": float64(positives) / float64(max(1, res.Training.GetRows())),
		"work_orders":   float64(len(ds.WorkOrders)),
		"assets":        float64(len(ds.Assets)),
	}
	return res, nil
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

// load reads the three raw tables into a Dataset.
func (e *Engine) load(ctx context.Context, in engine.Inputs, dir string) (*Dataset, error) {
	ds := &Dataset{}
	index := map[int64]int32{}
	err := readTable(ctx, e.store, in, dir, features.TableAssets, func(a *assetIn) error {
		ds.Assets = append(ds.Assets, Asset{ID: a.ID, VehicleType: a.VehicleType, Status: a.Status,
			Commissioned: a.CommissionedDate, End: noEnd, Meter: a.MeterReading, Hours: a.EngineHours})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ds.Assets) == 0 {
		return nil, eventing.Permanent(errors.New("the raw assets table has no rows: nothing to build features for"))
	}
	slices.SortFunc(ds.Assets, func(a, b Asset) int { return int(a.ID - b.ID) })
	for i, a := range ds.Assets {
		if _, dup := index[a.ID]; dup {
			return nil, eventing.Permanent(fmt.Errorf("the raw assets table has asset id %d twice", a.ID))
		}
		index[a.ID] = int32(i)
	}
	err = readTable(ctx, e.store, in, dir, features.TableMaintenancePlans, func(p *planIn) error {
		i, ok := index[p.AssetID]
		if !ok || p.EndDate == nil || ds.Assets[i].Status != "RETIRED" {
			return nil
		}
		if a := &ds.Assets[i]; a.End == noEnd || *p.EndDate > a.End {
			a.End = *p.EndDate
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = readTable(ctx, e.store, in, dir, features.TableWorkOrders, func(w *workOrderIn) error {
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
		ds.WorkOrders = append(ds.WorkOrders, wo)
		return nil
	})
	if err != nil {
		return nil, err
	}
	ds.Index()
	return ds, nil
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
	pf, err := parquet.OpenFile(f, size)
	if err != nil {
		return bad(err)
	}
	want := parquet.SchemaOf(new(T))
	var missing []string
	for _, c := range want.Fields() {
		if _, ok := pf.Schema().Lookup(c.Name()); !ok {
			missing = append(missing, c.Name())
		}
	}
	if len(missing) > 0 {
		return bad(fmt.Errorf("missing columns %s", strings.Join(missing, ", ")))
	}
	r := parquet.NewGenericReader[T](pf, want)
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
