package deployer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/features"
	"github.com/cmmsflow/cmmsflow/libs/monitor"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// retrainSource is the source of the pipeline.triggered events the
// monitoring emits to retrain.
const retrainSource = "monitoring"

// retrainRunID is the etl_ml_training run the monitoring of snapshot date
// triggers.
func retrainRunID(snapshot string) string { return "retrain__" + snapshot }

// retrain is a monitoring run's retraining decision: why retraining is due
// ("" when it is not) and whether this run triggers it.
type retrain struct {
	reason   string
	trigger  bool
	model    string
	snapshot string
	cooldown int
}

// retrainDue decides on retraining: due when the champion's drift is at
// the alert level or its realized ROC AUC below the decay threshold;
// triggered when AUTO_RETRAIN is on and no other run triggered one within
// the cooldown.
func (h *Handler) retrainDue(ctx context.Context, runID string, s served, perf *measured) (retrain, error) {
	var why []string
	if s.champion.drift == monitor.LevelAlert {
		name, v := monitor.MaxPSI(s.champion.psi)
		why = append(why, fmt.Sprintf("drift: PSI %.3f of %s ≥ %v", v, name, h.mon.Drift.Alert))
	}
	if perf != nil && perf.perf.HasAUC && perf.perf.ROCAUC < h.mon.Retrain.DecayAUCBelow {
		why = append(why, fmt.Sprintf("decay: realized ROC AUC %.3f < %v", perf.perf.ROCAUC, h.mon.Retrain.DecayAUCBelow))
	}
	rt := retrain{reason: strings.Join(why, "; "), model: s.champion.version, snapshot: s.fleet.snapshot, cooldown: h.mon.Retrain.CooldownDays}
	if rt.reason == "" || !h.mon.Retrain.Auto {
		return rt, nil
	}
	last, err := rt.recent(ctx, h.pool, runID)
	if err != nil {
		return retrain{}, err
	}
	if last != "" {
		rt.reason += fmt.Sprintf(" (not triggered: %s triggered already, within the %d-day cooldown or for this date)", last, rt.cooldown)
		return rt, nil
	}
	rt.trigger = true
	return rt, nil
}

// recent is the retrain run another monitoring run than runID triggered
// within the cooldown, or for the same snapshot date, or "".
func (rt retrain) recent(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, runID string) (string, error) {
	var last string
	err := q.QueryRow(ctx, `SELECT retrain_run_id FROM model_retrains
		WHERE monitor_run_id <> $1 AND (triggered_at > now() - make_interval(days => $2) OR retrain_run_id = $3)
		ORDER BY triggered_at DESC LIMIT 1`, runID, rt.cooldown, retrainRunID(rt.snapshot)).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read recent retrains: %w", err)
	}
	return last, nil
}

// commit records the retrain and emits its pipeline.triggered through the
// outbox. The table is locked so that racing monitoring runs trigger one
// retrain: a run that finds another's within the cooldown fails (transient)
// and its retry reports no trigger. A redelivery of the run that triggered
// emits nothing more.
func (rt retrain) commit(ctx context.Context, tx pgx.Tx, ev eventing.Event) error {
	if !rt.trigger {
		return nil
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE model_retrains IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock model_retrains: %w", err)
	}
	last, err := rt.recent(ctx, tx, ev.RunID)
	if err != nil {
		return err
	}
	if last != "" {
		return fmt.Errorf("retrain %s was triggered while this run worked: retrying reports it", last)
	}
	runID := retrainRunID(rt.snapshot)
	tag, err := tx.Exec(ctx, `INSERT INTO model_retrains (retrain_run_id, monitor_run_id, model_version, reason)
		VALUES ($1, $2, $3, $4) ON CONFLICT (monitor_run_id) DO NOTHING`, runID, ev.RunID, rt.model, rt.reason)
	if err != nil {
		return fmt.Errorf("record retrain %s: %w", runID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil // this run's, recorded and emitted when it was performed before
	}
	return emitRetrain(ctx, tx, ev, runID, rt.snapshot)
}

// emitRetrain emits the pipeline.triggered of an etl_ml_training run for
// snapshot through the outbox.
func emitRetrain(ctx context.Context, tx pgx.Tx, ev eventing.Event, runID, snapshot string) error {
	day, err := time.Parse(features.DateLayout, snapshot)
	if err != nil {
		return eventing.Permanent(fmt.Errorf("snapshot date %q: %w", snapshot, err))
	}
	trig, err := eventing.New(events.PipelineTriggered, events.Source(events.Deployer), runID, events.ETLMLTraining, ev.TraceParent,
		&eventsv1.PipelineTriggered{Source: retrainSource, LogicalDate: timestamppb.New(day), Conf: map[string]string{"snapshot_date": snapshot}})
	if err != nil {
		return err
	}
	return eventing.Emit(ctx, tx, trig)
}
