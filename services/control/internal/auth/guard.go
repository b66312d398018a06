package auth

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// Rule is what a gRPC method requires.
type Rule struct {
	// Role is the least role allowed; RoleNone makes the method public.
	Role Role
	// RateLimited methods also spend from the token's rate limiter.
	RateLimited bool
}

// Policy is the rule of every method control serves. A method missing from
// it needs an authenticated caller and is then denied.
var Policy = map[string]Rule{
	controlv1.ControlService_ListPipelines_FullMethodName:     {Role: RoleViewer},
	controlv1.ControlService_GetPipeline_FullMethodName:       {Role: RoleViewer},
	controlv1.ControlService_ListRuns_FullMethodName:          {Role: RoleViewer},
	controlv1.ControlService_GetRun_FullMethodName:            {Role: RoleViewer},
	controlv1.ControlService_ListNotifications_FullMethodName: {Role: RoleViewer},
	controlv1.ControlService_ListReports_FullMethodName:       {Role: RoleViewer},
	controlv1.ControlService_TriggerPipeline_FullMethodName:   {Role: RoleAdmin, RateLimited: true},
	controlv1.ControlService_PausePipeline_FullMethodName:     {Role: RoleAdmin},
	controlv1.ControlService_UnpausePipeline_FullMethodName:   {Role: RoleAdmin},
	controlv1.ControlService_CancelRun_FullMethodName:         {Role: RoleAdmin},
	controlv1.ControlService_BackfillPipeline_FullMethodName:  {Role: RoleAdmin},
	// A retry starts work as a trigger does: the same rate limit.
	controlv1.ControlService_RetryRun_FullMethodName: {Role: RoleAdmin, RateLimited: true},
	// Setting a run's state to queued starts it again: limited too.
	controlv1.ControlService_SetRunState_FullMethodName:  {Role: RoleAdmin, RateLimited: true},
	controlv1.ControlService_SetStepState_FullMethodName: {Role: RoleAdmin},
	// Probes carry no token.
	healthpb.Health_Check_FullMethodName: {Role: RoleNone},
	healthpb.Health_Watch_FullMethodName: {Role: RoleNone},
	healthpb.Health_List_FullMethodName:  {Role: RoleNone},
	// Reflection describes the API to any caller allowed to read it.
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      {Role: RoleViewer},
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: {Role: RoleViewer},
}

// The only things a refused caller is told.
const (
	MsgUnauthenticated  = "unauthenticated"
	MsgPermissionDenied = "permission denied"
	MsgRateLimited      = "rate limit exceeded"
)

// RateLimit is the per-token budget of rate-limited methods: Rate calls a
// second on average, bursts of Burst. Rate <= 0 means unlimited.
type RateLimit struct {
	Rate  float64
	Burst int
}

// Guard authenticates and authorizes calls.
type Guard struct {
	tokens *Tokens
	policy map[string]Rule
	limit  RateLimit
	log    *slog.Logger

	// basic checks the passwords of tokens' users; nil when there are none.
	basic *basicAuth

	mu       sync.Mutex
	limiters map[[32]byte]*rate.Limiter
}

// GuardOption configures a Guard.
type GuardOption func(*guardOptions)

type guardOptions struct {
	now func() time.Time
}

// WithClock makes the guard read the time from now, for the windows of
// failed Basic logins and the cache of verified ones (tests).
func WithClock(now func() time.Time) GuardOption {
	return func(o *guardOptions) { o.now = now }
}

// NewGuard returns a guard enforcing policy for tokens (and their users).
func NewGuard(tokens *Tokens, policy map[string]Rule, limit RateLimit, log *slog.Logger, opts ...GuardOption) *Guard {
	o := guardOptions{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if limit.Burst < 1 {
		limit.Burst = 1
	}
	g := &Guard{tokens: tokens, policy: policy, limit: limit, log: log, limiters: map[[32]byte]*rate.Limiter{}}
	if tokens.Users() > 0 {
		g.basic = newBasicAuth(tokens.users, o.now, log)
	}
	return g
}

// Check decides a call of method with the given Authorization value, a
// bearer token, and returns ctx carrying the caller's identity, or a gRPC
// status error.
func (g *Guard) Check(ctx context.Context, method, authorization string) (context.Context, error) {
	return g.check(ctx, method, func() (Identity, bool) { return g.tokens.AuthenticateContext(ctx, authorization) })
}

// CheckBearerOrBasic is Check also accepting the HTTP Basic credentials of a
// user (API_USERS): for the routes of Airflow's clients, which log in with a
// user name and password. The rest of the API stays bearer-only.
func (g *Guard) CheckBearerOrBasic(ctx context.Context, method, authorization string) (context.Context, error) {
	return g.check(ctx, method, func() (Identity, bool) {
		if !isBasic(authorization) {
			return g.tokens.AuthenticateContext(ctx, authorization)
		}
		name, pw, ok := basicCredentials(authorization)
		if !ok || g.basic == nil {
			return Identity{}, false
		}
		return g.basic.authenticate(ctx, name, pw)
	})
}

// check decides a call of method, authenticating the caller (unless the
// method is public) with authenticate.
func (g *Guard) check(ctx context.Context, method string, authenticate func() (Identity, bool)) (context.Context, error) {
	rule, known := g.policy[method]
	if known && rule.Role == RoleNone {
		return ctx, nil
	}
	id, ok := authenticate()
	if !ok {
		g.log.DebugContext(ctx, "api call refused: unauthenticated", "method", method)
		return ctx, status.Error(codes.Unauthenticated, MsgUnauthenticated)
	}
	if !known || id.Role < rule.Role {
		g.log.InfoContext(ctx, "api call refused: permission denied", "method", method, "token", id.Name, "role", id.Role.String())
		return ctx, status.Error(codes.PermissionDenied, MsgPermissionDenied)
	}
	if rule.RateLimited && !g.allow(id) {
		g.log.InfoContext(ctx, "api call refused: rate limited", "method", method, "token", id.Name)
		return ctx, status.Error(codes.ResourceExhausted, MsgRateLimited)
	}
	return WithIdentity(ctx, id), nil
}

func (g *Guard) allow(id Identity) bool {
	if g.limit.Rate <= 0 {
		return true
	}
	g.mu.Lock()
	l, ok := g.limiters[id.key]
	if !ok {
		// One limiter per configured token, account or user: the map cannot
		// outgrow the configuration.
		l = rate.NewLimiter(rate.Limit(g.limit.Rate), g.limit.Burst)
		g.limiters[id.key] = l
	}
	g.mu.Unlock()
	return l.Allow()
}

func authorization(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// UnaryInterceptor checks every unary call.
func (g *Guard) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := g.Check(ctx, info.FullMethod, authorization(ctx))
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor checks every streaming call (reflection, health watch).
func (g *Guard) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := g.Check(ss.Context(), info.FullMethod, authorization(ss.Context()))
		if err != nil {
			return err
		}
		return handler(srv, &identityStream{ServerStream: ss, ctx: ctx})
	}
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

// RequireToken is the HTTP middleware of the API routes: a request without a
// valid token gets 401 before routing, so unauthenticated callers cannot
// probe which routes exist. Roles are checked per method by the gRPC
// interceptor the HTTP gateway calls through.
func (g *Guard) RequireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := g.tokens.AuthenticateContext(r.Context(), r.Header.Get("Authorization")); !ok {
			WriteUnauthenticated(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteUnauthenticated writes the 401 response, in the gateway's error shape.
func WriteUnauthenticated(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="cmmsflow"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"code":16,"message":"` + MsgUnauthenticated + `","details":[]}`))
}
