package dataproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"cloud.google.com/go/dataproc/v2/apiv1/dataprocpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

// clusterRequest is the CreateCluster request for sp: a standard cluster
// named sp.id with a lifecycle config that deletes it server-side if this
// engine never does (see the package comment).
func (e *Engine) clusterRequest(sp spec) *dataprocpb.CreateClusterRequest {
	disk := &dataprocpb.DiskConfig{BootDiskSizeGb: int32(e.cfg.DiskSizeGB)}
	gce := &dataprocpb.GceClusterConfig{ServiceAccount: e.cfg.ServiceAccount, SubnetworkUri: e.cfg.Subnetwork}
	if e.cfg.Zone != "" {
		gce.ZoneUri = e.cfg.Zone
	}
	idle := max(e.cfg.IdleDeleteTTL, minTTL)
	return &dataprocpb.CreateClusterRequest{
		ProjectId: e.cfg.Project,
		Region:    e.cfg.Region,
		Cluster: &dataprocpb.Cluster{
			ProjectId:   e.cfg.Project,
			ClusterName: sp.id,
			Labels:      sp.labels,
			Config: &dataprocpb.ClusterConfig{
				GceClusterConfig: gce,
				MasterConfig: &dataprocpb.InstanceGroupConfig{NumInstances: 1,
					MachineTypeUri: e.cfg.MasterMachineType, DiskConfig: disk},
				WorkerConfig: &dataprocpb.InstanceGroupConfig{NumInstances: int32(e.cfg.Workers),
					MachineTypeUri: e.cfg.WorkerMachineType, DiskConfig: disk},
				SoftwareConfig: &dataprocpb.SoftwareConfig{ImageVersion: e.cfg.ImageVersion},
				LifecycleConfig: &dataprocpb.LifecycleConfig{
					IdleDeleteTtl: durationpb.New(idle),
					Ttl:           &dataprocpb.LifecycleConfig_AutoDeleteTtl{AutoDeleteTtl: durationpb.New(e.cfg.Timeout + idle)},
				},
			},
		},
	}
}

// jobRequest is the SubmitJob request for attempt id on cluster c.
func (e *Engine) jobRequest(sp spec, id string, c *dataprocpb.Cluster) *dataprocpb.SubmitJobRequest {
	return &dataprocpb.SubmitJobRequest{
		ProjectId: e.cfg.Project,
		Region:    e.cfg.Region,
		Job: &dataprocpb.Job{
			Reference: &dataprocpb.JobReference{ProjectId: e.cfg.Project, JobId: id},
			Placement: &dataprocpb.JobPlacement{ClusterName: sp.id, ClusterUuid: c.GetClusterUuid()},
			TypeJob: &dataprocpb.Job_PysparkJob{PysparkJob: &dataprocpb.PySparkJob{
				MainPythonFileUri: e.cfg.ScriptURI,
				Args:              sp.args,
				Properties:        e.cfg.Properties,
			}},
			Labels: sp.labels,
		},
	}
}

func (e *Engine) jobName(id string) string {
	return "projects/" + e.cfg.Project + "/regions/" + e.cfg.Region + "/jobs/" + id
}

// runOnCluster finds the run's job (a redelivery) or creates the cluster and
// submits it, then follows the job. The cluster is deleted on every return
// but a transient one with ctx alive, which hands the work over to the next
// delivery. When ctx is cancelled, whatever the cause (shutdown, or
// eventing.ErrRunStopped when the run stopped), the job is cancelled and the
// cluster deleted; only a redelivery, which a stopped run does not get,
// starts another attempt.
func (e *Engine) runOnCluster(ctx, wctx context.Context, log *slog.Logger, sp spec) (res Result, err error) {
	active := "" // a job id submitted and not known to have ended
	defer func() { res, err = e.releaseCluster(ctx, log, sp.id, active, res, err) }()
	job, c, err := e.startJob(ctx, wctx, log, sp)
	if err != nil {
		return Result{}, err
	}
	return e.followJob(ctx, wctx, log, sp, job, c, &active)
}

// releaseCluster ends runOnCluster, which returns res and err: unless err is
// transient with ctx alive, it cancels the active job (if any and ctx is
// cancelled) and deletes the cluster, returning res and err amended if the
// deletion failed.
func (e *Engine) releaseCluster(ctx context.Context, log *slog.Logger, cluster, active string, res Result, err error) (Result, error) {
	if err != nil && !eventing.IsPermanent(err) && ctx.Err() == nil {
		log.InfoContext(ctx, "dataproc cluster kept for the next delivery", "cluster", cluster, "reason", err)
		return res, err
	}
	if active != "" && ctx.Err() != nil {
		e.cancelJob(ctx, log, active) // a redelivery, if any, starts a new attempt
	}
	if derr := e.deleteCluster(ctx, log, cluster); derr != nil {
		log.ErrorContext(ctx, "dataproc cluster delete failed", "cluster", cluster, "error", derr)
		switch {
		case err == nil:
			res, err = Result{}, fmt.Errorf("dataproc: the job succeeded but the cluster was not deleted (retrying): %w", derr)
		case eventing.IsPermanent(err) && ctx.Err() == nil:
			// Not permanent yet: a dead-lettered event would leave the
			// cluster to the idle TTL. The redelivery re-attaches to the
			// failed job, deletes the cluster and reports the failure.
			res, err = Result{}, fmt.Errorf("dataproc: %v; the cluster was not deleted (retrying): %w", err, derr)
		default:
			err = errors.Join(err, derr)
		}
	}
	return res, err
}

// startJob returns the run's current job and its cluster (nil if gone) on a
// redelivery; otherwise it creates the cluster and submits the next attempt.
func (e *Engine) startJob(ctx, wctx context.Context, log *slog.Logger, sp spec) (*dataprocpb.Job, *dataprocpb.Cluster, error) {
	attempt, job, err := e.currentJob(wctx, sp.id)
	if err != nil {
		if eventing.IsPermanent(err) {
			return nil, nil, err
		}
		return nil, nil, fail(ctx, wctx, "look up job "+sp.id, err)
	}
	if job != nil {
		log.InfoContext(ctx, "dataproc job found, attaching", "job", job.GetReference().GetJobId(), "state", job.GetStatus().GetState().String())
		c, err := e.clusters.GetCluster(wctx, &dataprocpb.GetClusterRequest{ProjectId: e.cfg.Project, Region: e.cfg.Region, ClusterName: sp.id})
		if isCode(err, codes.NotFound) {
			c = nil
		} else if err != nil {
			return nil, nil, fail(ctx, wctx, "get cluster "+sp.id, err)
		}
		return job, c, nil
	}
	c, err := e.ensureCluster(ctx, wctx, log, sp)
	if err != nil {
		return nil, nil, err
	}
	if job, err = e.submitJob(ctx, wctx, log, sp, jobID(sp.id, attempt), c); err != nil {
		return nil, nil, err
	}
	return job, c, nil
}

// submitJob submits job attempt id on cluster c, or gets it if it exists.
func (e *Engine) submitJob(ctx, wctx context.Context, log *slog.Logger, sp spec, id string, c *dataprocpb.Cluster) (*dataprocpb.Job, error) {
	job, err := e.jobs.SubmitJob(wctx, e.jobRequest(sp, id, c))
	switch {
	case isCode(err, codes.AlreadyExists):
		log.InfoContext(ctx, "dataproc job exists, attaching", "job", id)
		if job, err = e.jobs.GetJob(wctx, &dataprocpb.GetJobRequest{ProjectId: e.cfg.Project, Region: e.cfg.Region, JobId: id}); err != nil {
			return nil, fail(ctx, wctx, "get job "+id, err)
		}
	case err != nil:
		return nil, fail(ctx, wctx, "submit job "+id, err)
	default:
		log.InfoContext(ctx, "dataproc job submitted", "job", id, "cluster", sp.id, "script", e.cfg.ScriptURI)
	}
	return job, nil
}

// followJob polls job until it ends, times out (counted from the cluster's
// creation, or the job's if the cluster c is gone) or the delivery's budget
// ends. *active is the job's id while it is not known to have ended.
func (e *Engine) followJob(ctx, wctx context.Context, log *slog.Logger, sp spec, job *dataprocpb.Job, c *dataprocpb.Cluster,
	active *string) (Result, error) {
	id := job.GetReference().GetJobId()
	started := firstTime(job.GetStatusHistory(), job.GetStatus())
	if c != nil {
		started = firstTime(c.GetStatusHistory(), c.GetStatus())
	}
	for {
		st := job.GetStatus()
		*active = id
		switch st.GetState() {
		case dataprocpb.JobStatus_DONE:
			*active = ""
			log.InfoContext(ctx, "dataproc job done", "job", id)
			return Result{Training: sp.training, Scoring: sp.scoring, Workload: e.jobName(id)}, nil
		case dataprocpb.JobStatus_ERROR:
			*active = ""
			msg := st.GetDetails()
			if uri := job.GetDriverOutputResourceUri(); uri != "" {
				msg += " (driver output " + uri + ")"
			}
			return Result{}, eventing.Permanent(fmt.Errorf("dataproc: job %s failed: %s", id, msg))
		case dataprocpb.JobStatus_CANCELLED:
			*active = ""
			return Result{}, fmt.Errorf("dataproc: job %s was cancelled (%s); the next delivery starts a new attempt", id, st.GetDetails())
		}
		if !started.IsZero() && e.now().Sub(started) > e.cfg.Timeout {
			e.cancelJob(ctx, log, id)
			*active = ""
			return Result{}, eventing.Permanent(fmt.Errorf("dataproc: job %s still %s after the %s timeout", id, st.GetState(), e.cfg.Timeout))
		}
		if !sleep(wctx, e.cfg.PollInterval) {
			return Result{}, waiting(ctx, "job "+id+" is "+st.GetState().String())
		}
		var err error
		job, err = e.jobs.GetJob(wctx, &dataprocpb.GetJobRequest{ProjectId: e.cfg.Project, Region: e.cfg.Region, JobId: id})
		if err != nil {
			if budgetEnded(wctx, err) {
				return Result{}, waiting(ctx, "job "+id+" is "+st.GetState().String())
			}
			return Result{}, fail(ctx, wctx, "get job "+id, err)
		}
	}
}

// currentJob returns the run's latest job attempt that was not cancelled
// (nil if there is none yet, with the attempt number to submit).
func (e *Engine) currentJob(ctx context.Context, base string) (int, *dataprocpb.Job, error) {
	for n := 1; n <= maxAttempts; n++ {
		j, err := e.jobs.GetJob(ctx, &dataprocpb.GetJobRequest{ProjectId: e.cfg.Project, Region: e.cfg.Region, JobId: jobID(base, n)})
		switch {
		case isCode(err, codes.NotFound):
			return n, nil, nil
		case err != nil:
			return 0, nil, err
		case j.GetStatus().GetState() != dataprocpb.JobStatus_CANCELLED:
			return n, j, nil
		}
	}
	return 0, nil, eventing.Permanent(fmt.Errorf("dataproc: all %d job attempts of %s were cancelled", maxAttempts, base))
}

// ensureCluster creates the run's cluster unless it exists and waits until
// it is RUNNING.
func (e *Engine) ensureCluster(ctx, wctx context.Context, log *slog.Logger, sp spec) (*dataprocpb.Cluster, error) {
	get := &dataprocpb.GetClusterRequest{ProjectId: e.cfg.Project, Region: e.cfg.Region, ClusterName: sp.id}
	c, err := e.clusters.GetCluster(wctx, get)
	switch {
	case isCode(err, codes.NotFound):
		c = nil
		if _, err := e.clusters.CreateCluster(wctx, e.clusterRequest(sp)); isCode(err, codes.AlreadyExists) {
			log.InfoContext(ctx, "dataproc cluster exists, attaching", "cluster", sp.id)
		} else if err != nil {
			return nil, fail(ctx, wctx, "create cluster "+sp.id, err)
		} else {
			log.InfoContext(ctx, "dataproc cluster creating", "cluster", sp.id)
		}
	case err != nil:
		return nil, fail(ctx, wctx, "get cluster "+sp.id, err)
	}
	for {
		state := "CREATING (not visible yet)"
		if c != nil {
			st := c.GetStatus()
			state = st.GetState().String()
			switch st.GetState() {
			case dataprocpb.ClusterStatus_RUNNING:
				return c, nil
			case dataprocpb.ClusterStatus_DELETING:
				return nil, fmt.Errorf("dataproc: cluster %s is being deleted (an earlier attempt); retry when it is gone", sp.id)
			case dataprocpb.ClusterStatus_ERROR, dataprocpb.ClusterStatus_ERROR_DUE_TO_UPDATE,
				dataprocpb.ClusterStatus_STOPPING, dataprocpb.ClusterStatus_STOPPED:
				err := fmt.Errorf("dataproc: cluster %s is %s: %s; deleted, the next delivery creates it again", sp.id, state, st.GetDetail())
				if derr := e.deleteCluster(ctx, log, sp.id); derr != nil {
					err = errors.Join(err, derr)
				}
				return nil, err
			}
			if t := firstTime(c.GetStatusHistory(), st); !t.IsZero() && e.now().Sub(t) > e.cfg.Timeout {
				return nil, eventing.Permanent(fmt.Errorf("dataproc: cluster %s still %s after the %s timeout", sp.id, state, e.cfg.Timeout))
			}
		}
		if !sleep(wctx, e.cfg.PollInterval) {
			return nil, waiting(ctx, "cluster "+sp.id+" is "+state)
		}
		c, err = e.clusters.GetCluster(wctx, get)
		if isCode(err, codes.NotFound) {
			c = nil // created a moment ago
		} else if err != nil {
			if budgetEnded(wctx, err) {
				return nil, waiting(ctx, "cluster "+sp.id+" is "+state)
			}
			return nil, fail(ctx, wctx, "get cluster "+sp.id, err)
		}
	}
}

// cancelJob asks Dataproc to cancel a job, with a fresh bounded context;
// failures are logged (the cluster's deletion ends the job anyway).
func (e *Engine) cancelJob(ctx context.Context, log *slog.Logger, id string) {
	cctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	_, err := e.jobs.CancelJob(cctx, &dataprocpb.CancelJobRequest{ProjectId: e.cfg.Project, Region: e.cfg.Region, JobId: id})
	if err != nil && !isCode(err, codes.FailedPrecondition) && !isCode(err, codes.NotFound) {
		log.ErrorContext(ctx, "dataproc job cancel failed", "job", id, "error", err)
		return
	}
	log.InfoContext(ctx, "dataproc job cancelled", "job", id)
}

// deleteCluster deletes the run's cluster with a fresh context bounded by
// CleanupTimeout, so that it runs after the caller's context is cancelled.
// A cluster already gone or already being deleted is fine. It waits for the
// delete operation within the same bound: a failed operation is an error; one
// still going at the bound is not (Dataproc finishes it).
func (e *Engine) deleteCluster(ctx context.Context, log *slog.Logger, name string) error {
	dctx, cancel := e.cleanupContext(ctx)
	defer cancel()
	op, err := e.clusters.DeleteCluster(dctx, &dataprocpb.DeleteClusterRequest{ProjectId: e.cfg.Project, Region: e.cfg.Region, ClusterName: name})
	switch {
	case isCode(err, codes.NotFound):
		return nil
	case isCode(err, codes.FailedPrecondition):
		c, gerr := e.clusters.GetCluster(dctx, &dataprocpb.GetClusterRequest{ProjectId: e.cfg.Project, Region: e.cfg.Region, ClusterName: name})
		if isCode(gerr, codes.NotFound) || gerr == nil && c.GetStatus().GetState() == dataprocpb.ClusterStatus_DELETING {
			return nil
		}
		return fmt.Errorf("dataproc: delete cluster %s: %w", name, err)
	case err != nil:
		return fmt.Errorf("dataproc: delete cluster %s: %w", name, err)
	}
	log.InfoContext(ctx, "dataproc cluster deleting", "cluster", name, "operation", op.Name())
	interval := min(e.cfg.PollInterval, 2*time.Second)
	for !op.Done() {
		if err := op.Poll(dctx); err != nil {
			if dctx.Err() != nil {
				break
			}
			return fmt.Errorf("dataproc: delete cluster %s: operation %s: %w", name, op.Name(), err)
		}
		if op.Done() || !sleep(dctx, interval) {
			break
		}
	}
	if op.Done() {
		log.InfoContext(ctx, "dataproc cluster deleted", "cluster", name)
	} else {
		log.WarnContext(ctx, "dataproc cluster delete still in progress at the cleanup timeout; Dataproc completes it",
			"cluster", name, "operation", op.Name())
	}
	return nil
}

// firstTime is when a resource entered its first recorded state.
func firstTime[S interface{ GetStateStartTime() *timestamppb.Timestamp }](history []S, current S) time.Time {
	for _, s := range history {
		if t := s.GetStateStartTime(); t != nil {
			return t.AsTime()
		}
	}
	if t := current.GetStateStartTime(); t != nil {
		return t.AsTime()
	}
	return time.Time{}
}
