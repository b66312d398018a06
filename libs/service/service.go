// Package service is the runtime every cmmsflow service shares: the process
// entry point, the HTTP server with /healthz and /readyz, the event router on
// /events, the outbox relay and graceful shutdown.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/oidc"
	"github.com/cmmsflow/cmmsflow/libs/source"
	"github.com/cmmsflow/cmmsflow/libs/telemetry"
)

// Main runs run under a context cancelled by SIGINT or SIGTERM and exits 1
// if it fails. Every cmd/<service>/main.go is one call to Main.
func Main(run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		stop()
		os.Exit(1)
	}
}

// Service is one running cmmsflow service.
type Service struct {
	Name      string
	Config    config.Common
	Log       *slog.Logger
	Pool      *pgxpool.Pool
	PubSub    *pubsub.Client
	Publisher *eventing.PubSubPublisher
	Relay     *eventing.Relay
	Router    *eventing.Router
	// PushAuth verifies the OIDC token of every push to /events; nil when
	// PUSH_AUTH is off.
	PushAuth *oidc.Verifier
	// Telemetry holds the tracer and meter providers (traces exported only
	// when an OTLP endpoint is configured; metrics served at /metrics).
	Telemetry *telemetry.Telemetry
	// Mux serves /events, /healthz, /readyz and /metrics; services add their
	// own routes.
	Mux *http.ServeMux
	// Handler serves the port; nil serves Mux. (control puts its gRPC
	// server in front of Mux.)
	Handler http.Handler

	listener   net.Listener
	stops      []func()
	store      *objstore.Store
	closeStore func() error
}

// Bucket is the run bucket (Config.Bucket), connected on first use and
// closed when the service stops.
func (s *Service) Bucket(ctx context.Context) (*objstore.Store, error) {
	if s.store == nil {
		store, closeStore, err := objstore.Connect(ctx, s.Config.Bucket)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		s.store, s.closeStore = store, closeStore
	}
	return s.store, nil
}

// OnStop registers f to run once the port has stopped serving, before the
// outbox's final flush.
func (s *Service) OnStop(f func()) { s.stops = append(s.stops, f) }

// New connects every dependency a service needs and returns an error naming
// the first one missing.
func New(ctx context.Context, name string, cfg config.Common) (*Service, error) {
	log := logging.New(os.Stdout, logging.Options{Format: cfg.LogFormat, Level: cfg.LogLevel, ProjectID: cfg.ProjectID}).
		With("service", name)
	pushAuth, err := PushVerifier(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	tel, err := telemetry.New(ctx, TelemetryConfig(name, cfg))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if tel.Tracing() {
		log.Info("tracing on", "exporter", tel.Exporter())
	}
	s := &Service{Name: name, Config: cfg, Log: log, PushAuth: pushAuth, Telemetry: tel, Mux: http.NewServeMux()}
	pool, err := db.Connect(ctx, cfg.DatabaseURL, db.WithSource(cfg.SourceSchema))
	if err != nil {
		s.close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s.Pool = pool
	// A mapped source must have been applied for the contract this build
	// reads (cmmsflow source apply); cmmsflow's own tables always are.
	if err := source.Verify(ctx, pool, cfg.SourceSchema); err != nil {
		s.close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ps, err := pubsub.NewClient(ctx, cfg.ProjectID)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("%s: pubsub client: %w", name, err)
	}
	s.PubSub = ps
	evTel := eventing.Telemetry{TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider}
	s.Publisher = eventing.NewPubSubPublisher(ps)
	s.Relay = eventing.NewRelay(pool, s.Publisher, log, cfg.OutboxInterval)
	if err := s.Relay.Instrument(name, evTel); err != nil {
		s.close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s.Router = eventing.NewRouter(eventing.RouterConfig{
		Service: name, Pool: pool, Relay: s.Relay, Log: log, Timeout: cfg.HandlerTimeout, Telemetry: evTel,
	})
	router := s.Router
	s.Mux.Handle("/events", protect(pushAuth, router))
	if tel.Metrics != nil {
		// Not behind the push auth: scraped by Prometheus or a collector
		// sidecar; it reveals counts, no payloads.
		s.Mux.Handle("GET /metrics", tel.Metrics)
	}
	s.Mux.Handle("GET /healthz", Healthz(name))
	s.Mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := pool.Ping(ctx); err != nil {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		// The pid tells a local stack that its own process answered, not
		// another stack's that holds the port.
		fmt.Fprintf(w, `{"status":"ready","service":%q,"pid":%d}`, name, os.Getpid())
	})
	return s, nil
}

// TelemetryConfig is the telemetry cfg asks for.
func TelemetryConfig(name string, cfg config.Common) telemetry.Config {
	return telemetry.Config{
		Service: name, TracesExporter: cfg.TracesExporter, OTLPEndpoint: cfg.OTLPEndpoint,
		OTLPTracesEndpoint: cfg.OTLPTracesEndpoint, OTLPProtocol: cfg.OTLPProtocol, Metrics: bool(cfg.Metrics),
	}
}

// PushVerifier returns the verifier of push tokens cfg asks for, nil when
// PUSH_AUTH is off. On Cloud Run, off fails closed (an error) unless it is
// off-insecure, which is logged as a warning.
func PushVerifier(cfg config.Common, log *slog.Logger) (*oidc.Verifier, error) {
	if !cfg.PushAuth.On() {
		return nil, checkPushAuthOff(cfg, log)
	}
	v, err := oidc.New(oidc.Config{
		Audiences: []string{cfg.PushAudience}, AllowedEmails: cfg.PushServiceAccounts,
		JWKSURL: cfg.PushJWKSURL, Log: log.With("component", "push-auth"),
	})
	if err != nil {
		return nil, fmt.Errorf("PUSH_AUTH=on needs PUSH_AUDIENCE and PUSH_SERVICE_ACCOUNTS: %w", err)
	}
	return v, nil
}

// checkPushAuthOff refuses PUSH_AUTH off on Cloud Run, where /events is as
// reachable as the service, unless written off-insecure. Elsewhere (the
// local stack, tests) off is allowed silently.
func checkPushAuthOff(cfg config.Common, log *slog.Logger) error {
	if cfg.CloudRunService == "" {
		return nil
	}
	const risk = "/events accepts pushes without a token, so anyone who can reach the service can post forged events: " +
		"trigger runs, record fake step results, send emails"
	if cfg.PushAuth == config.PushAuthOffInsecure {
		log.Warn("PUSH_AUTH=off-insecure on Cloud Run: " + risk)
		return nil
	}
	return fmt.Errorf("PUSH_AUTH is off on Cloud Run (K_SERVICE=%s), and %s. "+
		"Set PUSH_AUTH=on with PUSH_AUDIENCE (this service's URL) and PUSH_SERVICE_ACCOUNTS (the push subscriptions' service account), "+
		"as deploy/terraform does; or, to accept that risk, PUSH_AUTH=off-insecure", cfg.CloudRunService, risk)
}

// protect puts v's check in front of h; a nil v leaves h open.
func protect(v *oidc.Verifier, h http.Handler) http.Handler {
	if v == nil {
		return h
	}
	return v.Middleware(h)
}

// Listen binds the HTTP port now, so the caller knows the address before Run.
func (s *Service) Listen() (net.Addr, error) {
	return ListenOnce(&s.listener, s.Name, s.Config.Host, s.Config.Port)
}

// Run serves until ctx is cancelled, then stops accepting requests, lets
// in-flight ones finish within the shutdown grace period (Cloud Run gives 10 s
// after SIGTERM), flushes the outbox and closes the connections.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	if _, err := s.Listen(); err != nil {
		return err
	}
	var stopAt atomic.Int64 // when ctx ended: the shutdown grace counts from then
	stopAfter := context.AfterFunc(ctx, func() { stopAt.Store(time.Now().UnixNano()) })
	defer stopAfter()
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); s.Relay.Run(relayCtx) }()
	s.Log.Info("serving", "addr", s.listener.Addr().String())
	h := s.Handler
	if h == nil {
		h = s.Mux
	}
	err := ServeHTTP(ctx, s.listener, h, s.Config.ShutdownGrace)
	s.Log.Info("stopped serving")
	for _, f := range s.stops {
		f()
	}
	stopRelay()
	<-relayDone
	flushCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, ferr := s.Relay.Flush(flushCtx); ferr != nil {
		s.Log.Warn("final outbox flush failed; rows stay for the next start", "error", ferr)
	}
	// Spans still batched are flushed within what is left of the grace
	// period (at least half a second).
	deadline := time.Now().Add(500 * time.Millisecond)
	if at := stopAt.Load(); at != 0 {
		deadline = maxTime(deadline, time.Unix(0, at).Add(s.Config.ShutdownGrace))
	}
	telCtx, cancelTel := context.WithDeadline(context.Background(), deadline)
	defer cancelTel()
	if terr := s.Telemetry.Shutdown(telCtx); terr != nil {
		s.Log.Warn("telemetry shutdown: spans may be lost", "error", terr)
	}
	return err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *Service) close() {
	if s.Telemetry != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.Telemetry.Shutdown(ctx) // a no-op after Run's shutdown
		cancel()
	}
	if s.Publisher != nil {
		s.Publisher.Close()
	}
	if s.PubSub != nil {
		_ = s.PubSub.Close()
	}
	if s.Pool != nil {
		s.Pool.Close()
	}
	if s.closeStore != nil {
		_ = s.closeStore()
	}
}

// Serve builds the service, lets register add its handlers and routes, and
// runs it until ctx ends.
func Serve(ctx context.Context, name string, cfg config.Common, register func(*Service) error) error {
	s, err := New(ctx, name, cfg)
	if err != nil {
		return err
	}
	if register != nil {
		if err := register(s); err != nil {
			s.close()
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return s.Run(ctx)
}

// Config is a service's configuration: the common settings (it embeds
// config.Common) and its own, whose defaults and checks are its Validate.
type Config interface {
	CommonConfig() config.Common
	Validate() error
}

// Run is every service's main: it loads the configuration C from the
// environment, lets it set its defaults and check itself (Validate), and
// serves the service name with the routes and handlers register adds.
func Run[C any, P interface {
	*C
	Config
}](name string, register func(context.Context, *Service, C) error) {
	Main(func(ctx context.Context) error {
		var cfg C
		if err := config.Load(ctx, &cfg); err != nil {
			return err
		}
		if err := P(&cfg).Validate(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return Serve(ctx, name, P(&cfg).CommonConfig(), func(s *Service) error { return register(ctx, s, cfg) })
	})
}
