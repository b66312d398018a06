package compat

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

var dagStates = map[string]string{
	"queued":    "queued",
	"running":   "running",
	"success":   "success",
	"failed":    "failed",
	"cancelled": "failed",
	"skipped":   "success",
}

// dagState is the DagState of a run state.
func dagState(runState string) string {
	if s, ok := dagStates[runState]; ok {
		return s
	}
	return "failed"
}

// runStatesFor are the run states a DagState filter selects.
func runStatesFor(dagStateFilter string) []string {
	var out []string
	for _, rs := range []string{"queued", "running", "success", "failed", "cancelled", "skipped"} {
		if dagStates[rs] == dagStateFilter {
			out = append(out, rs)
		}
	}
	return out
}

// taskState is the TaskState of a step in a run (nil: no status).
func taskState(stepState, runState string) *string {
	s := func(v string) *string { return &v }
	switch stepState {
	case "running", "up_for_retry", "success", "failed", "skipped":
		return s(stepState)
	case "pending":
		switch runState {
		case "queued", "running":
			return nil
		case "failed", "cancelled":
			return s("upstream_failed")
		default:
			return s("skipped")
		}
	}
	return s("removed")
}
