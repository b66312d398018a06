package cron

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

// Name is the publisher's name in logs and /healthz.
const Name = "cron"

// Server is the running local cron publisher: the cron and the /healthz
// endpoint.
type Server struct {
	cfg    Config
	log    *slog.Logger
	client *pubsub.Client
	pub    *eventing.PubSubPublisher
	cron   *Cron
	mux    *http.ServeMux

	listener net.Listener
}

// New loads the cron table in the configured time zone and connects to the
// Pub/Sub emulator. It returns an error naming the first thing missing.
func New(ctx context.Context, cfg Config) (*Server, error) {
	log := logging.New(os.Stdout, logging.Options{Format: cfg.LogFormat, Level: cfg.LogLevel, ProjectID: cfg.ProjectID}).
		With("service", Name)
	table, err := scheduler.Load()
	if err != nil {
		return nil, err
	}
	if table, err = table.InZone(cfg.TimeZone); err != nil {
		return nil, fmt.Errorf("%s: CRON_TIME_ZONE: %w", Name, err)
	}
	if cfg.EmulatorHost == "" {
		return nil, fmt.Errorf("%s: PUBSUB_EMULATOR_HOST is required: the local cron publishes to the emulator only", Name)
	}
	// This process only ever talks to the emulator.
	client, err := eventing.EmulatorClient(ctx, cfg.EmulatorHost, cfg.ProjectID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	pub := eventing.NewPubSubPublisher(client)
	c, err := NewCron(table, cfg.Only, pub, log, cfg.PublishTimeout)
	if err != nil {
		pub.Close()
		client.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, client: client, pub: pub, cron: c, mux: http.NewServeMux()}
	s.mux.Handle("GET /healthz", service.Healthz(Name))
	return s, nil
}

// Listen binds the HTTP port now, so the caller knows the address before Run.
func (s *Server) Listen() (net.Addr, error) {
	return service.ListenOnce(&s.listener, Name, s.cfg.Host, s.cfg.Port)
}

// Run kicks and serves /healthz until ctx is cancelled (SIGTERM), then lets
// a kick under way finish and stops, within the shutdown grace period.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	if _, err := s.Listen(); err != nil {
		return err
	}
	cronCtx, stopCron := context.WithCancel(ctx)
	defer stopCron()
	cronDone := make(chan struct{})
	go func() { defer close(cronDone); _ = s.cron.Run(cronCtx) }()
	s.log.Info("serving", "addr", s.listener.Addr().String(), "time_zone", s.cron.loc.String(), "pubsub", s.cfg.EmulatorHost)

	grace := s.cfg.ShutdownGrace
	if grace <= 0 {
		grace = 9 * time.Second
	}
	err := service.ServeHTTP(ctx, s.listener, s.mux, grace)
	s.log.Info("shutting down")
	stopCron()
	select {
	case <-cronDone:
	case <-time.After(grace):
		s.log.Warn("a kick was still under way at shutdown")
	}
	return err
}

func (s *Server) close() {
	s.pub.Close()
	_ = s.client.Close()
}
