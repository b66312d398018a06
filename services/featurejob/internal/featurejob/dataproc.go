package featurejob

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/parquet-go/parquet-go"
	"google.golang.org/api/option"

	"github.com/cmmsflow/cmmsflow/libs/objstore"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/dataproc"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/featurejob/spark"
)

// newDataproc uploads the PySpark script (content-addressed, so a new
// deploy never changes the script under a run in flight) and returns the
// Dataproc engine behind the engine interface.
func newDataproc(ctx context.Context, cfg Config, store *objstore.Store) (engine.Engine, error) {
	return NewDataproc(ctx, cfg, store)
}

// NewDataproc is the FEATURE_ENGINE=dataproc constructor; opts reach the
// Dataproc clients (tests point them at an in-process fake).
func NewDataproc(ctx context.Context, cfg Config, store *objstore.Store, opts ...option.ClientOption) (engine.Engine, error) {
	name := dataproc.ScriptObject(spark.Script)
	if err := store.Put(ctx, name, "text/x-python", spark.Script); err != nil {
		return nil, err
	}
	dc := cfg.Dataproc
	dc.Bucket, dc.ScriptURI = store.Bucket(), store.URI(name)
	if dc.Project == "" {
		dc.Project = cfg.ProjectID
	}
	e, err := dataproc.New(ctx, dc, slog.New(slog.NewJSONHandler(os.Stdout, nil)), opts...)
	if err != nil {
		return nil, err
	}
	e.Describe = func(ctx context.Context, o *eventsv1.StoredObject) error { return describe(ctx, store, o) }
	return dataprocEngine{e}, nil
}

type dataprocEngine struct{ e *dataproc.Engine }

func (d dataprocEngine) Build(ctx context.Context, in engine.Inputs) (engine.Outputs, error) {
	res, err := d.e.Build(ctx, dataproc.Request{
		RunID: in.RunID, SnapshotDate: in.SnapshotDate, Raw: in.Raw, OutPrefix: in.OutPrefix,
		LookbackDays: in.LookbackDays, LabelWindowDays: in.LabelWindowDays,
	})
	if err != nil {
		return engine.Outputs{}, err
	}
	return engine.Outputs{Training: res.Training, Scoring: res.Scoring}, nil
}

// describe fills an object's size and row count from the bucket (the
// Parquet footer).
func describe(ctx context.Context, store *objstore.Store, o *eventsv1.StoredObject) error {
	b, err := store.Get(ctx, o.GetName())
	if err != nil {
		return err
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return fmt.Errorf("dataproc output %s: %w", o.GetName(), err)
	}
	o.Bytes, o.Rows = int64(len(b)), f.NumRows()
	return nil
}
