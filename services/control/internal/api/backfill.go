package api

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/scheduler"
	"github.com/cmmsflow/cmmsflow/services/control/internal/projection"
	"github.com/cmmsflow/cmmsflow/services/control/internal/runstore"
	"github.com/cmmsflow/cmmsflow/services/control/internal/ticks"
)

// MaxBackfillTicks bounds one backfill: a year of daily ticks.
const MaxBackfillTicks = 366

// backfillSource is the runs.source of a backfilled run (Airflow's run type
// backfill); its id is the tick's scheduled__<tick>, so the tick's kick,
// the missed-tick watcher and another backfill all find it.
const backfillSource = "backfill"

// BackfillPipeline creates the scheduled runs of a range of cron ticks.
func (s *Server) BackfillPipeline(ctx context.Context, req *controlv1.BackfillPipelineRequest) (*controlv1.BackfillPipelineResponse, error) {
	pl, err := lookupPipeline(req.GetPipeline())
	if err != nil {
		return nil, err
	}
	e, ok := s.table.Lookup(pl.ID)
	if !ok {
		return nil, errorf(codes.FailedPrecondition, "pipeline %s has no schedule", pl.ID)
	}
	all, err := backfillTicks(e, req.GetFromDate(), req.GetToDate())
	if err != nil {
		return nil, err
	}
	resp := &controlv1.BackfillPipelineResponse{}
	for _, t := range all {
		resp.Ticks = append(resp.Ticks, timestamppb.New(t))
	}
	if req.GetDryRun() {
		missing, err := ticks.Missing(ctx, s.pool, all)
		resp.Existing = int32(len(all) - len(missing))
		return resp, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		resp.CreatedRunIds = resp.CreatedRunIds[:0]
		if err := runstore.LockPipeline(ctx, tx, pl.ID); err != nil {
			return err
		}
		for _, t := range all {
			created, err := ticks.QueueRun(ctx, tx, pl.ID, t, backfillSource)
			if err != nil {
				return err
			}
			if created {
				resp.CreatedRunIds = append(resp.CreatedRunIds, projection.RunIDFor("scheduled", t))
			}
		}
		_, err := s.starter.StartQueued(ctx, tx, pl)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp.Existing = int32(len(all) - len(resp.CreatedRunIds))
	s.relay.Nudge()
	s.log.InfoContext(ctx, "backfill", "pipeline", pl.ID, "from", req.GetFromDate(), "to", req.GetToDate(),
		"ticks", len(all), "created", len(resp.CreatedRunIds), "by", caller(ctx))
	return resp, nil
}

// backfillTicks lists e's ticks from the first day's start to the last day's
// end in e's time zone, refusing a bad or too long range.
func backfillTicks(e scheduler.Entry, fromDate, toDate string) ([]time.Time, error) {
	from, err := time.ParseInLocation(time.DateOnly, fromDate, e.Location())
	if err != nil {
		return nil, invalid("from_date: %q is not a date YYYY-MM-DD", fromDate)
	}
	to, err := time.ParseInLocation(time.DateOnly, toDate, e.Location())
	if err != nil {
		return nil, invalid("to_date: %q is not a date YYYY-MM-DD", toDate)
	}
	if to.Before(from) {
		return nil, invalid("to_date: %s is before from_date %s", toDate, fromDate)
	}
	end := to.AddDate(0, 0, 1)
	all := ticks.Between(e, from.Add(-time.Nanosecond), end.Add(-time.Nanosecond), MaxBackfillTicks+1)
	if len(all) > MaxBackfillTicks {
		return nil, invalid("from_date, to_date: the range holds more than %d ticks of %q; backfill it in parts", MaxBackfillTicks, e.Schedule)
	}
	return all, nil
}
