// Package app wires the control service: schema migrations, the pipelines
// table, the run projection and the admin page.
package app

import (
	"context"
	"fmt"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/scheduler"
	"github.com/cmmsflow/cmmsflow/services/control/internal/admin"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
)

// Config is the control service's configuration, from the environment.
type Config struct {
	config.Common
	// MigrateOnStart applies the schema migrations before serving.
	MigrateOnStart bool `env:"MIGRATE_ON_START, default=true"`
	// CronTimeZone overrides the cron table's time zone.
	CronTimeZone string `env:"CRON_TIME_ZONE"`
}

// Register adds control's handlers and pages to s.
func Register(ctx context.Context, s *service.Service, cfg Config) error {
	if cfg.MigrateOnStart {
		if err := db.Migrate(ctx, s.Pool, s.Log); err != nil {
			return err
		}
	}
	if err := projection.SyncPipelines(ctx, s.Pool); err != nil {
		return err
	}
	table, err := scheduler.Load()
	if err != nil {
		return err
	}
	if cfg.CronTimeZone != "" {
		if table, err = table.InZone(cfg.CronTimeZone); err != nil {
			return err
		}
	}
	projection.New(TickFunc(table), s.Log).Register(s.Router)
	admin.New(s.Pool, table, s.Log).Register(s.Mux)
	return nil
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
