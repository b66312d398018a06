// Package compat serves the compatibility APIs of control for clients of the
// system it replaced:
//
//   - a subset of the Airflow stable REST API v1 under /api/v1/dags…: pipelines
//     are DAGs, runs are DAG runs, steps are task instances (see states.go for
//     the state mapping). The operations served are the rows of airflowTable
//     (airflow.go); testdata/airflow-v1.yaml is their contract, cut from the
//     upstream spec (../shared/contracts/airflow-v1.yaml beside the clone) by
//     go run ./services/control/cmd/airflowcontract, which is run again after
//     a change to the table. The tests check every request and response
//     against it;
//   - the old backend's /api/v1/core/composer/* routes (composer.go).
//
// Both call control's ControlService implementation (internal/api) for what it
// offers, under the same bearer tokens and role policy (internal/auth): every
// route but the monitoring ones (health, version) needs a token or, as
// Airflow's clients send, the HTTP Basic credentials of an API_USERS user; a
// trigger or a pause is admin-only and rate limited like TriggerPipeline. Only what the ControlService cannot express (offset
// paging with totals, several states at once, a caller-chosen dag_run_id or
// logical date) is read or written here, through the same run store
// (internal/runstore) and with the same events; compat itself only
// translates to Airflow's shapes.
package compat

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/scheduler"
	"github.com/cmmsflow/cmmsflow/services/control/internal/api"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
	"github.com/cmmsflow/cmmsflow/services/control/internal/steplogs"
)

// The ControlService methods whose role rules (auth.Policy) the routes take.
const (
	methodRead    = controlv1.ControlService_ListRuns_FullMethodName
	methodTrigger = controlv1.ControlService_TriggerPipeline_FullMethodName
	methodPause   = controlv1.ControlService_PausePipeline_FullMethodName
	methodUnpause = controlv1.ControlService_UnpausePipeline_FullMethodName
	methodRetry   = controlv1.ControlService_RetryRun_FullMethodName
)

// Server serves the compatibility routes.
type Server struct {
	api   *api.Server
	pool  *pgxpool.Pool
	table scheduler.Table
	relay api.Nudger
	guard *auth.Guard
	log   *slog.Logger
	errs  grpc.UnaryServerInterceptor
	now   func() time.Time
	logs  steplogs.Reader // nil: no task logs
}

// New returns the compatibility API over control's database; table gives
// schedules, relay is nudged after a trigger, guard checks every request.
func New(pool *pgxpool.Pool, table scheduler.Table, relay api.Nudger, guard *auth.Guard, log *slog.Logger) *Server {
	return &Server{
		api: api.New(pool, table, relay, log), pool: pool, table: table, relay: relay, guard: guard, log: log,
		errs: api.ErrorInterceptor(log), now: time.Now,
	}
}

// Register mounts the routes under /api/v1/ on mux.
func (s *Server) Register(mux *http.ServeMux) { mux.Handle("/api/v1/", s.Handler()) }

// Handler serves /api/v1/…: a request without a valid token gets 401 before
// routing (as on the rest of the API), so unauthenticated callers cannot probe
// which routes exist; only the public monitoring routes (health, version)
// answer without one.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.airflowRoutes(mux)
	s.composerRoutes(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if publicRoute(r) {
			mux.ServeHTTP(w, r)
			return
		}
		composer := strings.HasPrefix(r.URL.Path, composerPrefix)
		if _, err := s.guard.CheckBearerOrBasic(r.Context(), methodRead, r.Header.Get("Authorization")); err != nil {
			if composer {
				writeComposerError(w, err)
			} else {
				writeProblemFor(w, err)
			}
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// authorize checks the request's token or Basic credentials against method's
// rule (role, rate limit) and returns the context carrying the caller's
// identity, plus the caller's traceparent as the ControlService expects it.
func (s *Server) authorize(r *http.Request, method string) (context.Context, error) {
	ctx := r.Context()
	if tp := r.Header.Get("Traceparent"); tp != "" {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("traceparent", tp))
	}
	return s.guard.CheckBearerOrBasic(ctx, method, r.Header.Get("Authorization"))
}

// handler is a route's work after the prologue that serve does once for all
// routes: ctx carries the authorized caller. An error it returns (before it
// writes anything) is answered in the route's error shape.
type handler func(s *Server, ctx context.Context, w http.ResponseWriter, r *http.Request) error

// serve is the prologue and the error answer every route shares: it
// authorizes r against auth's rule (a public route goes without),
// runs h with the caller's context, and answers the refusal or h's error with
// fail (writeProblemFor or writeComposerError).
func (s *Server) serve(auth string, h handler, fail func(http.ResponseWriter, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if auth != public {
			var err error
			if ctx, err = s.authorize(r, auth); err != nil {
				fail(w, err)
				return
			}
		}
		if err := h(s, ctx, w, r); err != nil {
			fail(w, err)
		}
	}
}

// call runs a ControlService method through the API's error mapping, so the
// error is a gRPC status exactly as a gRPC or gateway caller would get it.
func call[T any](ctx context.Context, s *Server, method string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	out, err := s.errs(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
		return fn(ctx)
	})
	if err != nil {
		return zero, err
	}
	return out.(T), nil
}

// httpStatus maps a gRPC status (from the guard or the API) to HTTP.
func httpStatus(err error) int {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted, codes.FailedPrecondition:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return 499
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// message is what a caller may read of err: nothing about why a token was
// refused, nothing of an internal error.
func message(err error) string {
	switch code := status.Code(err); code {
	case codes.Unauthenticated:
		return auth.MsgUnauthenticated
	case codes.PermissionDenied:
		return auth.MsgPermissionDenied
	case codes.ResourceExhausted, codes.InvalidArgument, codes.OutOfRange, codes.NotFound,
		codes.AlreadyExists, codes.Aborted, codes.FailedPrecondition, codes.Canceled, codes.DeadlineExceeded:
		return status.Convert(err).Message()
	}
	return "internal error"
}

// challenge names the schemes these routes accept on a 401: Basic first, the
// one Airflow's clients use.
func challenge(w http.ResponseWriter, err error) {
	if status.Code(err) == codes.Unauthenticated {
		w.Header().Add("WWW-Authenticate", `Basic realm="cmmsflow"`)
		w.Header().Add("WWW-Authenticate", `Bearer realm="cmmsflow"`)
	}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// traceParent is the caller's W3C traceparent (set by authorize), if any.
func traceParent(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, "traceparent"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Instrument records the run and step changes made through the Airflow
// API (PATCH of a DAG run's or a task instance's state) on m, as control's
// own API records them.
func (s *Server) Instrument(m *runstore.Metrics) *Server {
	s.api.Instrument(m)
	return s
}
