package featurejob

import (
	"context"
	"fmt"

	"google.golang.org/api/option"

	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/local"
)

// FEATURE_ENGINE values besides local.Name.
const (
	DataprocName = "dataproc"
	AutoName     = "auto"
)

// minWorkOrderBytes bounds the work orders of an object that raw.extracted
// gives no row count for (the extractor always counts; proto3 cannot tell
// an empty table from an uncounted one): at most its size over this. The
// extractor's Parquet takes about 36 bytes a work order (docs/benchmarks.md:
// 34.5 MiB at 1M), so the bound errs towards Dataproc, and an empty table's
// few hundred bytes still go to the local engine.
const minWorkOrderBytes = 8

// Auto is the FEATURE_ENGINE=auto engine: it builds a run with Local when
// the run has at most MaxWorkOrders work orders, else with Dataproc
// (docs/dataproc-crossover.md). The size is the work_orders row count
// raw.extracted carries, known before anything is read; the same event
// always makes the same choice, so a redelivery of a run sent to Dataproc
// re-attaches to its batch. Changing MaxWorkOrders while a run near it is
// in flight can move the run's next delivery to the other engine.
type Auto struct {
	MaxWorkOrders   int64
	Local, Dataproc engine.Engine
}

// Choice is Auto's decision for one run.
type Choice struct {
	Engine     string // local.Name or DataprocName
	WorkOrders int64  // the run's work orders as the choice saw them
	Reason     string
}

// NewAuto is the FEATURE_ENGINE=auto constructor: the local engine and the
// Dataproc engine (opts reach its clients, as in NewDataproc).
func NewAuto(ctx context.Context, cfg Config, store *objstore.Store, opts ...option.ClientOption) (*Auto, error) {
	dp, err := NewDataproc(ctx, cfg, store, opts...)
	if err != nil {
		return nil, err
	}
	return &Auto{MaxWorkOrders: cfg.AutoMaxWorkOrders, Local: local.New(store, cfg.TmpDir), Dataproc: dp}, nil
}

// Choose picks the engine for a run's raw objects.
func (a *Auto) Choose(raw []*eventsv1.StoredObject) Choice {
	o, err := engine.Inputs{Raw: raw}.RawObject(features.TableWorkOrders)
	if err != nil { // the local engine fails the step with the reason
		return Choice{Engine: local.Name, Reason: "raw.extracted lists no work_orders object"}
	}
	n, size := o.GetRows(), fmt.Sprintf("%d work orders", o.GetRows())
	if n == 0 && o.GetBytes() > 0 {
		n = o.GetBytes() / minWorkOrderBytes
		size = fmt.Sprintf("at most %d work orders (%d bytes, no row count)", n, o.GetBytes())
	}
	if n <= a.MaxWorkOrders {
		return Choice{Engine: local.Name, WorkOrders: n, Reason: fmt.Sprintf("%s <= FEATURE_AUTO_MAX_WORK_ORDERS %d", size, a.MaxWorkOrders)}
	}
	return Choice{Engine: DataprocName, WorkOrders: n, Reason: fmt.Sprintf("%s > FEATURE_AUTO_MAX_WORK_ORDERS %d", size, a.MaxWorkOrders)}
}

// Build implements engine.Engine: the chosen engine's build, with the
// choice in the outputs (Engine, Choice and the auto_* figures) and in the
// delivery's log.
func (a *Auto) Build(ctx context.Context, in engine.Inputs) (engine.Outputs, error) {
	c := a.Choose(in.Raw)
	logging.From(ctx).InfoContext(ctx, "feature engine chosen", "engine", c.Engine, "reason", c.Reason,
		"work_orders", c.WorkOrders, "max_work_orders", a.MaxWorkOrders)
	eng, dataproc := a.Local, 0.0
	if c.Engine == DataprocName {
		eng, dataproc = a.Dataproc, 1
	}
	out, err := eng.Build(ctx, in)
	if err != nil {
		return out, fmt.Errorf("%s engine (%s): %w", c.Engine, c.Reason, err)
	}
	out.Engine, out.Choice = c.Engine, c.Reason
	if out.Figures == nil {
		out.Figures = map[string]float64{}
	}
	out.Figures["auto_work_orders"] = float64(c.WorkOrders)
	out.Figures["auto_max_work_orders"] = float64(a.MaxWorkOrders)
	out.Figures["auto_dataproc"] = dataproc
	return out, nil
}
