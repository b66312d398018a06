// Package engine is the interface between featurejob's step and the engines
// that build the features: local (Go over the Parquet inputs, package local)
// and dataproc (the PySpark script spark/features.py on Dataproc, package
// dataproc). Both read the raw tables named in raw.extracted and write the
// same two objects with the schema of libs/features.
package engine

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/features"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// Engine builds a run's features.
//
// Build writes OutPrefix+features.TrainingObject (labelled rows over monthly
// snapshots before SnapshotDate) and OutPrefix+features.ScoringObject (one
// unlabelled row per ACTIVE asset at SnapshotDate), replacing any earlier
// objects of those names. Input no retry can fix (a missing or unreadable raw
// object, no assets, no history to label) is reported as
// eventing.Permanent(err) with a reason a person can act on; any other error
// is retried.
type Engine interface {
	Build(ctx context.Context, in Inputs) (Outputs, error)
}

// Inputs of one build.
type Inputs struct {
	RunID        string
	SnapshotDate string                   // YYYY-MM-DD; no feature uses data from this day on
	Raw          []*eventsv1.StoredObject // the raw tables, from raw.extracted
	OutPrefix    string                   // runs/<run_id>/features/

	// Windows in days; zero takes features.DefaultLookbackDays and
	// features.DefaultLabelWindowDays.
	LookbackDays    int
	LabelWindowDays int
}

// Outputs of one build.
type Outputs struct {
	Training, Scoring *eventsv1.StoredObject
	// Figures, optional, are reported with the step beside the objects'
	// rows and bytes (e.g. snapshots, positives).
	Figures map[string]float64
	// Engine, when set, names the engine that built, chosen for this run
	// (FEATURE_ENGINE=auto), and Choice says why; the step reports both.
	Engine, Choice string
}

// OutPrefix is where a run's features go.
func OutPrefix(runID string) string { return "runs/" + runID + "/features/" }

// Normalized fills the defaults and validates in; its errors are permanent.
func (in Inputs) Normalized() (Inputs, error) {
	if in.LookbackDays == 0 {
		in.LookbackDays = features.DefaultLookbackDays
	}
	if in.LabelWindowDays == 0 {
		in.LabelWindowDays = features.DefaultLabelWindowDays
	}
	switch {
	case in.LookbackDays < 1 || in.LabelWindowDays < 1:
		return in, eventing.Permanent(fmt.Errorf("lookback (%d) and label window (%d) must be at least one day", in.LookbackDays, in.LabelWindowDays))
	case in.OutPrefix == "":
		return in, eventing.Permanent(fmt.Errorf("no output prefix"))
	}
	if _, err := features.ParseDate(in.SnapshotDate); err != nil {
		return in, eventing.Permanent(fmt.Errorf("snapshot date %q: want YYYY-MM-DD", in.SnapshotDate))
	}
	return in, nil
}

// RawObject finds the raw object of table in in.Raw (its name ends in
// /<table>.parquet); a missing one is a permanent error.
func (in Inputs) RawObject(table string) (*eventsv1.StoredObject, error) {
	for _, o := range in.Raw {
		if o != nil && path.Base(o.GetName()) == features.RawObject(table) {
			return o, nil
		}
	}
	var names []string
	for _, o := range in.Raw {
		names = append(names, o.GetName())
	}
	return nil, eventing.Permanent(fmt.Errorf("raw.extracted lists no %s object (it lists: %s)", features.RawObject(table), strings.Join(names, ", ")))
}
