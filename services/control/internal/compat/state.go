package compat

import (
	"context"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// Setting a DAG run's or a task instance's state is the ControlService's
// SetRunState and SetStepState (see the proto for what each state does).

const (
	methodSetRunState  = controlv1.ControlService_SetRunState_FullMethodName
	methodSetStepState = controlv1.ControlService_SetStepState_FullMethodName
)

// updateDagRunStateBody is the contract's UpdateDagRunState.
type updateDagRunStateBody struct {
	State string `json:"state"`
}

// patchDagRun sets a DAG run's state: success, failed or queued.
func (s *Server) patchDagRun(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var body updateDagRunStateBody
	run, err := s.runWithBody(ctx, r, &body)
	if err == nil {
		run, err = call(ctx, s, methodSetRunState, func(ctx context.Context) (*controlv1.Run, error) {
			return s.api.SetRunState(ctx, &controlv1.SetRunStateRequest{RunId: run.GetRunId(), State: body.State})
		})
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDAGRun(run))
	return nil
}

// updateTaskInstanceBody is the contract's UpdateTaskInstance.
type updateTaskInstanceBody struct {
	DryRun   *bool  `json:"dry_run"`
	NewState string `json:"new_state"`
}

// patchTaskInstance sets a task instance's state: success, failed or
// skipped; dry_run (the default) checks the change and makes none.
func (s *Server) patchTaskInstance(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var body updateTaskInstanceBody
	task := r.PathValue("task_id")
	run, err := s.runWithBody(ctx, r, &body)
	if err == nil && stepPosition(run, task) < 0 {
		err = status.Errorf(codes.NotFound, "Task instance not found: task %q of DAG run %q", task, run.GetRunId())
	}
	if err == nil {
		run, err = call(ctx, s, methodSetStepState, func(ctx context.Context) (*controlv1.Run, error) {
			return s.api.SetStepState(ctx, &controlv1.SetStepStateRequest{RunId: run.GetRunId(), Step: task,
				State: body.NewState, DryRun: flag(body.DryRun, true)})
		})
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toTaskInstanceReference(run, task))
	return nil
}
