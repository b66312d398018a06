package compat

import (
	"context"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
)

// Airflow's monitoring routes, public as in Airflow: load balancers and
// uptime checks call them without credentials.

// missedTickGrace is how long after a cron tick its scheduled run may still
// be on its way (Cloud Scheduler's retries, push delivery) before /health
// calls the scheduler unhealthy.
const missedTickGrace = 10 * time.Minute

type healthStatus struct {
	Status string `json:"status"`
}

type schedulerStatus struct {
	Status    string  `json:"status"`
	Heartbeat *string `json:"latest_scheduler_heartbeat"`
}

// getHealth reports the database, and the schedules as Airflow's scheduler:
// healthy unless an unpaused pipeline's latest tick (older than
// missedTickGrace, and newer than its pause state's last change) has no run.
// The heartbeat is the newest scheduled run's creation.
func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	db, sched := "healthy", schedulerStatus{Status: "healthy"}
	var beat *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(queued_at) FROM runs WHERE source = 'scheduled'`).Scan(&beat); err != nil {
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
}

// missedTicks lists the scheduled run ids that should exist by now and don't.
func (s *Server) missedTicks(ctx context.Context) ([]string, error) {
	now := s.now()
	rows, err := s.pool.Query(ctx, `SELECT id, paused, updated_at FROM pipelines`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var want []string
	for rows.Next() {
		var (
			id      string
			paused  bool
			changed time.Time
		)
		if err := rows.Scan(&id, &paused, &changed); err != nil {
			return nil, err
		}
		e, ok := s.table.Lookup(id)
		if tick := e.Prev(now.Add(-missedTickGrace)); ok && !paused && !tick.IsZero() && tick.After(changed) {
			want = append(want, projection.RunIDFor("scheduled", tick))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var missed []string
	err = s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}') FROM unnest($1::text[]) AS w(id)
		WHERE NOT EXISTS (SELECT 1 FROM runs WHERE run_id = w.id)`, want).Scan(&missed)
	return missed, err
}

// getVersion answers with the build's module version and commit.
func (s *Server) getVersion(w http.ResponseWriter, _ *http.Request) {
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
}
