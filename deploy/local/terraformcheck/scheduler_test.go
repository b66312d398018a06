package terraformcheck

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// jobIDs evaluates deploy/terraform with vars and returns the ids of its
// Cloud Scheduler jobs, sorted.
func jobIDs(t *testing.T, vars map[string]cty.Value) []string {
	t.Helper()
	m, err := LoadModule(terraformDir)
	if err != nil {
		t.Fatal(err)
	}
	ev := Evaluate(m, vars)
	var ids []string
	for _, in := range instances(ev, "google_cloud_scheduler_job") {
		v, err := ev.Attr(in, "name")
		if err != nil {
			t.Fatal(err)
		}
		id, ok := str(v)
		if !ok {
			t.Fatalf("%s: name unknown", in.addr())
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// TestSchedulerJobIDsAsDocumented: Terraform, the one owner of the Cloud
// Scheduler jobs, names them as deploy/README.md says, one job per pipeline,
// under any name_prefix.
func TestSchedulerJobIDsAsDocumented(t *testing.T) {
	documented := []string{"cmmsflow-etl-ml-training", "cmmsflow-model-monitoring", "cmmsflow-preventive-maintenance", "cmmsflow-weekly-kpi-report"}
	if got := jobIDs(t, nil); !slices.Equal(got, documented) {
		t.Errorf("job ids %q, want %q", got, documented)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range documented {
		if !strings.Contains(string(readme), "`"+id+"`") {
			t.Errorf("deploy/README.md does not name the job `%s`", id)
		}
	}
	want := []string{"acme-etl-ml-training", "acme-model-monitoring", "acme-preventive-maintenance", "acme-weekly-kpi-report"}
	if got := jobIDs(t, map[string]cty.Value{"name_prefix": cty.StringVal("acme")}); !slices.Equal(got, want) {
		t.Errorf("name_prefix acme: job ids %q, want %q", got, want)
	}
}
