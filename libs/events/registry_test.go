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
