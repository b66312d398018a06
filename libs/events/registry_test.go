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

// Every step has exactly one input event, which a retry re-emits to start it
// again: run-started for the first step, the previous step's output after.
func TestStepInputs(t *testing.T) {
	want := map[string][]string{
		ETLMLTraining:         {RunStarted, RawExtracted, FeaturesBuilt, ModelTrained, ModelDeployed},
		PreventiveMaintenance: {RunStarted, WorkOrdersGenerated},
		WeeklyKPIReport:       {RunStarted, ReportGenerated},
	}
	for _, p := range Pipelines {
		for i, step := range p.Steps {
			if got := p.Input(step); got != want[p.ID][i] {
				t.Errorf("%s: input of %s is %q, want %q", p.ID, step, got, want[p.ID][i])
			}
		}
		if got := p.Input("nope"); got != "" {
			t.Errorf("%s: input of an unknown step is %q", p.ID, got)
		}
	}
	for _, typ := range Types {
		if typ.From == "" {
			continue
		}
		if len(typ.Consumers) != 1 || typ.Consumers[0].Pipeline != "" {
			t.Errorf("%s feeds %v: an output feeds exactly one step", typ.Name, typ.Consumers)
		}
	}
}

// TestStepsMatchSubscriptionsAndTypes: every step of every pipeline is
// pushed its input through a subscription of its own (run-started filtered
// to the pipeline), every step but the last emits a registered output that
// is the next step's input, and every output type comes from a step.
func TestStepsMatchSubscriptionsAndTypes(t *testing.T) {
	subscribed := map[[2]string]string{} // event type, service → pipeline filter
	for _, s := range Subscriptions() {
		subscribed[[2]string{s.EventType, s.Service}] = s.Pipeline
	}
	outputs := map[string]bool{}
	for _, p := range Pipelines {
		for i, step := range p.Steps {
			in := p.Input(step)
			filter, ok := subscribed[[2]string{in, step}]
			if !ok || (filter != "" && filter != p.ID) {
				t.Errorf("%s: %s has no subscription to its input %q for the pipeline (filter %q)", p.ID, step, in, filter)
			}
			out := p.Output(step)
			if last := i == len(p.Steps)-1; last != (out == "") {
				t.Errorf("%s: %s's output is %q", p.ID, step, out)
			}
			if out != "" {
				typ, _ := LookupType(out)
				if typ.From != step {
					t.Errorf("%s: %s's output %s is registered as coming from %q", p.ID, step, out, typ.From)
				}
				outputs[out] = true
			}
		}
	}
	for _, typ := range Types {
		if typ.From != "" && !outputs[typ.Name] {
			t.Errorf("%s comes from %s but no pipeline step emits it", typ.Name, typ.From)
		}
	}
}
