package compat

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// Clearing task instances is the ControlService's RetryRun: cmmsflow
// re-runs a step and every step after it (a step's output is the next
// step's input), so what is cleared is always a task and all the tasks
// after it in one DAG run.

// clearTaskInstancesBody is the contract's ClearTaskInstances form.
type clearTaskInstancesBody struct {
	DryRun            *bool    `json:"dry_run"`
	TaskIDs           []string `json:"task_ids"`
	StartDate         *string  `json:"start_date"`
	EndDate           *string  `json:"end_date"`
	OnlyFailed        *bool    `json:"only_failed"`
	OnlyRunning       *bool    `json:"only_running"`
	IncludeSubdags    *bool    `json:"include_subdags"`
	IncludeParentdag  *bool    `json:"include_parentdag"`
	ResetDagRuns      *bool    `json:"reset_dag_runs"`
	DagRunID          *string  `json:"dag_run_id"`
	IncludeUpstream   *bool    `json:"include_upstream"`
	IncludeDownstream *bool    `json:"include_downstream"`
	IncludeFuture     *bool    `json:"include_future"`
	IncludePast       *bool    `json:"include_past"`
}

type taskInstanceReferenceCollection struct {
	TaskInstances []taskInstanceReference `json:"task_instances"`
}

// flag is *b, or def when the field was not sent.
func flag(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// unsupported names the ClearTaskInstances fields that do not map onto a
// retry of one run (400).
func (b clearTaskInstancesBody) unsupported() error {
	switch {
	case b.DagRunID == nil || *b.DagRunID == "":
		return badRequest("dag_run_id: required: cmmsflow clears the tasks of one DAG run")
	case b.StartDate != nil || b.EndDate != nil:
		return badRequest("start_date, end_date: not supported: name the DAG run with dag_run_id")
	case flag(b.IncludeFuture, false) || flag(b.IncludePast, false):
		return badRequest("include_future, include_past: not supported: cmmsflow clears one DAG run")
	case flag(b.OnlyRunning, false):
		return badRequest("only_running: not supported: a running DAG run cannot be cleared")
	case !flag(b.ResetDagRuns, true):
		return badRequest("reset_dag_runs: false is not supported: a cleared DAG run is always running again")
	}
	return nil // include_subdags and include_parentdag: there are none
}

// postClearTaskInstances clears tasks of a DAG run: the tasks named (every
// task without task_ids), with their upstream or downstream tasks when asked,
// of those the failed and upstream_failed ones unless only_failed is false.
// They must be a task and the tasks after it that have run; tasks after it
// that never ran are cleared with it.
func (s *Server) postClearTaskInstances(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var body clearTaskInstancesBody
	if _, err := dagWithBody(r, &body); err != nil {
		return err
	}
	refs, err := s.clearTaskInstances(ctx, r.PathValue("dag_id"), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, refs)
	return nil
}

func (s *Server) clearTaskInstances(ctx context.Context, dagID string, body clearTaskInstancesBody) (taskInstanceReferenceCollection, error) {
	out := taskInstanceReferenceCollection{TaskInstances: []taskInstanceReference{}}
	if err := body.unsupported(); err != nil {
		return out, err
	}
	run, err := s.run(ctx, dagID, *body.DagRunID)
	if err != nil {
		return out, err
	}
	if st := runstore.State(run.GetState()); st.Active() {
		// Airflow would clear a running DAG run's tasks; cmmsflow retries
		// finished runs only, whatever the form selects.
		return out, status.Errorf(codes.Aborted, "DAG run %q is %s: only a finished DAG run can be cleared", run.GetRunId(), st)
	}
	from, err := clearFrom(run, body)
	if err != nil || from == "" {
		return out, err // nothing matched: nothing to clear, as Airflow answers
	}
	after, err := s.retry(ctx, run.GetRunId(), from, flag(body.DryRun, true))
	if err != nil {
		return out, err
	}
	for _, st := range after.GetSteps()[stepPosition(after, from):] {
		out.TaskInstances = append(out.TaskInstances, toTaskInstanceReference(after, st.GetStep()))
	}
	return out, nil
}

// clearFrom is the step a ClearTaskInstances form clears from, "" when it
// selects no task.
func clearFrom(run *controlv1.Run, body clearTaskInstancesBody) (string, error) {
	steps := run.GetSteps()
	names := make([]string, len(steps))
	for i, st := range steps {
		names[i] = st.GetStep()
	}
	named := body.TaskIDs
	if named == nil {
		named = names
	}
	first, last := len(steps), -1
	for _, id := range named {
		i := slices.Index(names, id)
		if i < 0 {
			return "", badRequest("task_ids: %q is not a task of %s: want some of %s", id, run.GetPipeline(), strings.Join(names, ", "))
		}
		first, last = min(first, i), max(last, i)
	}
	selected := func(i int) bool {
		return slices.Contains(named, names[i]) ||
			(flag(body.IncludeDownstream, false) && i > first) || (flag(body.IncludeUpstream, false) && i < last)
	}
	from := -1
	for i, st := range steps {
		if !selected(i) {
			continue
		}
		if state := taskState(st.GetState(), run.GetState()); flag(body.OnlyFailed, true) &&
			(state == nil || (*state != "failed" && *state != "upstream_failed")) {
			continue
		}
		if from < 0 {
			from = i
		}
	}
	if from < 0 {
		return "", nil
	}
	for i := from + 1; i < len(steps); i++ {
		if !selected(i) && (runstore.State(steps[i].GetState()) != runstore.Pending || steps[i].GetAttempts() > 0) {
			return "", badRequest("task_ids: cmmsflow re-runs a task and every task after it: clearing %s would run %s again too; "+
				"name it or set include_downstream", names[from], names[i])
		}
	}
	return names[from], nil
}

func stepPosition(run *controlv1.Run, step string) int {
	return slices.IndexFunc(run.GetSteps(), func(st *controlv1.Step) bool { return st.GetStep() == step })
}

// clearDagRunBody is the contract's ClearDagRun form.
type clearDagRunBody struct {
	DryRun *bool `json:"dry_run"`
}

// postClearDagRun clears every task of a DAG run, as Airflow does: the run
// goes again from its first task. A dry run answers the run's task
// instances as they are (the ones that would be cleared), else the DAG run.
func (s *Server) postClearDagRun(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var body clearDagRunBody
	run, err := s.runWithBody(ctx, r, &body)
	if err != nil {
		return err
	}
	first := ""
	if pl, ok := events.LookupPipeline(run.GetPipeline()); ok {
		first = pl.Steps[0]
	}
	dry := flag(body.DryRun, true)
	after, err := s.retry(ctx, run.GetRunId(), first, dry)
	if err != nil {
		return err
	}
	if !dry {
		writeJSON(w, http.StatusOK, toDAGRun(after))
		return nil
	}
	out := taskInstanceCollection{TaskInstances: []taskInstanceJSON{}, TotalEntries: len(run.GetSteps())}
	for _, st := range run.GetSteps() {
		out.TaskInstances = append(out.TaskInstances, toTaskInstance(run, st))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// retry is the ControlService's RetryRun.
func (s *Server) retry(ctx context.Context, runID, from string, dry bool) (*controlv1.Run, error) {
	return call(ctx, s, methodRetry, func(ctx context.Context) (*controlv1.Run, error) {
		return s.api.RetryRun(ctx, &controlv1.RetryRunRequest{RunId: runID, FromStep: from, DryRun: dry})
	})
}
