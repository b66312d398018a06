package dataproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	dataproc "cloud.google.com/go/dataproc/v2/apiv1"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/features"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// ErrStillRunning is wrapped by the transient error Build returns when its
// per-delivery wait budget ended before the Dataproc work did. The event is
// redelivered and the next Build re-attaches (see the package comment).
var ErrStillRunning = errors.New("dataproc: still running")

// DefaultPipeline labels the Dataproc resources when the request names none.
const DefaultPipeline = "etl_ml_training"

// ParquetContentType is the content type recorded for the feature objects.
const ParquetContentType = "application/vnd.apache.parquet"

// maxAttempts bounds the job attempts on a run's cluster: a new attempt is
// started only after the previous one was cancelled.
const maxAttempts = 3

// Request is one run's feature build.
type Request struct {
	RunID        string
	Pipeline     string // for the pipeline label; "" means DefaultPipeline
	SnapshotDate string // YYYY-MM-DD, passed to the script
	// Raw lists the extracted tables; they must share one folder
	// (runs/<run_id>/raw/), which is what the script receives.
	Raw []*eventsv1.StoredObject
	// OutPrefix is the folder the script writes, as an object-name prefix in
	// Config.Bucket (runs/<run_id>/features/) or as a gs:// URI.
	OutPrefix string
	// Windows in days, passed to the script when set (else its defaults,
	// which are libs/features' defaults).
	LookbackDays, LabelWindowDays int
}

// Result is a successful build.
type Result struct {
	// Training and Scoring are OutPrefix + features.TrainingObject and
	// features.ScoringObject, the single Parquet files the script writes,
	// with Name, Uri and ContentType set; the caller fills Rows and Bytes
	// from the bucket if it reports them.
	Training, Scoring *eventsv1.StoredObject
	// Workload is the Dataproc resource that ran: the batch, or the job
	// (projects/<p>/regions/<r>/jobs/<id>).
	Workload string
}

// Describer fills in what the engine cannot know of an object the script
// wrote, its Rows and Bytes (e.g. from the bucket's attributes and the
// Parquet footer). Its error is Build's error: transient unless it marks
// it eventing.Permanent (a missing object after a job that succeeded).
type Describer func(ctx context.Context, obj *eventsv1.StoredObject) error

// Engine submits and follows feature builds on Dataproc. It is safe for
// concurrent use.
type Engine struct {
	// Describe, if set (before the first Build), is called on the training
	// and scoring objects of every successful build.
	Describe Describer

	cfg      Config
	batches  *dataproc.BatchControllerClient
	clusters *dataproc.ClusterControllerClient
	jobs     *dataproc.JobControllerClient
	log      *slog.Logger
	now      func() time.Time
}

// New returns an engine for cfg (zero fields take the env-tag defaults).
// opts go to the Dataproc clients after the regional endpoint, so a test can
// point them at a fake with option.WithEndpoint and option.WithoutAuthentication.
// Close releases the clients.
func New(ctx context.Context, cfg Config, log *slog.Logger, opts ...option.ClientOption) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	opts = append([]option.ClientOption{option.WithEndpoint(cfg.Endpoint)}, opts...)
	e := &Engine{cfg: cfg, log: log.With("engine", "dataproc", "mode", cfg.Mode), now: time.Now}
	var err error
	if cfg.Mode == ModeServerless {
		if e.batches, err = dataproc.NewBatchControllerClient(ctx, opts...); err != nil {
			return nil, fmt.Errorf("dataproc: batch client: %w", err)
		}
		return e, nil
	}
	if e.clusters, err = dataproc.NewClusterControllerClient(ctx, opts...); err != nil {
		return nil, fmt.Errorf("dataproc: cluster client: %w", err)
	}
	if e.jobs, err = dataproc.NewJobControllerClient(ctx, opts...); err != nil {
		_ = e.clusters.Close()
		return nil, fmt.Errorf("dataproc: job client: %w", err)
	}
	return e, nil
}

// Close closes the Dataproc clients.
func (e *Engine) Close() error {
	var errs []error
	if e.batches != nil {
		errs = append(errs, e.batches.Close())
	}
	if e.clusters != nil {
		errs = append(errs, e.clusters.Close())
	}
	if e.jobs != nil {
		errs = append(errs, e.jobs.Close())
	}
	return errors.Join(errs...)
}

// Build runs the feature script for req and returns the objects it wrote, or
// an error: permanent (eventing.IsPermanent) when retrying cannot help,
// otherwise transient — including ErrStillRunning, after which the event's
// redelivery must call Build again with the same request.
func (e *Engine) Build(ctx context.Context, req Request) (Result, error) {
	sp, err := e.spec(req)
	if err != nil {
		return Result{}, eventing.Permanent(fmt.Errorf("dataproc: %w", err))
	}
	wctx, cancel := context.WithTimeout(ctx, e.budget(ctx))
	defer cancel()
	log := e.log.With("run_id", req.RunID, "dataproc_id", sp.id)
	var res Result
	if e.cfg.Mode == ModeServerless {
		res, err = e.runBatch(ctx, wctx, log, sp)
	} else {
		res, err = e.runOnCluster(ctx, wctx, log, sp)
	}
	if err != nil || e.Describe == nil {
		return res, err
	}
	// After runOnCluster, so the cluster is gone whatever this returns; a
	// redelivery finds the job DONE and describes again.
	for _, o := range []*eventsv1.StoredObject{res.Training, res.Scoring} {
		if err := e.Describe(ctx, o); err != nil {
			return Result{}, fmt.Errorf("dataproc: describe %s: %w", o.GetUri(), err)
		}
	}
	return res, nil
}

// budget is how long this delivery may wait: Config.Wait, cut to end
// CleanupTimeout before ctx's deadline.
func (e *Engine) budget(ctx context.Context) time.Duration {
	d := e.cfg.Wait
	if dl, ok := ctx.Deadline(); ok {
		if r := time.Until(dl) - e.cfg.CleanupTimeout; r < d {
			d = max(r, 0)
		}
	}
	return d
}

// spec is what one request submits.
type spec struct {
	id       string // ResourceID(run id)
	args     []string
	labels   map[string]string
	training *eventsv1.StoredObject
	scoring  *eventsv1.StoredObject
}

func (e *Engine) spec(req Request) (spec, error) {
	if req.RunID == "" {
		return spec{}, errors.New("run id is required")
	}
	if _, err := time.Parse(time.DateOnly, req.SnapshotDate); err != nil {
		return spec{}, fmt.Errorf("snapshot date %q: want YYYY-MM-DD", req.SnapshotDate)
	}
	raw, err := e.rawFolder(req.Raw)
	if err != nil {
		return spec{}, err
	}
	bucket, prefix, err := e.outFolder(req.OutPrefix)
	if err != nil {
		return spec{}, err
	}
	args := []string{"--raw", raw, "--out", "gs://" + bucket + "/" + prefix, "--snapshot-date", req.SnapshotDate}
	if req.LookbackDays < 0 || req.LabelWindowDays < 0 {
		return spec{}, fmt.Errorf("negative window: lookback %d, label %d days", req.LookbackDays, req.LabelWindowDays)
	}
	if req.LookbackDays > 0 {
		args = append(args, "--lookback-days", strconv.Itoa(req.LookbackDays))
	}
	if req.LabelWindowDays > 0 {
		args = append(args, "--label-window-days", strconv.Itoa(req.LabelWindowDays))
	}
	pipeline := req.Pipeline
	if pipeline == "" {
		pipeline = DefaultPipeline
	}
	obj := func(file string) *eventsv1.StoredObject {
		name := prefix + file
		return &eventsv1.StoredObject{Name: name, Uri: "gs://" + bucket + "/" + name, ContentType: ParquetContentType}
	}
	return spec{
		id:   ResourceID(req.RunID),
		args: args,
		labels: map[string]string{"app": "cmmsflow", "step": "featurejob",
			"run_id": labelValue(req.RunID), "pipeline": labelValue(pipeline)},
		training: obj(features.TrainingObject),
		scoring:  obj(features.ScoringObject),
	}, nil
}

// rawFolder is the gs:// folder every raw object lives in.
func (e *Engine) rawFolder(raw []*eventsv1.StoredObject) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("no raw objects to build features from")
	}
	folder := ""
	for _, o := range raw {
		uri := o.GetUri()
		if uri == "" {
			if o.GetName() == "" {
				return "", errors.New("raw object without name or uri")
			}
			uri = "gs://" + e.cfg.Bucket + "/" + o.GetName()
		}
		rest, ok := strings.CutPrefix(uri, "gs://")
		i := strings.LastIndex(rest, "/")
		if !ok || i <= 0 {
			return "", fmt.Errorf("raw object %q: not a gs:// object", uri)
		}
		dir := "gs://" + rest[:i+1]
		if folder != "" && dir != folder {
			return "", fmt.Errorf("raw objects in two folders, %s and %s", folder, dir)
		}
		folder = dir
	}
	return folder, nil
}

// outFolder splits the output prefix into bucket and object-name prefix
// ending in "/".
func (e *Engine) outFolder(p string) (bucket, prefix string, err error) {
	bucket, prefix = e.cfg.Bucket, p
	if rest, ok := strings.CutPrefix(p, "gs://"); ok {
		bucket, prefix, _ = strings.Cut(rest, "/")
	}
	prefix = strings.TrimLeft(prefix, "/")
	if bucket == "" || prefix == "" {
		return "", "", fmt.Errorf("output prefix %q: want runs/<run_id>/features/ or a gs:// folder", p)
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return bucket, prefix, nil
}

// fail turns an error met while talking to Dataproc into Build's error: if
// the caller's context ended, that; if this delivery's budget ended,
// ErrStillRunning; otherwise the RPC error, permanent when Dataproc rejected
// the request itself.
func fail(ctx, wctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("dataproc: %s: %w", what, context.Cause(ctx))
	}
	if budgetEnded(wctx, err) {
		return fmt.Errorf("%w: %s", ErrStillRunning, what)
	}
	err = fmt.Errorf("dataproc: %s: %w", what, err)
	switch status.Code(err) {
	case codes.InvalidArgument, codes.PermissionDenied, codes.OutOfRange, codes.Unimplemented:
		return eventing.Permanent(err)
	}
	return err
}

// budgetEnded reports whether err, from a call made with wctx, ended because
// wctx's deadline passed. The client library derives a per-call context with
// the same deadline, whose timer may fire a moment before wctx's: so a
// DeadlineExceeded gets a short grace for wctx to catch up.
func budgetEnded(wctx context.Context, err error) bool {
	if wctx.Err() != nil {
		return true
	}
	if status.Code(err) != codes.DeadlineExceeded && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return !sleep(wctx, 100*time.Millisecond)
}

// waiting is Build's error when the budget or the caller's context ended while
// the work was in the given state.
func waiting(ctx context.Context, what string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("dataproc: %s: %w", what, context.Cause(ctx))
	}
	return fmt.Errorf("%w: %s", ErrStillRunning, what)
}

// cleanupContext is the context of work that must happen after the caller's
// context is cancelled (cancelling a job or batch, deleting a cluster):
// detached from that cancellation and bounded by CleanupTimeout.
func (e *Engine) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), e.cfg.CleanupTimeout)
}

// sleep waits d (a poll interval, or budgetEnded's grace); false if ctx
// ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func isCode(err error, c codes.Code) bool { return err != nil && status.Code(err) == c }
