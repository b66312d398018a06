package events

import "testing"

// Control's stale-run sweeper needs a timeout for every pipeline.
func TestEveryPipelineHasATimeout(t *testing.T) {
	for _, p := range Pipelines {
		if p.Timeout <= 0 {
			t.Errorf("pipeline %s has no Timeout", p.ID)
		}
	}
}

// An alias finds its pipeline, and no id or alias names two pipelines.
func TestPipelineAliases(t *testing.T) {
	pl, ok := LookupPipeline("preventive_maintenance_generator")
	if !ok || pl.ID != PreventiveMaintenance {
		t.Fatalf("the old DAG id finds %q, %v", pl.ID, ok)
	}
	if _, ok := LookupPipeline("preventive_maintenance_gen"); ok {
		t.Fatal("a prefix of an alias found a pipeline")
	}
	seen := map[string]string{}
	for _, p := range Pipelines {
		for _, id := range append([]string{p.ID}, p.Aliases...) {
			if other, dup := seen[id]; dup {
				t.Errorf("%q names %s and %s", id, other, p.ID)
			}
			seen[id] = p.ID
		}
	}
}
