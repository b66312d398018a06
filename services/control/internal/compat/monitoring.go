package compat

import (
	"context"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
	"github.com/cmmsflow/cmmsflow/services/control/internal/ticks"
)

// Airflow's monitoring routes, public as in Airflow: load balancers and
// uptime checks call them without credentials.

type healthStatus struct {
	Status string `json:"status"`
}

type schedulerStatus struct {
	Status    string  `json:"status"`
	Heartbeat *string `json:"latest_scheduler_heartbeat"`
}

// getHealth reports the database, and the schedules as Airflow's scheduler:
// healthy unless an unpaused pipeline's latest tick (older than
// the missed-tick grace, and newer than its pause state's last change) has no
// run.
// The heartbeat is the newest scheduled run's creation.
func (s *Server) getHealth(ctx context.Context, w http.ResponseWriter, _ *http.Request) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	db, sched := "healthy", schedulerStatus{Status: "healthy"}
	beat, err := runstore.LastScheduled(ctx, s.pool)
	if err != nil {
		s.log.WarnContext(ctx, "health: database", "error", err)
		db, sched.Status = "unhealthy", "unhealthy"
	} else if missed, err := s.missedTicks(ctx); err != nil || len(missed) > 0 {
		sched.Status = "unhealthy"
		s.log.WarnContext(ctx, "health: scheduled runs missing", "ticks", missed, "error", err)
	}
	if beat != nil {
		sched.Heartbeat = strp(rfc3339(*beat))
	}
	writeJSON(w, http.StatusOK, map[string]any{"metadatabase": healthStatus{db}, "scheduler": sched})
	return nil
}

// missedTicks lists, per unpaused pipeline, its latest tick older than the
// grace period (and newer than its pause state's last change) when that tick
// has no run.
func (s *Server) missedTicks(ctx context.Context) ([]time.Time, error) {
	now := s.now()
	rows, err := s.pool.Query(ctx, `SELECT id, updated_at FROM pipelines WHERE NOT paused`)
	if err != nil {
		return nil, err
	}
	changed, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		ID string
		At time.Time
	}])
	if err != nil {
		return nil, err
	}
	var latest []time.Time
	for _, c := range changed {
		e, ok := s.table.Lookup(c.ID)
		if tick := e.Prev(now.Add(-ticks.DefaultGrace)); ok && !tick.IsZero() && tick.After(c.At) {
			latest = append(latest, tick)
		}
	}
	return ticks.Missing(ctx, s.pool, latest)
}

// getVersion answers with the build's module version and commit.
func (s *Server) getVersion(_ context.Context, w http.ResponseWriter, _ *http.Request) error {
	version, commit := "0.0.0-dev", (*string)(nil)
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				commit = strp(kv.Value)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": version, "git_version": commit})
	return nil
}
