package dataproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/dataproc/v2/apiv1/dataprocpb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

// minTTL is the shortest TTL Dataproc accepts for batches and clusters.
const minTTL = 10 * time.Minute

func (e *Engine) parent() string {
	return "projects/" + e.cfg.Project + "/locations/" + e.cfg.Region
}

// batchRequest is the CreateBatch request for sp.
func (e *Engine) batchRequest(sp spec) *dataprocpb.CreateBatchRequest {
	exec := &dataprocpb.ExecutionConfig{
		ServiceAccount: e.cfg.ServiceAccount,
		Ttl:            durationpb.New(max(e.cfg.Timeout, minTTL)),
	}
	if e.cfg.Subnetwork != "" {
		exec.Network = &dataprocpb.ExecutionConfig_SubnetworkUri{SubnetworkUri: e.cfg.Subnetwork}
	}
	return &dataprocpb.CreateBatchRequest{
		Parent:  e.parent(),
		BatchId: sp.id,
		Batch: &dataprocpb.Batch{
			BatchConfig: &dataprocpb.Batch_PysparkBatch{PysparkBatch: &dataprocpb.PySparkBatch{
				MainPythonFileUri: e.cfg.ScriptURI,
				Args:              sp.args,
			}},
			RuntimeConfig:     &dataprocpb.RuntimeConfig{Version: e.cfg.RuntimeVersion, Properties: e.cfg.Properties},
			EnvironmentConfig: &dataprocpb.EnvironmentConfig{ExecutionConfig: exec},
			Labels:            sp.labels,
		},
	}
}

// runBatch creates the run's batch unless it exists, then follows it until
// it ends, the budget ends, or ctx is cancelled. On cancellation the batch
// keeps running for the next delivery, unless the cause is
// eventing.ErrRunStopped: no delivery will come back for a stopped run, so
// the batch is cancelled.
func (e *Engine) runBatch(ctx, wctx context.Context, log *slog.Logger, sp spec) (Result, error) {
	name := e.parent() + "/batches/" + sp.id
	res, err := e.followBatch(ctx, wctx, log, sp, name)
	if err != nil && !eventing.IsPermanent(err) && errors.Is(context.Cause(ctx), eventing.ErrRunStopped) {
		if cerr := e.stopBatch(ctx, log, name); cerr != nil {
			err = fmt.Errorf("%w (cancel failed: %v)", err, cerr)
		}
	}
	return res, err
}

// followBatch creates the batch unless it exists and follows it, leaving it
// running when ctx is cancelled.
func (e *Engine) followBatch(ctx, wctx context.Context, log *slog.Logger, sp spec, name string) (Result, error) {
	b, err := e.batches.GetBatch(wctx, &dataprocpb.GetBatchRequest{Name: name})
	switch {
	case isCode(err, codes.NotFound):
		b = nil
		if _, err := e.batches.CreateBatch(wctx, e.batchRequest(sp)); isCode(err, codes.AlreadyExists) {
			log.InfoContext(ctx, "dataproc batch exists, attaching", "batch", name)
		} else if err != nil {
			return Result{}, fail(ctx, wctx, "create batch "+name, err)
		} else {
			log.InfoContext(ctx, "dataproc batch created", "batch", name, "script", e.cfg.ScriptURI)
		}
	case err != nil:
		return Result{}, fail(ctx, wctx, "get batch "+name, err)
	default:
		log.InfoContext(ctx, "dataproc batch found, attaching", "batch", name, "state", b.GetState().String())
	}

	for {
		state := "PENDING (not visible yet)"
		if b != nil {
			state = b.GetState().String()
			switch b.GetState() {
			case dataprocpb.Batch_SUCCEEDED:
				log.InfoContext(ctx, "dataproc batch succeeded", "batch", name)
				return Result{Training: sp.training, Scoring: sp.scoring, Workload: name}, nil
			case dataprocpb.Batch_FAILED, dataprocpb.Batch_CANCELLED:
				return Result{}, eventing.Permanent(fmt.Errorf("dataproc: batch %s %s: %s", name, state, b.GetStateMessage()))
			}
			if created := b.GetCreateTime(); created != nil && e.now().Sub(created.AsTime()) > e.cfg.Timeout {
				return Result{}, e.batchTimedOut(ctx, log, b)
			}
		}
		if !sleep(wctx, e.cfg.PollInterval) {
			return Result{}, waiting(ctx, "batch "+name+" is "+state)
		}
		b, err = e.batches.GetBatch(wctx, &dataprocpb.GetBatchRequest{Name: name})
		if isCode(err, codes.NotFound) {
			b = nil // created a moment ago
		} else if err != nil {
			if budgetEnded(wctx, err) {
				return Result{}, waiting(ctx, "batch "+name+" is "+state)
			}
			return Result{}, fail(ctx, wctx, "get batch "+name, err)
		}
	}
}

// batchTimedOut cancels the batch (best effort) and returns the permanent
// timeout error.
func (e *Engine) batchTimedOut(ctx context.Context, log *slog.Logger, b *dataprocpb.Batch) error {
	err := fmt.Errorf("dataproc: batch %s still %s after the %s timeout", b.GetName(), b.GetState(), e.cfg.Timeout)
	cctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	if cerr := e.cancelBatch(cctx, log, b); cerr != nil {
		err = fmt.Errorf("%w (cancel failed: %v)", err, cerr)
	}
	return eventing.Permanent(err)
}

// stopBatch cancels the named batch unless it has ended or does not exist,
// with a fresh context (see cleanupContext): it looks the batch up again, as
// the caller may not have seen it yet, for its operation.
func (e *Engine) stopBatch(ctx context.Context, log *slog.Logger, name string) error {
	cctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	b, err := e.batches.GetBatch(cctx, &dataprocpb.GetBatchRequest{Name: name})
	switch {
	case isCode(err, codes.NotFound):
		return nil
	case err != nil:
		log.ErrorContext(ctx, "dataproc batch cancel failed", "batch", name, "error", err)
		return err
	case batchEnded(b.GetState()):
		return nil
	}
	return e.cancelBatch(cctx, log, b)
}

// cancelBatch cancels b through its operation, the way Dataproc cancels
// batches.
func (e *Engine) cancelBatch(ctx context.Context, log *slog.Logger, b *dataprocpb.Batch) error {
	op := b.GetOperation()
	if op == "" {
		return nil
	}
	if err := e.batches.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: op}); err != nil {
		log.ErrorContext(ctx, "dataproc batch cancel failed", "batch", b.GetName(), "error", err)
		return err
	}
	log.InfoContext(ctx, "dataproc batch cancelled", "batch", b.GetName(), "operation", op)
	return nil
}

func batchEnded(st dataprocpb.Batch_State) bool {
	return st == dataprocpb.Batch_SUCCEEDED || st == dataprocpb.Batch_FAILED || st == dataprocpb.Batch_CANCELLED
}
