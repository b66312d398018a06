// Package extractor is the extractor service's step of the etl_ml_training
// pipeline: on run-started it streams the raw tables to
// runs/<run_id>/raw/<table>.parquet (package extract), emits raw.extracted
// for featurejob and reports rows and bytes per table with the step.
package extractor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/service"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/extractor/internal/extract"
)

// Config is the extractor service's configuration, from the environment.
type Config struct {
	config.Common
}

// Validate implements service.Config: the extractor has no settings of its
// own.
func (c *Config) Validate() error { return nil }

// Register wires the step into s: it reads through s's pool and writes to
// s's bucket.
func Register(ctx context.Context, s *service.Service, cfg Config) error {
	store, err := s.Bucket(ctx)
	if err != nil {
		return err
	}
	h, err := New(s.Pool, store)
	if err != nil {
		return err
	}
	h.Register(s.Router)
	return nil
}

// ConfSnapshotDate is the run conf key that overrides the snapshot date
// (YYYY-MM-DD); by default it is the run's logical date (UTC calendar day).
const ConfSnapshotDate = "snapshot_date"

// Handler runs the step.
type Handler struct {
	pool  *pgxpool.Pool // the service's pool: the extraction reads in PoolSize transactions of its own
	store *objstore.Store
}

// New returns the handler. The extraction reads through pool in PoolSize
// transactions at once while the router claims, renews and completes the
// step through it too, so pool must allow PoolSize + 2 connections
// (pool_max_conns in DATABASE_URL).
func New(pool *pgxpool.Pool, store *objstore.Store) (*Handler, error) {
	if pool == nil || store == nil {
		return nil, errors.New("extractor: a database pool and a bucket are required")
	}
	if n := pool.Config().MaxConns; n < int32(PoolSize+2) {
		return nil, fmt.Errorf("extractor: the database pool allows %d connections, needs %d (pool_max_conns in DATABASE_URL)", n, PoolSize+2)
	}
	return &Handler{pool: pool, store: store}, nil
}

// PoolSize is the number of connections an extraction holds at once.
var PoolSize = len(extract.Tables) + 1

// Register adds the step to the service's router: run-started in,
// raw-extracted out.
func (h *Handler) Register(r *eventing.Router) {
	r.HandleStep(events.RunStarted, events.RawExtracted, h.Step)
}

// RawPrefix is where a run's raw tables go.
func RawPrefix(runID string) string { return "runs/" + runID + "/raw/" }

// Step extracts the tables; its output is the raw.extracted payload.
func (h *Handler) Step(ctx context.Context, ev eventing.Event) (eventing.StepResult, error) {
	var p eventsv1.RunStarted
	if err := ev.Decode(&p); err != nil {
		return eventing.StepResult{}, err
	}
	snapshot, err := SnapshotDate(&p)
	if err != nil {
		return eventing.StepResult{}, eventing.Permanent(err)
	}
	started := time.Now()
	objs, err := extract.Run(ctx, h.pool, h.store, RawPrefix(ev.RunID), extract.Tables)
	if err != nil {
		return eventing.StepResult{}, err
	}
	took := time.Since(started)
	payload := &eventsv1.RawExtracted{SnapshotDate: snapshot}
	figures := map[string]float64{"seconds": took.Seconds()}
	var parts []string
	var rows, bytes int64
	for _, o := range objs {
		payload.Objects = append(payload.Objects, &eventsv1.StoredObject{
			Name: o.Name, Uri: o.URI, Rows: o.Rows, Bytes: o.Bytes, ContentType: "application/vnd.apache.parquet",
		})
		figures[o.Table+"_rows"] = float64(o.Rows)
		figures[o.Table+"_bytes"] = float64(o.Bytes)
		rows += o.Rows
		bytes += o.Bytes
		parts = append(parts, fmt.Sprintf("%s %d", o.Table, o.Rows))
	}
	figures["rows"], figures["bytes"] = float64(rows), float64(bytes)
	if took > 0 {
		figures["rows_per_second"] = float64(rows) / took.Seconds()
	}
	summary := fmt.Sprintf("Extracted %s rows (%s) as of %s, %.1f MB of Parquet in %s.",
		fmtInt(rows), strings.Join(parts, ", "), snapshot, float64(bytes)/1e6, took.Round(time.Millisecond))
	return eventing.StepResult{Output: payload, Figures: figures, Summary: summary}, nil
}

// SnapshotDate is the run's snapshot date: conf snapshot_date when given,
// else the logical date's UTC calendar day.
func SnapshotDate(p *eventsv1.RunStarted) (string, error) {
	if s, ok := p.GetConf()[ConfSnapshotDate]; ok {
		s = strings.TrimSpace(s)
		if _, err := time.Parse(features.DateLayout, s); err != nil {
			return "", fmt.Errorf("conf %s %q: want a date YYYY-MM-DD", ConfSnapshotDate, s)
		}
		return s, nil
	}
	if p.GetLogicalDate() == nil {
		return "", errors.New("run-started without a logical_date")
	}
	if err := p.GetLogicalDate().CheckValid(); err != nil {
		return "", fmt.Errorf("logical_date: %w", err)
	}
	return p.GetLogicalDate().AsTime().UTC().Format(features.DateLayout), nil
}

func fmtInt(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
