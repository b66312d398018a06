// Package app wires the control service: schema migrations, the pipelines
// table, the run projection, the admin page and the control API — gRPC and
// its HTTP/JSON gateway on the service's one port.
package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/scheduler"
	"github.com/cmmsflow/cmmsflow/services/control/internal/admin"
	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
	"github.com/cmmsflow/cmmsflow/services/control/internal/compat"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
	"github.com/cmmsflow/cmmsflow/services/control/internal/steplogs"
	"github.com/cmmsflow/cmmsflow/services/control/internal/sweeper"
	"github.com/cmmsflow/cmmsflow/services/control/internal/ticks"
)

// Config is the control service's configuration, from the environment.
type Config struct {
	config.Common
	// MigrateOnStart applies the schema migrations before serving.
	MigrateOnStart bool `env:"MIGRATE_ON_START, default=true"`
	// CronTimeZone overrides the cron table's time zone.
	CronTimeZone string `env:"CRON_TIME_ZONE"`
	// APITokens lists the API's bearer tokens, hashed:
	// "<sha256-hex-of-token>:<role>[:<name>],…" with role admin or viewer
	// (`cmmsflow token` makes one). Empty: the API is disabled, every call 401.
	APITokens string `env:"API_TOKENS"`
	// APIUsers lists users who may log in with HTTP Basic on the
	// Airflow-compatible routes (/api/v1/…), as Airflow's clients do:
	// "<name>:<argon2id or bcrypt hash>:<role>,…" (`cmmsflow user` makes
	// one). The rest of the API stays bearer-only.
	APIUsers string `env:"API_USERS"`
	// TriggerRateLimit is each token's average TriggerPipeline calls per
	// second (0: unlimited), with bursts of TriggerBurst.
	TriggerRateLimit float64 `env:"TRIGGER_RATE_LIMIT, default=1"`
	TriggerBurst     int     `env:"TRIGGER_BURST, default=10"`
	// IDTokenAudience and IDTokenAccounts ("<email>:<role>,…") also admit
	// Google-signed ID tokens of those service accounts for that audience
	// (control's URL); both empty: off. IDTokenJWKSURL is where the signing
	// keys are fetched.
	IDTokenAudience string `env:"API_ID_TOKEN_AUDIENCE"`
	IDTokenAccounts string `env:"API_ID_TOKEN_ACCOUNTS"`
	IDTokenJWKSURL  string `env:"API_ID_TOKEN_JWKS_URL, default=https://www.googleapis.com/oauth2/v3/certs"`
	// RunTimeouts overrides the registry's per-pipeline run timeouts:
	// "<pipeline>=<duration>,…", "*" for every pipeline not named. A run
	// with no step finished for that long is failed by the stale-run sweeper.
	RunTimeouts string `env:"RUN_TIMEOUTS"`
	// StaleRunSweepInterval is how often the sweeper looks for stale runs.
	StaleRunSweepInterval time.Duration `env:"STALE_RUN_SWEEP_INTERVAL, default=1m"`
	// MissedTickGrace is how long after a cron tick its run may still come
	// before the tick counts as missed (alerted, and caught up for a
	// pipeline with catchup); MissedTickInterval is how often that is
	// checked.
	MissedTickGrace    time.Duration `env:"MISSED_TICK_GRACE, default=10m"`
	MissedTickInterval time.Duration `env:"MISSED_TICK_INTERVAL, default=1m"`
	// LogsBackend is where steps' own log lines are read (the Airflow task
	// log route, the admin page's run view): files (LogDir), cloudlogging,
	// off; empty: files when LOG_DIR is set, cloudlogging on Cloud Run
	// (K_SERVICE), else off.
	LogsBackend string `env:"LOGS_BACKEND"`
	// LogDir holds the services' JSON log files, <service>.log (the local
	// stack sets it).
	LogDir string `env:"LOG_DIR"`
}

// Validate implements service.Config.
func (c *Config) Validate() error {
	switch {
	case c.TriggerRateLimit < 0 || c.TriggerBurst < 1:
		return fmt.Errorf("control: TRIGGER_RATE_LIMIT %v and TRIGGER_BURST %d: want a rate ≥ 0 and a burst ≥ 1", c.TriggerRateLimit, c.TriggerBurst)
	case c.StaleRunSweepInterval <= 0 || c.MissedTickGrace <= 0 || c.MissedTickInterval <= 0:
		return errors.New("control: STALE_RUN_SWEEP_INTERVAL, MISSED_TICK_GRACE and MISSED_TICK_INTERVAL must be positive")
	}
	if c.CronTimeZone != "" {
		if _, err := time.LoadLocation(c.CronTimeZone); err != nil {
			return fmt.Errorf("control: CRON_TIME_ZONE: %w", err)
		}
	}
	return nil
}

// Register is control's service shape: Start, with the Control it returns
// closed when s stops.
func Register(ctx context.Context, s *service.Service, cfg Config) error {
	_, err := Start(ctx, s, cfg)
	return err
}

// Start adds control's handlers, pages and API to s: the projection, the
// admin page and the API (gRPC in front of s.Mux on the one port, closed
// when s stops). Tests close the returned Control themselves.
func Start(ctx context.Context, s *service.Service, cfg Config) (*Control, error) {
	if cfg.MigrateOnStart {
		if err := db.Migrate(ctx, s.Pool, s.Log); errors.Is(err, db.ErrMigrationDenied) {
			return nil, fmt.Errorf("MIGRATE_ON_START=true: %w; on a login of its own control starts with MIGRATE_ON_START=false, once 'cmmsflow migrate' has run as the owner", err)
		} else if err != nil {
			return nil, err
		}
	}
	if err := projection.SyncPipelines(ctx, s.Pool); err != nil {
		return nil, err
	}
	table, err := scheduler.Load()
	if err != nil {
		return nil, err
	}
	if cfg.CronTimeZone != "" {
		if table, err = table.InZone(cfg.CronTimeZone); err != nil {
			return nil, err
		}
	}
	timeouts, err := sweeper.ParseTimeouts(cfg.RunTimeouts)
	if err != nil {
		return nil, fmt.Errorf("RUN_TIMEOUTS: %w", err)
	}
	tokens, err := auth.ParseTokens(cfg.APITokens)
	if err != nil {
		return nil, err
	}
	if err := tokens.AcceptIDTokens(auth.IDTokenConfig{
		Audience: cfg.IDTokenAudience, Accounts: cfg.IDTokenAccounts, JWKSURL: cfg.IDTokenJWKSURL,
		Log: s.Log.With("component", "api-id-tokens"),
	}); err != nil {
		return nil, err
	}
	if err := tokens.AcceptUsers(cfg.APIUsers); err != nil {
		return nil, err
	}
	if tokens.Len() == 0 && tokens.IDTokenAccounts() == 0 && tokens.Users() == 0 {
		s.Log.Warn("API disabled: API_TOKENS is empty, every API call is refused with 401 (make a token with `cmmsflow token`)")
	} else {
		s.Log.Info("API enabled", "tokens", tokens.Len(), "id_token_accounts", tokens.IDTokenAccounts(), "basic_auth_users", tokens.Users())
	}
	logs, closeLogs, err := steplogs.Open(ctx, steplogs.Config{
		Backend: cfg.LogsBackend, Dir: cfg.LogDir, Project: cfg.ProjectID, OnCloudRun: os.Getenv("K_SERVICE") != "",
	})
	if err != nil {
		return nil, err
	}
	s.OnStop(func() { _ = closeLogs() })
	if logs != nil {
		s.Log.Info("step logs", "backend", logs.Backend())
	}
	metrics, err := newMetrics(s)
	if err != nil {
		return nil, err
	}
	starter := projection.NewStarter(table.MaxActiveRuns)
	proj := projection.New(TickFunc(table), starter, s.Log)
	proj.Instrument(metrics)
	proj.Register(s.Router)
	adminOpt := admin.OptionsFromEnv()
	adminOpt.Logs = logs
	admin.NewWithOptions(s.Pool, tokens, s.Log, adminOpt).Register(s.Mux)
	guard := auth.NewGuard(tokens, auth.Policy, auth.RateLimit{Rate: cfg.TriggerRateLimit, Burst: cfg.TriggerBurst}, s.Log)
	compat.New(s.Pool, table, s.Relay, guard, s.Log).WithLogs(logs).Instrument(metrics).Register(s.Mux)
	c, err := newControl(ctx, s, table, guard, metrics)
	if err != nil {
		return nil, err
	}
	s.Handler = c.Handler(s.Mux)
	s.OnStop(c.Close)
	startLoops(s, cfg, table, timeouts, starter, metrics)
	return c, nil
}

// newMetrics creates control's run metrics on the service's meter provider
// (a no-op one when METRICS=off); nil when s has no telemetry.
func newMetrics(s *service.Service) (*runstore.Metrics, error) {
	if s.Telemetry == nil {
		return nil, nil
	}
	m, err := runstore.NewMetrics(s.Telemetry.MeterProvider, s.Pool)
	if err != nil {
		return nil, fmt.Errorf("run metrics: %w", err)
	}
	return m, nil
}

// startLoops starts the stale-run sweeper and the missed-tick watcher,
// which run until the service stops.
func startLoops(s *service.Service, cfg Config, table scheduler.Table, timeouts map[string]time.Duration,
	starter *projection.Starter, metrics *runstore.Metrics) {
	sweep := sweeper.New(s.Pool, timeouts, starter, s.Relay, s.Log.With("component", "stale-run-sweeper"))
	sweep.Instrument(metrics)
	s.Background(func(ctx context.Context) { sweep.Run(ctx, cfg.StaleRunSweepInterval) })
	watch := ticks.NewWatcher(s.Pool, table, starter, s.Relay, cfg.MissedTickGrace, s.Log.With("component", "missed-ticks"))
	watch.Instrument(metrics)
	s.Background(func(ctx context.Context) { watch.Run(ctx, cfg.MissedTickInterval) })
}

// TickFunc names scheduled runs after the cron table's ticks.
func TickFunc(table scheduler.Table) projection.TickFunc {
	return func(pipeline string, t time.Time) (time.Time, error) {
		e, ok := table.Lookup(pipeline)
		if !ok {
			return time.Time{}, fmt.Errorf("pipeline %q has no schedule", pipeline)
		}
		return e.Prev(t), nil
	}
}
