package events

import (
	"slices"
	"testing"
)

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
		ModelMonitoring:       {RunStarted, RawExtracted, FeaturesBuilt, ModelMonitored},
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
		for _, p := range Pipelines {
			n := 0
			for _, c := range typ.Consumers {
				if c.For(p.ID) {
					n++
				}
			}
			if n > 1 {
				t.Errorf("%s feeds %v in %s: an output feeds one step of a pipeline", typ.Name, typ.Consumers, p.ID)
			}
		}
	}
}

// A service that starts several pipelines has one run-started subscription,
// filtered to all of them.
func TestRunStartedFilter(t *testing.T) {
	var filter string
	for _, s := range SubscriptionsOf(Extractor) {
		if s.EventType == RunStarted {
			filter = s.Filter()
		}
	}
	want := `attributes.pipeline = "etl_ml_training" OR attributes.pipeline = "model_monitoring"`
	if filter != want {
		t.Errorf("extractor's run-started filter = %q, want %q", filter, want)
	}
}

// TestStepsMatchSubscriptionsAndTypes: every step of every pipeline is
// pushed its input through a subscription of its own (run-started filtered
// to the pipeline), every step but the last emits a registered output that
// is the next step's input, and every output type comes from a step.
func TestStepsMatchSubscriptionsAndTypes(t *testing.T) {
	subscribed := map[[2]string]Subscription{} // event type, service
	for _, s := range Subscriptions() {
		subscribed[[2]string{s.EventType, s.Service}] = s
	}
	outputs := map[string]bool{}
	for _, p := range Pipelines {
		for i, step := range p.Steps {
			in := p.Input(step)
			sub, ok := subscribed[[2]string{in, step}]
			if !ok || (len(sub.Pipelines) > 0 && !slices.Contains(sub.Pipelines, p.ID)) {
				t.Errorf("%s: %s has no subscription to its input %q for the pipeline (filter %q)", p.ID, step, in, sub.Filter())
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
