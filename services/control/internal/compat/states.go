package compat

import "github.com/cmmsflow/cmmsflow/services/control/internal/runstore"

// State mapping between control's runs/steps and Airflow's DagState/TaskState.
//
// Run (runs.state) → DagState:
//
//	queued    → queued
//	running   → running
//	success   → success
//	failed    → failed
//	cancelled → failed   (Airflow stops a run by marking it failed)
//	skipped   → success  (a run with nothing to do: Airflow ends a run whose tasks all skipped as success)
//
// A DagState filter selects the run states that map to it (failed: failed and
// cancelled; success: success and skipped).
//
// Step (steps.state) → TaskState:
//
//	pending      → null (no status yet) while the run is queued or running;
//	               upstream_failed once the run failed or was cancelled;
//	               skipped once the run ended otherwise
//	running      → running
//	up_for_retry → up_for_retry
//	success      → success
//	failed       → failed
//	skipped      → skipped
//
// A TaskState filter "none" (Airflow's deprecated spelling of null) selects
// steps with no status.

var dagStates = map[runstore.State]string{
	runstore.Queued:    "queued",
	runstore.Running:   "running",
	runstore.Success:   "success",
	runstore.Failed:    "failed",
	runstore.Cancelled: "failed",
	runstore.Skipped:   "success",
}

// dagState is the DagState of a run state.
func dagState(runState string) string {
	if s, ok := dagStates[runstore.State(runState)]; ok {
		return s
	}
	return "failed"
}

// runStatesFor are the run states a DagState filter selects.
func runStatesFor(dagStateFilter string) []runstore.State {
	var out []runstore.State
	for _, rs := range runstore.RunStates {
		if dagStates[rs] == dagStateFilter {
			out = append(out, rs)
		}
	}
	return out
}

// taskState is the TaskState of a step in a run (nil: no status).
func taskState(stepState, runState string) *string {
	s := func(v string) *string { return &v }
	switch st := runstore.State(stepState); st {
	case runstore.Running, runstore.UpForRetry, runstore.Success, runstore.Failed, runstore.Skipped:
		return s(stepState)
	case runstore.Pending:
		switch runstore.State(runState) {
		case runstore.Queued, runstore.Running:
			return nil
		case runstore.Failed, runstore.Cancelled:
			return s("upstream_failed")
		default:
			return s("skipped")
		}
	}
	return s("removed")
}
