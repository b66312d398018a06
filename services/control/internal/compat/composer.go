package compat

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// composerPrefix is the old backend's ComposerClient routes. Their JSON is
// documented in services/control/README.md: every answer has "success"; a
// failure has "error" (and the HTTP status says which); states are Airflow
// DagState values (states.go).
const composerPrefix = "/api/v1/core/composer/"

// composerRoutes registers each route with and without the trailing slash:
// the old backend (Django) wrote them with one, its clients call either.
func (s *Server) composerRoutes(mux *http.ServeMux) {
	for _, r := range []struct {
		method, name string
		auth         string // the ControlService method whose rule authorizes a caller
		h            handler
	}{
		{"GET", "list_dags", controlv1.ControlService_ListPipelines_FullMethodName, (*Server).composerListDags},
		{"POST", "trigger_etl_ml_training", methodTrigger, composerTrigger(events.ETLMLTraining)},
		{"POST", "trigger_preventive_maintenance", methodTrigger, composerTrigger(events.PreventiveMaintenance)},
		{"POST", "trigger_report_generation", methodTrigger, composerTrigger(events.WeeklyKPIReport)},
		{"GET", "dag_status", controlv1.ControlService_GetPipeline_FullMethodName, (*Server).composerDagStatus},
		{"GET", "dag_runs", methodRead, (*Server).composerDagRuns},
	} {
		h := s.serve(r.auth, r.h, writeComposerError)
		mux.HandleFunc(r.method+" "+composerPrefix+r.name, h)
		mux.HandleFunc(r.method+" "+composerPrefix+r.name+"/{$}", h)
	}
	mux.HandleFunc(composerPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, composerError{Error: "no route " + r.Method + " " + r.URL.Path})
	})
}

type composerError struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
}

func writeComposerError(w http.ResponseWriter, err error) {
	challenge(w, err)
	writeJSON(w, httpStatus(err), composerError{Error: message(err)})
}

type composerDag struct {
	DagID       string         `json:"dag_id"`
	Description string         `json:"description"`
	IsPaused    bool           `json:"is_paused"`
	Schedule    string         `json:"schedule"`
	Timezone    string         `json:"timezone"`
	NextRun     *string        `json:"next_run"`
	LastRun     *dagRunSummary `json:"last_run"`
	Aliases     []string       `json:"aliases"` // the DAG's other ids (its old ones)
}

func (s *Server) composerListDags(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	resp, err := call(ctx, s, controlv1.ControlService_ListPipelines_FullMethodName,
		func(ctx context.Context) (*controlv1.ListPipelinesResponse, error) {
			return s.api.ListPipelines(ctx, &controlv1.ListPipelinesRequest{})
		})
	if err != nil {
		return err
	}
	dags := []composerDag{}
	for _, p := range resp.GetPipelines() {
		d := composerDag{DagID: p.GetId(), Description: p.GetDescription(), IsPaused: p.GetPaused(),
			Schedule: p.GetSchedule(), Timezone: p.GetTimeZone(), NextRun: tsp(p.GetNextRun()),
			Aliases: append([]string{}, p.GetAliases()...)}
		if p.GetLastRun() != nil {
			lr := toDAGRun(p.GetLastRun()).dagRunSummary
			d.LastRun = &lr
		}
		dags = append(dags, d)
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "dags": dags, "total_entries": len(dags)})
	return nil
}

// composerTrigger is TriggerPipeline with an optional JSON body
// {"conf": {…}, "idempotency_key": "…"}.
func composerTrigger(pipeline string) handler {
	return func(s *Server, ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var body struct {
			Conf           json.RawMessage `json:"conf"` // any JSON object, checked by the API
			IdempotencyKey string          `json:"idempotency_key"`
		}
		if err := decodeOptionalBody(r, &body); err != nil {
			return err
		}
		conf := string(body.Conf)
		if conf == "null" {
			conf = ""
		}
		resp, err := call(ctx, s, methodTrigger, func(ctx context.Context) (*controlv1.TriggerPipelineResponse, error) {
			return s.api.TriggerPipeline(ctx, &controlv1.TriggerPipelineRequest{
				Pipeline: pipeline, ConfJson: conf, IdempotencyKey: body.IdempotencyKey,
			})
		})
		if err != nil {
			return err
		}
		run := resp.GetRun()
		msg := "DAG " + pipeline + " triggered"
		if !resp.GetCreated() {
			msg = "DAG " + pipeline + " was already triggered with this idempotency key"
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"success": true, "dag_id": pipeline, "dag_run_id": run.GetRunId(), "state": dagState(run.GetState()),
			"logical_date": rfc3339(run.GetLogicalDate().AsTime()), "created": resp.GetCreated(), "message": msg,
		})
		return nil
	}
}

func (s *Server) composerDagStatus(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	id, err := composerDagID(r)
	if err != nil {
		return err
	}
	p, err := s.pipeline(ctx, id)
	if err != nil {
		return err
	}
	out := map[string]any{"success": true, "dag_id": id, "is_paused": p.GetPaused(), "state": nil, "dag_run_id": nil,
		"logical_date": nil, "start_date": nil, "end_date": nil}
	if lr := p.GetLastRun(); lr != nil {
		out["state"] = dagState(lr.GetState())
		out["dag_run_id"] = lr.GetRunId()
		out["logical_date"] = rfc3339(lr.GetLogicalDate().AsTime())
		out["start_date"], out["end_date"] = tsp(lr.GetStartedAt()), tsp(lr.GetEndedAt())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// composerDagID is the dag_id query parameter the status and runs routes
// require.
func composerDagID(r *http.Request) (string, error) {
	id := r.URL.Query().Get("dag_id")
	if id == "" {
		return "", badRequest("dag_id: required")
	}
	return id, nil
}

// composerDagRuns lists a DAG's latest runs, newest first; limit defaults to
// 10 (at most 100).
func (s *Server) composerDagRuns(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	id, err := composerDagID(r)
	if err != nil {
		return err
	}
	if _, err := lookupDAG(id); err != nil {
		return err
	}
	limit := 10
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return badRequest("limit: must be a positive integer")
		}
		limit = min(n, maxLimit)
	}
	resp, err := call(ctx, s, methodRead, func(ctx context.Context) (*controlv1.ListRunsResponse, error) {
		return s.api.ListRuns(ctx, &controlv1.ListRunsRequest{Pipeline: id, PageSize: int32(limit)})
	})
	if err != nil {
		return err
	}
	runs := make([]dagRunSummary, len(resp.GetRuns()))
	for i, run := range resp.GetRuns() {
		runs[i] = toDAGRun(run).dagRunSummary
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "dag_id": id, "dag_runs": runs, "count": len(runs)})
	return nil
}
