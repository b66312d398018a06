package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/service"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/scheduler"
	"github.com/cmmsflow/cmmsflow/services/control/internal/api"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/gateway"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
)

// Control is the control API: a gRPC server (ControlService, health,
// reflection) and the grpc-gateway HTTP/JSON mux in front of it.
//
// The gateway calls the API in process (gateway.InprocConn), through the same
// interceptors a gRPC call runs through (auth, rate limit, error mapping):
// one policy, one error mapping.
type Control struct {
	GRPC   *grpc.Server
	Health *health.Server
}

func newControl(ctx context.Context, s *service.Service, table scheduler.Table, guard *auth.Guard, metrics *runstore.Metrics) (*Control, error) {
	intercept := []grpc.UnaryServerInterceptor{recoverUnary(s.Log), guard.UnaryInterceptor(), api.ErrorInterceptor(s.Log)}
	// No keepalive options: grpc-go applies them in its own transport only,
	// and this server is reached through ServeHTTP, where net/http's HTTP/2
	// server reads the frames. The port enforces gRPC's keepalive policy
	// itself (libs/service/h2ping.go: GOAWAY too_many_pings).
	gs := grpc.NewServer(
		grpc.ChainUnaryInterceptor(intercept...),
		grpc.ChainStreamInterceptor(recoverStream(s.Log), guard.StreamInterceptor()),
	)
	srv := api.New(s.Pool, table, s.Relay, s.Log)
	srv.Instrument(metrics)
	controlv1.RegisterControlServiceServer(gs, srv)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(controlv1.ControlService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)

	c := &Control{GRPC: gs, Health: hs}
	conn := gateway.NewInprocConn(&controlv1.ControlService_ServiceDesc, srv, intercept...)
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, gateway.NewJSONMarshaler()),
		runtime.WithIncomingHeaderMatcher(headerMatcher),
		runtime.WithErrorHandler(errorHandler),
	)
	if err := controlv1.RegisterControlServiceHandlerClient(ctx, gw, controlv1.NewControlServiceClient(conn)); err != nil {
		c.Close()
		return nil, err
	}
	s.Mux.Handle("/v1/", guard.RequireToken(checkRequest(gw)))
	s.Mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(controlv1.OpenAPI)
	})
	return c, nil
}

// maxRequestBody bounds an API request's body: a trigger is a few hundred
// bytes.
const maxRequestBody = 1 << 20

// checkRequest refuses what the gateway would mishandle: a body over
// maxRequestBody (413, where the gRPC message limit would answer 429), a
// body with data after its JSON value (which the gateway ignores) and a URL
// that is not valid UTF-8 (which fails as an internal error).
func checkRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !validURL(r.URL) {
			writeError(w, http.StatusBadRequest, "the request URL is not valid UTF-8")
			return
		}
		tooLarge := fmt.Sprintf("request body too large: the limit is %d bytes", maxRequestBody)
		if r.ContentLength > maxRequestBody {
			writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
			switch {
			case err != nil:
				writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
				return
			case len(body) > maxRequestBody:
				writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
				return
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			var v json.RawMessage
			if dec.Decode(&v) == nil { // a malformed body is left to the gateway, which names the error
				if _, err := dec.Token(); !errors.Is(err, io.EOF) {
					writeError(w, http.StatusBadRequest, "request body: data after the JSON value")
					return
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

func validURL(u *url.URL) bool {
	if !utf8.ValidString(u.Path) {
		return false
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return false
	}
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

// writeError answers as the gateway does: {code, message, details}.
func writeError(w http.ResponseWriter, httpStatus int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": codes.InvalidArgument, "message": msg, "details": []any{}})
}

// headerMatcher passes the W3C traceparent on to the gRPC call (the
// Authorization header always passes).
func headerMatcher(key string) (string, bool) {
	if strings.EqualFold(key, "traceparent") {
		return "traceparent", true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// errorHandler is the gateway's default (gRPC code → HTTP status, body
// {code, message, details}) plus the WWW-Authenticate challenge on 401.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if status.Code(err) == codes.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cmmsflow"`)
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// Handler is the port's one handler: HTTP/2 requests with a gRPC content
// type go to the gRPC server, everything else (HTTP/1.1 or h2c: the gateway
// under /v1/, the admin page, /events, probes) to mux.
func (c *Control) Handler(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			c.GRPC.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Close stops the gRPC server, letting in-flight calls finish for up to 5 s.
func (c *Control) Close() {
	c.Health.Shutdown()
	stopped := make(chan struct{})
	go func() { c.GRPC.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		c.GRPC.Stop()
	}
}
