package cron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

// Name is the publisher's name in logs and /healthz.
const Name = "cron"

// Server is the running local cron publisher: the cron and the /healthz
// endpoint.
type Server struct {
	cfg    Config
	log    *slog.Logger
	conn   *grpc.ClientConn
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
	// Dial the emulator explicitly, without credentials: this process never
	// talks to Google's endpoints, whatever the environment says.
	conn, err := grpc.NewClient(cfg.EmulatorHost, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("%s: pubsub emulator %s: %w", Name, cfg.EmulatorHost, err)
	}
	client, err := pubsub.NewClient(ctx, cfg.ProjectID, option.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: pubsub client: %w", Name, err)
	}
	pub := eventing.NewPubSubPublisher(client)
	c, err := NewCron(table, cfg.Only, pub, log, cfg.PublishTimeout)
	if err != nil {
		pub.Close()
		client.Close()
		conn.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, conn: conn, client: client, pub: pub, cron: c, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","service":%q}`, Name)
	})
	return s, nil
}

// Listen binds the HTTP port now, so the caller knows the address before Run.
func (s *Server) Listen() (net.Addr, error) {
	if s.listener == nil {
		l, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port)))
		if err != nil {
			return nil, fmt.Errorf("%s: listen: %w", Name, err)
		}
		s.listener = l
	}
	return s.listener.Addr(), nil
}

// Run kicks and serves /healthz until ctx is cancelled (SIGTERM), then lets
// a kick under way finish and stops, within the shutdown grace period.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	if _, err := s.Listen(); err != nil {
		return err
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(s.listener) }()

	cronCtx, stopCron := context.WithCancel(ctx)
	defer stopCron()
	cronDone := make(chan struct{})
	go func() { defer close(cronDone); _ = s.cron.Run(cronCtx) }()
	s.log.Info("serving", "addr", s.listener.Addr().String(), "time_zone", s.cron.loc.String(), "pubsub", s.cfg.EmulatorHost)

	var err error
	select {
	case err = <-serveErr:
	case <-ctx.Done():
		s.log.Info("shutting down")
	}
	grace := s.cfg.ShutdownGrace
	if grace <= 0 {
		grace = 9 * time.Second
	}
	deadline := time.Now().Add(grace)
	stopCron()
	select {
	case <-cronDone:
	case <-time.After(time.Until(deadline)):
		s.log.Warn("a kick was still under way at shutdown")
	}
	shutCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) close() {
	s.pub.Close()
	_ = s.client.Close()
	_ = s.conn.Close()
}
