package compat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/api"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/compat/airflowspec"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// Paging of the Airflow collections: limit defaults to 100 and is capped at
// 100 (Airflow's default maximum_page_limit); an offset above maxOffset is
// refused (400), so no page makes PostgreSQL skip more rows than that.
const (
	defaultLimit = 100
	maxLimit     = 100
	maxOffset    = 10_000
	maxBody      = 1 << 20
)

// airflowPrefix is the Airflow API's base path (the contract's server URL).
const airflowPrefix = "/api/v1"

// airflowRoute is an Airflow operation compat serves and its handler.
type airflowRoute struct {
	method, path string // path is relative to airflowPrefix, as in the contract
	// auth is the ControlService method whose rule authorizes a caller, or
	// public.
	auth   string
	handle handler
}

// public is the auth of a route served without credentials (monitoring).
const public = ""

// airflowTable is the one list of the Airflow operations compat serves: the
// routes airflowRoutes registers and the operations of the derived contract
// (testdata/airflow-v1.yaml). A row added here must be cut into the contract
// again (go run ./services/control/cmd/airflowcontract).
var airflowTable = []airflowRoute{
	{"GET", "/dags", methodRead, (*Server).getDags},
	{"GET", "/dags/{dag_id}", methodRead, (*Server).getDag},
	{"PATCH", "/dags/{dag_id}", methodPause, (*Server).patchDag},
	{"GET", "/dags/{dag_id}/dagRuns", methodRead, (*Server).getDagRuns},
	{"POST", "/dags/{dag_id}/dagRuns", methodTrigger, (*Server).postDagRun},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}", methodRead, (*Server).getDagRun},
	{"PATCH", "/dags/{dag_id}/dagRuns/{dag_run_id}", methodSetRunState, (*Server).patchDagRun},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances", methodRead, (*Server).getTaskInstances},
	{"PATCH", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}", methodSetStepState, (*Server).patchTaskInstance},
	{"GET", "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/logs/{task_try_number}", methodRead, (*Server).getLog},
	{"POST", "/dags/{dag_id}/clearTaskInstances", methodRetry, (*Server).postClearTaskInstances},
	{"POST", "/dags/{dag_id}/dagRuns/{dag_run_id}/clear", methodRetry, (*Server).postClearDagRun},
	{"GET", "/health", public, (*Server).getHealth},
	{"GET", "/version", public, (*Server).getVersion},
}

// publicRoute reports whether r is for a route served without credentials.
func publicRoute(r *http.Request) bool {
	for _, rt := range airflowTable {
		if rt.auth == public && r.Method == rt.method && r.URL.Path == airflowPrefix+rt.path {
			return true
		}
	}
	return false
}

// AirflowOperations lists the Airflow operations compat serves, in the order
// of the route table.
func AirflowOperations() []airflowspec.Operation {
	ops := make([]airflowspec.Operation, len(airflowTable))
	for i, r := range airflowTable {
		ops[i] = airflowspec.Operation{Method: r.method, Path: r.path}
	}
	return ops
}

func (s *Server) airflowRoutes(mux *http.ServeMux) {
	for _, r := range airflowTable {
		mux.HandleFunc(r.method+" "+airflowPrefix+r.path, s.serve(r.auth, r.handle, writeProblemFor))
	}
	mux.HandleFunc(airflowPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path)
	})
}

// ---- JSON shapes (the contract's schemas) ----

type cronExpression struct {
	Type  string `json:"__type"`
	Value string `json:"value"`
}

type tag struct {
	Name string `json:"name"`
}

type dagJSON struct {
	DagID                string          `json:"dag_id"`
	DagDisplayName       string          `json:"dag_display_name"`
	RootDagID            *string         `json:"root_dag_id"`
	IsPaused             bool            `json:"is_paused"`
	IsActive             bool            `json:"is_active"`
	IsSubdag             bool            `json:"is_subdag"`
	LastParsedTime       *string         `json:"last_parsed_time"`
	Fileloc              string          `json:"fileloc"`
	FileToken            string          `json:"file_token"`
	Owners               []string        `json:"owners"`
	Description          *string         `json:"description"`
	ScheduleInterval     *cronExpression `json:"schedule_interval"`
	TimetableDescription *string         `json:"timetable_description"`
	Tags                 []tag           `json:"tags"`
	MaxActiveTasks       *int            `json:"max_active_tasks"`
	MaxActiveRuns        *int            `json:"max_active_runs"`
	HasTaskConcurrency   bool            `json:"has_task_concurrency_limits"`
	HasImportErrors      bool            `json:"has_import_errors"`
	NextDagrun           *string         `json:"next_dagrun"`
	NextDagrunCreate     *string         `json:"next_dagrun_create_after"`
}

type dagCollection struct {
	Dags         []dagJSON `json:"dags"`
	TotalEntries int       `json:"total_entries"`
}

// dagRunSummary is the part of a DAG run that the old backend's composer
// routes answer as "a run" (composer.go).
type dagRunSummary struct {
	DagRunID    string          `json:"dag_run_id"`
	DagID       string          `json:"dag_id"`
	State       string          `json:"state"`
	RunType     string          `json:"run_type"`
	LogicalDate string          `json:"logical_date"`
	StartDate   *string         `json:"start_date"`
	EndDate     *string         `json:"end_date"`
	Conf        json.RawMessage `json:"conf"`
}

// dagRunJSON is the contract's DAGRun: the summary and the rest.
type dagRunJSON struct {
	dagRunSummary
	ExecutionDate     string  `json:"execution_date"`
	DataIntervalStart *string `json:"data_interval_start"`
	DataIntervalEnd   *string `json:"data_interval_end"`
	LastScheduling    *string `json:"last_scheduling_decision"`
	ExternalTrigger   bool    `json:"external_trigger"`
	Note              *string `json:"note"`
}

type dagRunCollection struct {
	DagRuns      []dagRunJSON `json:"dag_runs"`
	TotalEntries int          `json:"total_entries"`
}

// taskInstanceReference is the contract's TaskInstanceReference: which task
// of which DAG run.
type taskInstanceReference struct {
	TaskID        string `json:"task_id"`
	DagID         string `json:"dag_id"`
	ExecutionDate string `json:"execution_date"`
	DagRunID      string `json:"dag_run_id"`
}

// taskInstanceJSON is the contract's TaskInstance: the reference and the
// rest.
type taskInstanceJSON struct {
	taskInstanceReference
	TaskDisplayName string   `json:"task_display_name"`
	StartDate       *string  `json:"start_date"`
	EndDate         *string  `json:"end_date"`
	Duration        *float64 `json:"duration"`
	State           *string  `json:"state"`
	TryNumber       int      `json:"try_number"`
	MapIndex        int      `json:"map_index"`
	MaxTries        int      `json:"max_tries"`
	Hostname        string   `json:"hostname"`
	Unixname        string   `json:"unixname"`
	Pool            string   `json:"pool"`
	PoolSlots       int      `json:"pool_slots"`
	Queue           *string  `json:"queue"`
	PriorityWeight  *int     `json:"priority_weight"`
	Operator        *string  `json:"operator"`
	QueuedWhen      *string  `json:"queued_when"`
	Pid             *int     `json:"pid"`
	Executor        *string  `json:"executor"`
	RenderedFields  struct{} `json:"rendered_fields"`
	Note            *string  `json:"note"`
}

type taskInstanceCollection struct {
	TaskInstances []taskInstanceJSON `json:"task_instances"`
	TotalEntries  int                `json:"total_entries"`
}

func strp(s string) *string { return &s }

func tsp(t *timestamppb.Timestamp) *string {
	if t == nil {
		return nil
	}
	return strp(rfc3339(t.AsTime()))
}

// aliasTag prefixes the tags that show a DAG's other ids (its old DAG ids).
const aliasTag = "alias:"

func toDAG(p *controlv1.Pipeline) dagJSON {
	d := dagJSON{
		DagID: p.GetId(), DagDisplayName: p.GetId(), IsPaused: p.GetPaused(), IsActive: true,
		Fileloc: "libs/events/registry.go", Owners: []string{"cmmsflow"}, Tags: []tag{},
		Description: strp(p.GetDescription()),
	}
	for _, a := range p.GetAliases() {
		d.Tags = append(d.Tags, tag{Name: aliasTag + a})
	}
	if n := int(p.GetMaxActiveRuns()); n > 0 {
		d.MaxActiveRuns = &n
	}
	if p.GetSchedule() != "" {
		d.ScheduleInterval = &cronExpression{Type: "CronExpression", Value: p.GetSchedule()}
		d.TimetableDescription = strp(fmt.Sprintf("cron %q in %s", p.GetSchedule(), p.GetTimeZone()))
		d.NextDagrun, d.NextDagrunCreate = tsp(p.GetNextRun()), tsp(p.GetNextRun())
	}
	return d
}

func toDAGRun(r *controlv1.Run) dagRunJSON {
	logical := rfc3339(r.GetLogicalDate().AsTime())
	runType := "manual"
	if src := r.GetSource(); src == "scheduled" || src == "backfill" {
		runType = src
	}
	return dagRunJSON{
		dagRunSummary: dagRunSummary{
			DagRunID: r.GetRunId(), DagID: r.GetPipeline(), State: dagState(r.GetState()), RunType: runType,
			LogicalDate: logical, StartDate: tsp(r.GetStartedAt()), EndDate: tsp(r.GetEndedAt()), Conf: confJSON(r),
		},
		ExecutionDate: logical, DataIntervalStart: strp(logical), DataIntervalEnd: strp(logical),
		ExternalTrigger: runType == "manual",
	}
}

// confJSON is the run's conf as triggered: any JSON object.
func confJSON(r *controlv1.Run) json.RawMessage {
	if r.GetConfJson() == "" {
		return json.RawMessage("{}")
	}
	return json.RawMessage(r.GetConfJson())
}

// toTaskInstanceReference names task of DAG run r.
func toTaskInstanceReference(r *controlv1.Run, task string) taskInstanceReference {
	return taskInstanceReference{TaskID: task, DagID: r.GetPipeline(), DagRunID: r.GetRunId(),
		ExecutionDate: rfc3339(r.GetLogicalDate().AsTime())}
}

func toTaskInstance(r *controlv1.Run, st *controlv1.Step) taskInstanceJSON {
	ti := taskInstanceJSON{
		taskInstanceReference: toTaskInstanceReference(r, st.GetStep()), TaskDisplayName: st.GetStep(),
		StartDate: tsp(st.GetStartedAt()), EndDate: tsp(st.GetEndedAt()),
		State: taskState(st.GetState(), r.GetState()), TryNumber: int(st.GetAttempts()), MapIndex: -1,
		Pool: "default_pool", PoolSlots: 1, Operator: strp(st.GetStep()),
	}
	if st.GetStartedAt() != nil && st.GetEndedAt() != nil {
		d := st.GetEndedAt().AsTime().Sub(st.GetStartedAt().AsTime()).Seconds()
		ti.Duration = &d
	}
	return ti
}

// ---- query parameters ----

func paging(r *http.Request) (limit, offset int, err error) {
	q := r.URL.Query()
	limit, offset = defaultLimit, 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return 0, 0, badRequest("limit: must be a positive integer")
		}
		limit = min(limit, maxLimit)
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, badRequest("offset: must be a non-negative integer")
		}
		if offset > maxOffset {
			return 0, 0, badRequest("offset: at most %d; narrow the list with its filters (dates, state) to reach older entries", maxOffset)
		}
	}
	return limit, offset, nil
}

func page[T any](items []T, limit, offset int) []T {
	if offset >= len(items) {
		return []T{}
	}
	return items[offset:min(len(items), offset+limit)]
}

// listValues reads a repeated (or comma-separated) query parameter.
func listValues(r *http.Request, name string) []string {
	var out []string
	for _, v := range r.URL.Query()[name] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, badRequest("%s: %q is not an RFC 3339 date-time", name, v)
	}
	return t, nil
}

// ---- DAGs ----

func (s *Server) getDags(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var paused *bool
	if v := q.Get("paused"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("paused: must be true or false")
		}
		paused = &b
	}
	if v := q.Get("only_active"); v != "" {
		// Every registered pipeline is active: the filter keeps them all.
		if _, err := strconv.ParseBool(v); err != nil {
			return badRequest("only_active: must be true or false")
		}
	}
	desc := false
	switch q.Get("order_by") {
	case "", "dag_id":
	case "-dag_id":
		desc = true
	default:
		return badRequest("order_by: only dag_id and -dag_id are supported")
	}
	resp, err := call(ctx, s, controlv1.ControlService_ListPipelines_FullMethodName,
		func(ctx context.Context) (*controlv1.ListPipelinesResponse, error) {
			return s.api.ListPipelines(ctx, &controlv1.ListPipelinesRequest{})
		})
	if err != nil {
		return err
	}
	pattern := strings.ToLower(q.Get("dag_id_pattern"))
	tags := listValues(r, "tags")
	dags := []dagJSON{}
	for _, p := range resp.GetPipelines() {
		if paused != nil && p.GetPaused() != *paused {
			continue
		}
		if pattern != "" && !slices.ContainsFunc(append([]string{p.GetId()}, p.GetAliases()...), func(id string) bool {
			return strings.Contains(strings.ToLower(id), pattern)
		}) {
			continue
		}
		d := toDAG(p)
		if len(tags) > 0 && !slices.ContainsFunc(d.Tags, func(t tag) bool { return slices.Contains(tags, t.Name) }) {
			continue
		}
		dags = append(dags, d)
	}
	slices.SortFunc(dags, func(a, b dagJSON) int {
		if desc {
			return strings.Compare(b.DagID, a.DagID)
		}
		return strings.Compare(a.DagID, b.DagID)
	})
	writeJSON(w, http.StatusOK, dagCollection{Dags: page(dags, limit, offset), TotalEntries: len(dags)})
	return nil
}

func (s *Server) getDag(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	p, err := s.pipeline(ctx, r.PathValue("dag_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDAG(p))
	return nil
}

func (s *Server) pipeline(ctx context.Context, id string) (*controlv1.Pipeline, error) {
	if _, err := lookupDAG(id); err != nil {
		return nil, err
	}
	return call(ctx, s, controlv1.ControlService_GetPipeline_FullMethodName,
		func(ctx context.Context) (*controlv1.Pipeline, error) {
			return s.api.GetPipeline(ctx, &controlv1.GetPipelineRequest{Pipeline: id})
		})
}

// canonicalID is the id of the pipeline that id names (its own or an alias),
// or id when it names none.
func canonicalID(id string) string {
	if pl, ok := events.LookupPipeline(id); ok {
		return pl.ID
	}
	return id
}

// lookupDAG is the registered pipeline id names (NotFound: none).
func lookupDAG(id string) (events.Pipeline, error) {
	pl, ok := events.LookupPipeline(id)
	if !ok {
		return pl, dagNotFound(id)
	}
	return pl, nil
}

// dagWithBody is the pipeline the path's dag_id names, then the request's
// JSON body read into body.
func dagWithBody(r *http.Request, body any) (events.Pipeline, error) {
	pl, err := lookupDAG(r.PathValue("dag_id"))
	if err != nil {
		return pl, err
	}
	return pl, decodeBody(r, body)
}

// runWithBody reads the request's JSON body into body, then gets the DAG run
// the path's dag_id and dag_run_id name.
func (s *Server) runWithBody(ctx context.Context, r *http.Request, body any) (*controlv1.Run, error) {
	if err := decodeBody(r, body); err != nil {
		return nil, err
	}
	return s.run(ctx, r.PathValue("dag_id"), r.PathValue("dag_run_id"))
}

func dagNotFound(id string) error {
	return status.Errorf(codes.NotFound, "DAG with dag_id: '%s' not found", id)
}

func (s *Server) patchDag(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("dag_id")
	for _, f := range listValues(r, "update_mask") {
		if f != "is_paused" {
			return badRequest("update_mask: only `is_paused` can be updated, not %q", f)
		}
	}
	var body struct {
		IsPaused *bool `json:"is_paused"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.IsPaused == nil {
		return badRequest("is_paused: required")
	}
	if _, err := lookupDAG(id); err != nil {
		return err
	}
	method := methodUnpause
	if *body.IsPaused {
		method = methodPause
	}
	p, err := call(ctx, s, method, func(ctx context.Context) (*controlv1.Pipeline, error) {
		if *body.IsPaused {
			return s.api.PausePipeline(ctx, &controlv1.PausePipelineRequest{Pipeline: id})
		}
		return s.api.UnpausePipeline(ctx, &controlv1.UnpausePipelineRequest{Pipeline: id})
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDAG(p))
	return nil
}

func decodeBody(r *http.Request, dst any) error { return decode(r, dst, false) }

// decodeOptionalBody also accepts an empty body (dst is left as is).
func decodeOptionalBody(r *http.Request, dst any) error { return decode(r, dst, true) }

func decode(r *http.Request, dst any, optional bool) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	if err := dec.Decode(dst); err != nil {
		if optional && errors.Is(err, io.EOF) {
			return nil
		}
		return badRequest("request body: %v", err)
	}
	if dec.More() {
		return badRequest("request body: more than one JSON value")
	}
	return nil
}

// ---- DAG runs ----

// runOrder maps the order_by fields to runs columns.
var runOrder = map[string]runstore.Column{
	"execution_date": runstore.LogicalDate, "logical_date": runstore.LogicalDate,
	"start_date": runstore.StartedAt, "end_date": runstore.EndedAt, "updated_at": runstore.UpdatedAt,
	"dag_run_id": runstore.RunID, "run_id": runstore.RunID, "state": runstore.StateColumn, "id": runstore.QueuedAt,
}

// runBounds are the date range filters of a DAG runs list.
var runBounds = []struct {
	param  string
	col    runstore.Column
	before bool
}{
	{"execution_date_gte", runstore.LogicalDate, false}, {"execution_date_lte", runstore.LogicalDate, true},
	{"start_date_gte", runstore.StartedAt, false}, {"start_date_lte", runstore.StartedAt, true},
	{"end_date_gte", runstore.EndedAt, false}, {"end_date_lte", runstore.EndedAt, true},
	{"updated_at_gte", runstore.UpdatedAt, false}, {"updated_at_lte", runstore.UpdatedAt, true},
}

// getDagRuns lists a DAG's runs (dag_id ~: every DAG's), newest first by
// default, with offset paging and the total. An unknown DAG has no runs (the
// contract has no 404 here).
func (s *Server) getDagRuns(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	f, order, err := dagRunsQuery(r)
	if err != nil {
		return err
	}
	total, err := runstore.Count(ctx, s.pool, f)
	if err != nil {
		return s.internal(ctx, "count runs", err)
	}
	var runs []*controlv1.Run
	if offset < total { // past the end the page is empty: no query
		if runs, err = runstore.List(ctx, s.pool, f, order, runstore.Page{Limit: limit, Offset: offset}); err != nil {
			return s.internal(ctx, "list runs", err)
		}
	}
	out := dagRunCollection{DagRuns: make([]dagRunJSON, len(runs)), TotalEntries: total}
	for i, run := range runs {
		out.DagRuns[i] = toDAGRun(run)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// dagRunsQuery reads a DAG runs list's filters and order_by.
func dagRunsQuery(r *http.Request) (runstore.Filter, runstore.Order, error) {
	var f runstore.Filter
	if id := r.PathValue("dag_id"); id != "~" {
		f.Pipeline = canonicalID(id)
	}
	if states := listValues(r, "state"); len(states) > 0 {
		f.States = []runstore.State{}
		for _, st := range states {
			f.States = append(f.States, runStatesFor(st)...)
		}
	}
	for _, b := range runBounds {
		if v := r.URL.Query().Get(b.param); v != "" {
			t, err := parseTime(b.param, v)
			if err != nil {
				return f, runstore.Order{}, err
			}
			f.Bounds = append(f.Bounds, runstore.Bound{Column: b.col, Before: b.before, Time: t})
		}
	}
	var order runstore.Order
	if ob := r.URL.Query().Get("order_by"); ob != "" {
		desc := strings.HasPrefix(ob, "-")
		ob = strings.TrimPrefix(ob, "-")
		col, ok := runOrder[ob]
		if !ok {
			return f, order, badRequest("order_by: ordering with %q is not supported", ob)
		}
		order = runstore.Order{Column: col, Desc: desc}
	}
	return f, order, nil
}

func (s *Server) internal(ctx context.Context, what string, err error) error {
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, "request cancelled")
	}
	s.log.ErrorContext(ctx, "compat: "+what, "error", err)
	return status.Error(codes.Internal, "internal error")
}

// run returns a DAG's run with its steps (NotFound for another DAG's run, and
// for an id api.ValidateRunID refuses, which no run can have).
func (s *Server) run(ctx context.Context, dagID, runID string) (*controlv1.Run, error) {
	if api.ValidateRunID(runID) != nil { // names no run: no run can be created with it
		return nil, status.Errorf(codes.NotFound, "DAGRun with DAG ID: '%s' and DagRun ID: '%s' not found", dagID, runID)
	}
	run, err := call(ctx, s, controlv1.ControlService_GetRun_FullMethodName, func(ctx context.Context) (*controlv1.Run, error) {
		return s.api.GetRun(ctx, &controlv1.GetRunRequest{RunId: runID})
	})
	if status.Code(err) == codes.NotFound || (err == nil && run.GetPipeline() != canonicalID(dagID)) {
		return nil, status.Errorf(codes.NotFound, "DAGRun with DAG ID: '%s' and DagRun ID: '%s' not found", dagID, runID)
	}
	return run, err
}

func (s *Server) getDagRun(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	run, err := s.run(ctx, r.PathValue("dag_id"), r.PathValue("dag_run_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDAGRun(run))
	return nil
}

// getTaskInstances lists a run's steps in chain order. An unknown DAG or run
// has none (the contract has no 404 here).
func (s *Server) getTaskInstances(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	limit, offset, err := paging(r)
	if err != nil {
		return err
	}
	out := taskInstanceCollection{TaskInstances: []taskInstanceJSON{}}
	run, err := s.run(ctx, r.PathValue("dag_id"), r.PathValue("dag_run_id"))
	if status.Code(err) == codes.NotFound {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	if err != nil {
		return err
	}
	states := listValues(r, "state")
	var tis []taskInstanceJSON
	for _, st := range run.GetSteps() {
		ti := toTaskInstance(run, st)
		if len(states) > 0 {
			name := "none"
			if ti.State != nil {
				name = *ti.State
			}
			if !slices.Contains(states, name) {
				continue
			}
		}
		tis = append(tis, ti)
	}
	out.TaskInstances, out.TotalEntries = page(tis, limit, offset), len(tis)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ---- trigger ----

type triggerBody struct {
	DagRunID          *string        `json:"dag_run_id"`
	LogicalDate       *string        `json:"logical_date"`
	ExecutionDate     *string        `json:"execution_date"`
	Conf              map[string]any `json:"conf"`
	DataIntervalStart *string        `json:"data_interval_start"`
	DataIntervalEnd   *string        `json:"data_interval_end"`
	Note              *string        `json:"note"`
}

// runIDRE is Airflow's default allowed_run_id_pattern.
var runIDRE = regexp.MustCompile(`^[A-Za-z0-9_.~:+-]{1,250}$`)

// postDagRun triggers a DAG. Without dag_run_id and logical_date it is
// exactly the ControlService's TriggerPipeline (run manual__<now>); with
// either, the run is inserted here with the same queued row and the same
// pipeline.triggered event through the outbox, named dag_run_id or
// manual__<logical_date>; a taken name is 409.
func (s *Server) postDagRun(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var body triggerBody
	pl, err := dagWithBody(r, &body)
	if err != nil {
		return err
	}
	run, err := s.trigger(ctx, pl, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toDAGRun(run))
	return nil
}

// trigger queues a run of pl as postDagRun describes.
func (s *Server) trigger(ctx context.Context, pl events.Pipeline, body triggerBody) (*controlv1.Run, error) {
	conf, logical, err := triggerArgs(pl, body)
	if err != nil {
		return nil, err
	}
	if body.DagRunID == nil && logical == nil {
		resp, err := call(ctx, s, methodTrigger, func(ctx context.Context) (*controlv1.TriggerPipelineResponse, error) {
			return s.api.TriggerPipeline(ctx, &controlv1.TriggerPipelineRequest{Pipeline: pl.ID, ConfJson: string(conf.JSON)})
		})
		if err != nil {
			return nil, err
		}
		return resp.GetRun(), nil
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if logical == nil {
		logical = &now
	}
	runID, err := triggerRunID(body.DagRunID, *logical)
	if err != nil {
		return nil, err
	}
	run, err := s.queueRun(ctx, pl, runstore.NewRun{RunID: runID, Pipeline: pl.ID, Source: "manual", Conf: conf.JSON,
		Logical: *logical, Queued: now}, conf.Known)
	if err != nil {
		return nil, err
	}
	s.relay.Nudge()
	by := "unknown"
	if id, ok := auth.IdentityFrom(ctx); ok {
		by = id.Name
	}
	s.log.InfoContext(ctx, "run queued", "pipeline", pl.ID, "run_id", runID, "by", by, "via", "airflow-api")
	return run, nil
}

// triggerArgs checks a trigger's body and reads its conf and its logical
// date (nil: none given).
func triggerArgs(pl events.Pipeline, body triggerBody) (api.Conf, *time.Time, error) {
	if body.DataIntervalStart != nil || body.DataIntervalEnd != nil {
		return api.Conf{}, nil, badRequest("data_interval_start, data_interval_end: not supported (a run covers its logical date)")
	}
	if body.Note != nil {
		return api.Conf{}, nil, badRequest("note: not supported")
	}
	conf, err := api.ParseConf(pl, body.Conf)
	if err != nil {
		return api.Conf{}, nil, err
	}
	var logical *time.Time
	for _, f := range []struct {
		name string
		v    *string
	}{{"logical_date", body.LogicalDate}, {"execution_date", body.ExecutionDate}} {
		if f.v == nil {
			continue
		}
		t, err := parseTime(f.name, *f.v)
		if err != nil {
			return api.Conf{}, nil, err
		}
		t = t.UTC().Truncate(time.Microsecond)
		if logical != nil && !logical.Equal(t) {
			return api.Conf{}, nil, badRequest("logical_date and execution_date differ")
		}
		logical = &t
	}
	return conf, logical, nil
}

// triggerRunID is the run id a trigger asks for, else manual__<logical>.
func triggerRunID(dagRunID *string, logical time.Time) (string, error) {
	if dagRunID == nil {
		return projection.RunIDFor("manual", logical), nil
	}
	runID := *dagRunID
	if err := api.ValidateRunID(runID); err != nil {
		return "", badRequest("dag_run_id: %v", err)
	}
	if !runIDRE.MatchString(runID) {
		return "", badRequest("dag_run_id: must be 1-250 characters of [A-Za-z0-9_.~:+-]")
	}
	if strings.HasPrefix(runID, "scheduled__") {
		return "", badRequest("dag_run_id: the scheduled__ prefix is reserved for scheduled runs")
	}
	return runID, nil
}

// queueRun inserts the queued run and writes its pipeline.triggered event
// (with the declared conf keys known) to the outbox, in one transaction; a
// taken run id is AlreadyExists.
func (s *Server) queueRun(ctx context.Context, pl events.Pipeline, nr runstore.NewRun, known map[string]string) (*controlv1.Run, error) {
	var run *controlv1.Run
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		run, err = runstore.Insert(ctx, tx, nr)
		if errors.Is(err, runstore.ErrExists) {
			return status.Errorf(codes.AlreadyExists, "DAGRun with DAG ID: '%s' and DAGRun ID: '%s' already exists", pl.ID, nr.RunID)
		}
		if err != nil {
			return err
		}
		ev, err := eventing.New(events.PipelineTriggered, events.Source(events.Control), nr.RunID, pl.ID, traceParent(ctx),
			&eventsv1.PipelineTriggered{Source: "manual", LogicalDate: timestamppb.New(nr.Logical), Conf: known})
		if err != nil {
			return err
		}
		return eventing.Emit(ctx, tx, ev)
	})
	if status.Code(err) == codes.AlreadyExists {
		return nil, err
	}
	if err != nil {
		return nil, s.internal(ctx, "trigger", err)
	}
	return run, nil
}
