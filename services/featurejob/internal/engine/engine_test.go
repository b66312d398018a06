package engine_test

import (
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/engine"
)

func TestNormalized(t *testing.T) {
	in, err := engine.Inputs{SnapshotDate: "2026-03-01", OutPrefix: engine.OutPrefix("r1")}.Normalized()
	if err != nil || in.LookbackDays != 365 || in.LabelWindowDays != 90 || in.OutPrefix != "runs/r1/features/" {
		t.Fatalf("%+v %v", in, err)
	}
	for _, bad := range []engine.Inputs{
		{SnapshotDate: "2026-3-1", OutPrefix: "x/"},
		{SnapshotDate: "2026-03-01"},
		{SnapshotDate: "2026-03-01", OutPrefix: "x/", LookbackDays: -1},
	} {
		if _, err := bad.Normalized(); !eventing.IsPermanent(err) {
			t.Errorf("%+v: %v, want a permanent error", bad, err)
		}
	}
}

func TestRawObject(t *testing.T) {
	in := engine.Inputs{Raw: []*eventsv1.StoredObject{{Name: "runs/r/raw/assets.parquet"}, {Name: "runs/r/raw/work_orders.parquet"}}}
	if o, err := in.RawObject("work_orders"); err != nil || o.Name != "runs/r/raw/work_orders.parquet" {
		t.Fatal(o, err)
	}
	_, err := in.RawObject("maintenance_plans")
	if !eventing.IsPermanent(err) || !strings.Contains(err.Error(), "lists no maintenance_plans.parquet") {
		t.Fatal(err)
	}
}
