// Package dataproc is featurejob's Dataproc engine: it runs the repository's
// PySpark feature script (spark/features.py, uploaded by the caller under
// ScriptObject) over runs/<run_id>/raw/ and has it write
// runs/<run_id>/features/, either as a Dataproc Serverless batch
// (ModeServerless, the default) or as a job on an ephemeral cluster
// (ModeCluster) that is deleted whatever happens.
//
// The engine has its own Request and Result types so that it does not import
// the featurejob engine interface; the service adapts it in a few lines:
//
//	func (a dataprocEngine) Build(ctx context.Context, in engine.Inputs) (engine.Outputs, error) {
//		r, err := a.Engine.Build(ctx, dataproc.Request{RunID: in.RunID, SnapshotDate: in.SnapshotDate,
//			Raw: in.Raw, OutPrefix: in.OutPrefix,
//			LookbackDays: in.LookbackDays, LabelWindowDays: in.LabelWindowDays})
//		return engine.Outputs{Training: r.Training, Scoring: r.Scoring}, err
//	}
//
// # Waiting without holding the push request
//
// A Spark run takes longer than a push request may stay open: Pub/Sub
// redelivers a push that has not answered within the subscription's ack
// deadline (600 s here), and Cloud Run stops an instance with 10 s notice.
// Build therefore never waits for more than a per-delivery budget: Config.Wait
// (default 8 min), shortened to end CleanupTimeout before the caller's context
// deadline (the handler timeout, 9 min) when that comes first. If the work is
// still going when the budget ends, Build returns an error wrapping
// ErrStillRunning. It is transient, so the handler answers non-2xx and Pub/Sub
// redelivers the event after its retry backoff; the redelivery calls Build
// again, which re-attaches to the same work, because every Dataproc resource
// is named by a pure function of the run id (ResourceID): the batch id, the
// cluster name and the job id. Re-attaching either waits another budget or
// collects the outcome that arrived meanwhile. Nothing is stored on our side,
// so any instance can take the redelivery, and a duplicate delivery running
// concurrently meets AlreadyExists and attaches too.
//
// The alternative, returning 2xx at once and learning of completion from a
// Dataproc notification, needs a Cloud Logging sink or Eventarc audit-log
// trigger and a second entry point that can fail independently; redelivery
// reuses the machinery every handler already has (retry, dead-lettering,
// step status), at the cost of the instance staying busy while it waits.
//
// Config.Timeout bounds a run across deliveries, measured on Dataproc's clock
// (the batch's or the cluster's creation time): past it the batch's operation
// or the job is cancelled, the cluster deleted, and Build returns a permanent
// error. Keep Timeout below MaxDeliveryAttempts × Wait (10 × 8 min), so that
// the engine's own timeout fires before Pub/Sub runs out of deliveries.
//
// # Outcomes
//
//   - Succeeded: Result names the training and scoring objects the script
//     wrote under the request's OutPrefix (features.TrainingObject and
//     features.ScoringObject); the caller stats them for rows and bytes.
//   - Batch FAILED or CANCELLED, job ERROR: a permanent error
//     (eventing.Permanent) carrying Dataproc's state message, so the event is
//     dead-lettered and the step marked failed with that reason.
//   - Invalid request (no raw objects, bad snapshot date) or a request Dataproc
//     rejects (InvalidArgument, PermissionDenied): permanent.
//   - Still running, or a status read that failed transiently: transient.
//   - The caller's context cancelled (shutdown, client gone): transient, the
//     error wraps the context's cause.
//   - The caller's context cancelled with cause eventing.ErrRunStopped (the
//     router stops a step whose run is no longer active): the work is stopped
//     — the batch cancelled, or the job cancelled and the cluster deleted —
//     and the error wraps ErrRunStopped. It is transient like any other
//     cancellation, but the router acks the delivery (outcome Cancelled), so
//     no redelivery follows and no further attempt is made.
//
// # The ephemeral cluster is always deleted
//
// In ModeCluster, a deferred delete with a fresh context (detached from the
// caller's cancellation, bounded by CleanupTimeout) runs on every return
// except a transient one while the caller's context is alive — that is, only
// the deliberate hand-over to the next delivery keeps the cluster, because the
// job running on it is the work that delivery will collect. So the cluster is
// deleted on success, on job failure, on timeout, on a permanent error, and on
// context cancellation, whatever its cause (where the job is cancelled first;
// after a shutdown the next delivery starts a new job attempt, <id>-a2, on a
// new cluster, at most maxAttempts attempts; after eventing.ErrRunStopped
// there is no next delivery). A delete that fails is joined to the returned
// error: it never masks a job failure (which stays permanent), and after a
// success it makes the delivery fail transiently so that the redelivery,
// finding the job DONE, deletes again and then reports the success. As a
// server-side backstop for a process that dies or an event that is
// dead-lettered while a cluster exists, every cluster is created with a
// lifecycle config: idle delete after IdleDeleteTTL and auto delete after
// Timeout + IdleDeleteTTL.
//
// Serverless batches need no cleanup: on cancellation of the caller's context
// the batch keeps running (the next delivery collects it), and the batch's
// execution TTL is set to Timeout. The exception is a cancellation with cause
// eventing.ErrRunStopped, after which no delivery comes back: the batch is
// cancelled (its operation, as on timeout) with a fresh context bounded by
// CleanupTimeout; a batch not visible yet, or already ended, is left alone.
package dataproc
