package dataproc

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/dataproc/v2/apiv1/dataprocpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/dataproc/dataproctest"
)

const (
	runID     = "manual__2024-06-02T02:00:00+00:00"
	scriptURI = "gs://bkt/code/features-0123456789ab.py"
)

func newEngine(t *testing.T, fake *dataproctest.Server, mode string, mut ...func(*Config)) *Engine {
	t.Helper()
	cfg := Config{
		Mode: mode, Project: "proj", Region: "europe-west1", Bucket: "bkt", ScriptURI: scriptURI,
		ServiceAccount: "spark@proj.iam.gserviceaccount.com",
		Subnetwork:     "projects/proj/regions/europe-west1/subnetworks/dataproc",
		Properties:     map[string]string{"spark.executor.instances": "2"},
		Wait:           10 * time.Second, PollInterval: time.Millisecond, Timeout: time.Hour,
		CleanupTimeout: 5 * time.Second,
	}
	for _, m := range mut {
		m(&cfg)
	}
	e, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(t.Output(), nil)), fake.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

func request() Request {
	raw := func(table string) *eventsv1.StoredObject {
		name := "runs/" + runID + "/raw/" + table + ".parquet"
		return &eventsv1.StoredObject{Name: name, Uri: "gs://bkt/" + name, Rows: 10}
	}
	return Request{RunID: runID, SnapshotDate: "2024-06-02", OutPrefix: "runs/" + runID + "/features/",
		Raw: []*eventsv1.StoredObject{raw("assets"), raw("work_orders"), raw("maintenance_plans")}}
}

var wantArgs = []string{"--raw", "gs://bkt/runs/" + runID + "/raw/", "--out", "gs://bkt/runs/" + runID + "/features/",
	"--snapshot-date", "2024-06-02"}

var wantLabels = map[string]string{"app": "cmmsflow", "step": "featurejob",
	"run_id": "manual__2024-06-02t02-00-00-00-00", "pipeline": "etl_ml_training"}

func checkResult(t *testing.T, res Result, workload string) {
	t.Helper()
	want := Result{
		Training: &eventsv1.StoredObject{Name: "runs/" + runID + "/features/training.parquet",
			Uri: "gs://bkt/runs/" + runID + "/features/training.parquet", ContentType: ParquetContentType},
		Scoring: &eventsv1.StoredObject{Name: "runs/" + runID + "/features/scoring.parquet",
			Uri: "gs://bkt/runs/" + runID + "/features/scoring.parquet", ContentType: ParquetContentType},
		Workload: workload,
	}
	if !proto.Equal(res.Training, want.Training) || !proto.Equal(res.Scoring, want.Scoring) || res.Workload != want.Workload {
		t.Errorf("result = %v %v %s\nwant     %v %v %s", res.Training, res.Scoring, res.Workload,
			want.Training, want.Scoring, want.Workload)
	}
}

// mustFail checks err's class and that it mentions every fragment.
func mustFail(t *testing.T, err error, permanent bool, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Build succeeded, want an error")
	}
	if eventing.IsPermanent(err) != permanent {
		t.Errorf("permanent = %v, want %v: %v", eventing.IsPermanent(err), permanent, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err, f)
		}
	}
}

func batchName() string { return "projects/proj/locations/europe-west1/batches/" + ResourceID(runID) }

func jobName(attempt int) string {
	return "projects/proj/regions/europe-west1/jobs/" + jobID(ResourceID(runID), attempt)
}

// ---- serverless

func TestServerlessSuccessAndRequestShape(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{RunReads: 3})
	e := newEngine(t, fake, ModeServerless)

	res, err := e.Build(t.Context(), request())
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, batchName())

	reqs := fake.CreateBatchRequests()
	if len(reqs) != 1 {
		t.Fatalf("%d CreateBatch requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Parent != "projects/proj/locations/europe-west1" || r.BatchId != ResourceID(runID) {
		t.Errorf("parent %q batch id %q", r.Parent, r.BatchId)
	}
	py := r.Batch.GetPysparkBatch()
	if py.GetMainPythonFileUri() != scriptURI || !slices.Equal(py.GetArgs(), wantArgs) {
		t.Errorf("pyspark batch = %v", py)
	}
	rc := r.Batch.GetRuntimeConfig()
	if rc.GetVersion() != "2.2" || rc.GetProperties()["spark.executor.instances"] != "2" {
		t.Errorf("runtime config = %v", rc)
	}
	ec := r.Batch.GetEnvironmentConfig().GetExecutionConfig()
	if ec.GetServiceAccount() != "spark@proj.iam.gserviceaccount.com" ||
		ec.GetSubnetworkUri() != "projects/proj/regions/europe-west1/subnetworks/dataproc" ||
		ec.GetTtl().AsDuration() != time.Hour {
		t.Errorf("execution config = %v", ec)
	}
	if !mapsEqual(r.Batch.GetLabels(), wantLabels) {
		t.Errorf("labels = %v", r.Batch.GetLabels())
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestServerlessBatchFailureIsPermanent(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{FailJob: "Traceback: KeyError 'asset_id'"})
	e := newEngine(t, fake, ModeServerless)
	_, err := e.Build(t.Context(), request())
	mustFail(t, err, true, "FAILED", "KeyError 'asset_id'", batchName())

	// A redelivery reports the same failure without a second batch.
	_, err = e.Build(t.Context(), request())
	mustFail(t, err, true, "KeyError 'asset_id'")
	if n := len(fake.CreateBatchRequests()); n != 1 {
		t.Errorf("%d CreateBatch requests, want 1", n)
	}
}

func TestServerlessStillRunningThenRedeliveryReattaches(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	e := newEngine(t, fake, ModeServerless, func(c *Config) { c.Wait = time.Second })

	_, err := e.Build(t.Context(), request())
	if !errors.Is(err, ErrStillRunning) {
		t.Fatalf("err = %v, want ErrStillRunning", err)
	}
	mustFail(t, err, false, "RUNNING")
	_, err = e.Build(t.Context(), request()) // still hanging: attaches, waits again
	if !errors.Is(err, ErrStillRunning) {
		t.Fatalf("second delivery: err = %v, want ErrStillRunning", err)
	}

	fake.SetBehavior(dataproctest.Behavior{})
	res, err := e.Build(t.Context(), request())
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, batchName())
	if n, m := len(fake.CreateBatchRequests()), len(fake.Batches()); n != 1 || m != 1 {
		t.Errorf("%d CreateBatch requests and %d batches, want 1 and 1", n, m)
	}
}

func TestServerlessTimeoutCancelsTheBatch(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	e := newEngine(t, fake, ModeServerless, func(c *Config) { c.Timeout = 20 * time.Millisecond })
	_, err := e.Build(t.Context(), request())
	mustFail(t, err, true, "timeout")
	b := fake.Batches()
	if len(b) != 1 || b[0].State != dataprocpb.Batch_CANCELLED {
		t.Fatalf("batches = %v, want one CANCELLED", b)
	}
	if ops := fake.CancelledOperations(); len(ops) != 1 || ops[0] != b[0].Operation {
		t.Errorf("cancelled operations %v, want [%s]", ops, b[0].Operation)
	}
	// The server-side TTL never goes below Dataproc's minimum.
	if ttl := fake.CreateBatchRequests()[0].Batch.EnvironmentConfig.ExecutionConfig.Ttl.AsDuration(); ttl != 10*time.Minute {
		t.Errorf("ttl = %s", ttl)
	}
}

func TestServerlessCancellationLeavesTheBatchRunning(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	e := newEngine(t, fake, ModeServerless)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := e.Build(ctx, request())
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrStillRunning) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	mustFail(t, err, false)
	if b := fake.Batches(); len(b) != 1 || b[0].State != dataprocpb.Batch_RUNNING || len(fake.CancelledOperations()) != 0 {
		t.Errorf("batches = %v, cancelled ops %v: want the batch left RUNNING", b, fake.CancelledOperations())
	}
}

// stopRun runs Build until running says the work is under way, then cancels
// its context with cause eventing.ErrRunStopped (the router's stop of a run
// no longer active) and returns Build's error.
func stopRun(t *testing.T, e *Engine, running func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancelCause(t.Context())
	done := make(chan error, 1)
	go func() { _, err := e.Build(ctx, request()); done <- err }()
	waitFor(t, "the work under way", running)
	cancel(eventing.ErrRunStopped)
	err := <-done
	if !errors.Is(err, eventing.ErrRunStopped) || errors.Is(err, ErrStillRunning) {
		t.Fatalf("err = %v, want it to wrap ErrRunStopped", err)
	}
	return err
}

func TestServerlessRunStoppedCancelsTheBatch(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	e := newEngine(t, fake, ModeServerless)
	err := stopRun(t, e, func() bool {
		b := fake.Batches()
		return len(b) == 1 && b[0].State == dataprocpb.Batch_RUNNING
	})
	mustFail(t, err, false)
	b := fake.Batches()
	if len(b) != 1 || b[0].State != dataprocpb.Batch_CANCELLED {
		t.Fatalf("batches = %v, want one CANCELLED", b)
	}
	if ops := fake.CancelledOperations(); len(ops) != 1 || ops[0] != b[0].Operation {
		t.Errorf("cancelled operations %v, want [%s]", ops, b[0].Operation)
	}
}

func TestConcurrentDeliveriesShareOneWorkload(t *testing.T) {
	for _, mode := range []string{ModeServerless, ModeCluster} {
		t.Run(mode, func(t *testing.T) {
			fake := dataproctest.Start(t)
			fake.SetBehavior(dataproctest.Behavior{RunReads: 5, ClusterCreateReads: 2})
			e := newEngine(t, fake, mode)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() { _, errs[i] = e.Build(t.Context(), request()) })
			}
			wg.Wait()
			for i, err := range errs {
				// A cluster-mode delivery may lose the race to delete the
				// cluster or see it deleting; either is transient.
				if err != nil && (mode == ModeServerless || eventing.IsPermanent(err)) {
					t.Errorf("delivery %d: %v", i, err)
				}
			}
			if mode == ModeServerless {
				if n := len(fake.Batches()); n != 1 {
					t.Errorf("%d batches, want 1", n)
				}
				return
			}
			if n := len(fake.Jobs()); n != 1 {
				t.Errorf("%d jobs, want 1", n)
			}
			if c := fake.Clusters(); len(c) != 0 {
				t.Errorf("clusters left: %v", c)
			}
		})
	}
}

// ---- ephemeral cluster

func TestClusterSuccessRequestShapeAndDelete(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{ClusterCreateReads: 2, RunReads: 3})
	e := newEngine(t, fake, ModeCluster, func(c *Config) { c.Zone = "europe-west1-b" })

	res, err := e.Build(t.Context(), request())
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, jobName(1))

	creates := fake.CreateClusterRequests()
	if len(creates) != 1 {
		t.Fatalf("%d CreateCluster requests, want 1", len(creates))
	}
	cr := creates[0]
	c := cr.Cluster
	if cr.ProjectId != "proj" || cr.Region != "europe-west1" || c.ClusterName != ResourceID(runID) || c.ProjectId != "proj" {
		t.Errorf("create cluster %s/%s %s", cr.ProjectId, cr.Region, c.ClusterName)
	}
	if !mapsEqual(c.Labels, wantLabels) {
		t.Errorf("cluster labels = %v", c.Labels)
	}
	cc := c.Config
	gce := cc.GetGceClusterConfig()
	if gce.GetServiceAccount() != "spark@proj.iam.gserviceaccount.com" || gce.GetZoneUri() != "europe-west1-b" ||
		gce.GetSubnetworkUri() != "projects/proj/regions/europe-west1/subnetworks/dataproc" {
		t.Errorf("gce config = %v", gce)
	}
	if cc.GetMasterConfig().GetNumInstances() != 1 || cc.GetWorkerConfig().GetNumInstances() != 2 ||
		cc.GetWorkerConfig().GetMachineTypeUri() != "n2-standard-4" || cc.GetWorkerConfig().GetDiskConfig().GetBootDiskSizeGb() != 100 ||
		cc.GetSoftwareConfig().GetImageVersion() != "2.2-debian12" {
		t.Errorf("cluster config = %v", cc)
	}
	lc := cc.GetLifecycleConfig()
	if lc.GetIdleDeleteTtl().AsDuration() != 30*time.Minute || lc.GetAutoDeleteTtl().AsDuration() != 90*time.Minute {
		t.Errorf("lifecycle config = %v", lc)
	}

	subs := fake.SubmitJobRequests()
	if len(subs) != 1 {
		t.Fatalf("%d SubmitJob requests, want 1", len(subs))
	}
	j := subs[0].Job
	py := j.GetPysparkJob()
	if subs[0].ProjectId != "proj" || subs[0].Region != "europe-west1" || j.Reference.JobId != jobID(ResourceID(runID), 1) ||
		j.Placement.ClusterName != ResourceID(runID) || j.Placement.ClusterUuid == "" ||
		py.MainPythonFileUri != scriptURI || !slices.Equal(py.Args, wantArgs) ||
		py.Properties["spark.executor.instances"] != "2" || !mapsEqual(j.Labels, wantLabels) {
		t.Errorf("submit job = %v", subs[0])
	}

	assertDeleted(t, fake, 1)
}

// assertDeleted checks that deletes were requested and no cluster is left.
func assertDeleted(t *testing.T, fake *dataproctest.Server, deletes int) {
	t.Helper()
	d := fake.DeleteClusterRequests()
	if len(d) != deletes {
		t.Errorf("%d DeleteCluster requests, want %d", len(d), deletes)
	}
	for _, r := range d {
		if r.ProjectId != "proj" || r.Region != "europe-west1" || r.ClusterName != ResourceID(runID) {
			t.Errorf("delete request %v", r)
		}
	}
	if c := fake.Clusters(); len(c) != 0 {
		t.Errorf("clusters left: %v", c)
	}
}

func TestClusterJobFailureIsPermanentAndDeletesTheCluster(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{FailJob: "Job failed with message [ValueError: snapshot]"})
	e := newEngine(t, fake, ModeCluster)
	_, err := e.Build(t.Context(), request())
	mustFail(t, err, true, "ValueError: snapshot", jobID(ResourceID(runID), 1), "driveroutput")
	assertDeleted(t, fake, 1)

	// A redelivery finds the failed job: same error, no new cluster or job.
	_, err = e.Build(t.Context(), request())
	mustFail(t, err, true, "ValueError: snapshot")
	if n, m := len(fake.CreateClusterRequests()), len(fake.SubmitJobRequests()); n != 1 || m != 1 {
		t.Errorf("%d CreateCluster and %d SubmitJob requests, want 1 and 1", n, m)
	}
	if c := fake.Clusters(); len(c) != 0 {
		t.Errorf("clusters left: %v", c)
	}
}

func TestClusterTimeoutCancelsJobAndDeletesCluster(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	e := newEngine(t, fake, ModeCluster, func(c *Config) { c.Timeout = 30 * time.Millisecond })
	_, err := e.Build(t.Context(), request())
	mustFail(t, err, true, "timeout")
	if c := fake.CancelJobRequests(); len(c) != 1 || c[0].JobId != jobID(ResourceID(runID), 1) {
		t.Errorf("cancel requests %v", c)
	}
	assertDeleted(t, fake, 1)
}

func TestClusterCreationTimeoutDeletesCluster(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{ClusterCreateReads: 1 << 30})
	e := newEngine(t, fake, ModeCluster, func(c *Config) { c.Timeout = 30 * time.Millisecond })
	_, err := e.Build(t.Context(), request())
	mustFail(t, err, true, "timeout", "CREATING")
	if n := len(fake.SubmitJobRequests()); n != 0 {
		t.Errorf("%d jobs submitted", n)
	}
	assertDeleted(t, fake, 1)
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestClusterCancellationDeletesClusterAndRedeliveryRestarts(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	e := newEngine(t, fake, ModeCluster)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := e.Build(ctx, request()); done <- err }()
	waitFor(t, "a running job", func() bool {
		j := fake.Jobs()
		return len(j) == 1 && j[0].Status.State == dataprocpb.JobStatus_RUNNING
	})
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	mustFail(t, err, false)
	if c := fake.CancelJobRequests(); len(c) != 1 {
		t.Errorf("cancel requests %v, want 1", c)
	}
	assertDeleted(t, fake, 1)

	// The redelivery starts attempt 2 on a new cluster.
	fake.SetBehavior(dataproctest.Behavior{})
	res, err := e.Build(t.Context(), request())
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, jobName(2))
	jobs := fake.Jobs()
	if len(jobs) != 2 || jobs[0].Status.State != dataprocpb.JobStatus_CANCELLED || jobs[1].Status.State != dataprocpb.JobStatus_DONE {
		t.Errorf("jobs = %v", jobs)
	}
	if n := len(fake.CreateClusterRequests()); n != 2 {
		t.Errorf("%d CreateCluster requests, want 2", n)
	}
	assertDeleted(t, fake, 2)
}

// A stopped run's job is cancelled and its cluster deleted, as on any
// cancellation, and nothing more is started: no other attempt, no cluster.
func TestClusterRunStoppedCancelsJobAndDeletesCluster(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	e := newEngine(t, fake, ModeCluster)
	err := stopRun(t, e, func() bool {
		j := fake.Jobs()
		return len(j) == 1 && j[0].Status.State == dataprocpb.JobStatus_RUNNING
	})
	mustFail(t, err, false)
	if c := fake.CancelJobRequests(); len(c) != 1 || c[0].JobId != jobID(ResourceID(runID), 1) {
		t.Errorf("cancel requests %v, want attempt 1's", c)
	}
	assertDeleted(t, fake, 1)
	jobs := fake.Jobs()
	if len(jobs) != 1 || jobs[0].Status.State != dataprocpb.JobStatus_CANCELLED {
		t.Errorf("jobs = %v, want attempt 1 CANCELLED", jobs)
	}
	if n, m := len(fake.CreateClusterRequests()), len(fake.SubmitJobRequests()); n != 1 || m != 1 {
		t.Errorf("%d CreateCluster and %d SubmitJob requests, want 1 and 1", n, m)
	}
}

func TestClusterCancellationWhileCreatingDeletesCluster(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{ClusterCreateReads: 1 << 30})
	e := newEngine(t, fake, ModeCluster)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := e.Build(ctx, request())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertDeleted(t, fake, 1)
}

func TestClusterStillRunningKeepsClusterAndRedeliveryReattaches(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	e := newEngine(t, fake, ModeCluster, func(c *Config) { c.Wait = time.Second })

	for range 2 {
		_, err := e.Build(t.Context(), request())
		if !errors.Is(err, ErrStillRunning) {
			t.Fatalf("err = %v, want ErrStillRunning", err)
		}
		mustFail(t, err, false, "RUNNING")
		if c := fake.Clusters(); len(c) != 1 || c[0].Status.State != dataprocpb.ClusterStatus_RUNNING {
			t.Fatalf("clusters = %v, want the one cluster kept RUNNING", c)
		}
		if n := len(fake.DeleteClusterRequests()); n != 0 {
			t.Fatalf("%d deletes while the job runs", n)
		}
	}

	fake.SetBehavior(dataproctest.Behavior{})
	res, err := e.Build(t.Context(), request())
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, jobName(1))
	if n, m := len(fake.CreateClusterRequests()), len(fake.SubmitJobRequests()); n != 1 || m != 1 {
		t.Errorf("%d CreateCluster and %d SubmitJob requests, want 1 and 1", n, m)
	}
	assertDeleted(t, fake, 1)
}

func TestClusterStillCreatingThenRedeliveryReattaches(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{ClusterCreateReads: 1 << 30})
	e := newEngine(t, fake, ModeCluster, func(c *Config) { c.Wait = time.Second })
	_, err := e.Build(t.Context(), request())
	if !errors.Is(err, ErrStillRunning) || !strings.Contains(err.Error(), "CREATING") {
		t.Fatalf("err = %v, want ErrStillRunning while CREATING", err)
	}
	fake.SetBehavior(dataproctest.Behavior{})
	if _, err := e.Build(t.Context(), request()); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.CreateClusterRequests()); n != 1 {
		t.Errorf("%d CreateCluster requests, want 1", n)
	}
	assertDeleted(t, fake, 1)
}

func TestWaitIsBoundedByTheCallersDeadline(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	e := newEngine(t, fake, ModeCluster, func(c *Config) {
		c.Wait = time.Hour
		c.CleanupTimeout = 200 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.Build(ctx, request())
	if !errors.Is(err, ErrStillRunning) {
		t.Fatalf("err = %v, want ErrStillRunning before the caller's deadline", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Build returned after the caller's deadline (%s)", time.Since(start))
	}
	if c := fake.Clusters(); len(c) != 1 {
		t.Errorf("clusters = %v, want the cluster kept", c)
	}
}

func TestClusterDeleteFailureDoesNotMaskJobFailure(t *testing.T) {
	for name, b := range map[string]dataproctest.Behavior{
		"operation fails": {FailDeleteOp: "disk detach failed"},
		"call fails":      {DeleteError: status.Error(codes.Internal, "disk detach failed")},
	} {
		t.Run(name, func(t *testing.T) {
			fake := dataproctest.Start(t)
			b.FailJob = "Job failed with message [boom]"
			fake.SetBehavior(b)
			e := newEngine(t, fake, ModeCluster)
			_, err := e.Build(t.Context(), request())
			// Transient while the cluster stands, so the event is redelivered
			// rather than dead-lettered with the cluster left behind.
			mustFail(t, err, false, "boom", "delete cluster", "disk detach failed")
			if n := len(fake.DeleteClusterRequests()); n != 1 {
				t.Errorf("%d DeleteCluster requests, want 1", n)
			}
			// The redelivery deletes the cluster and reports the job failure
			// for good, without a new job attempt.
			fake.SetBehavior(dataproctest.Behavior{FailJob: b.FailJob})
			_, err = e.Build(t.Context(), request())
			mustFail(t, err, true, "boom")
			if c := fake.Clusters(); len(c) != 0 {
				t.Errorf("clusters left: %v", c)
			}
			if n := len(fake.SubmitJobRequests()); n != 1 {
				t.Errorf("%d SubmitJob requests, want 1", n)
			}
		})
	}
}

func TestClusterDeleteFailureAfterSuccessIsRetried(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{DeleteError: status.Error(codes.Internal, "backend unavailable")})
	e := newEngine(t, fake, ModeCluster)
	_, err := e.Build(t.Context(), request())
	mustFail(t, err, false, "succeeded", "backend unavailable")
	if errors.Is(err, ErrStillRunning) {
		t.Error("delete failure reported as still running")
	}
	if c := fake.Clusters(); len(c) != 1 {
		t.Fatalf("clusters = %v", c)
	}

	fake.SetBehavior(dataproctest.Behavior{})
	res, err := e.Build(t.Context(), request())
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, jobName(1))
	if n := len(fake.SubmitJobRequests()); n != 1 {
		t.Errorf("%d SubmitJob requests, want 1", n)
	}
	assertDeleted(t, fake, 2)
}

func TestClusterCreateFailureDeletesAndRetries(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{FailClusterCreate: "Insufficient 'CPUS' quota"})
	e := newEngine(t, fake, ModeCluster)
	_, err := e.Build(t.Context(), request())
	mustFail(t, err, false, "ERROR", "Insufficient 'CPUS' quota")
	assertDeleted(t, fake, 1)
	if n := len(fake.SubmitJobRequests()); n != 0 {
		t.Errorf("%d jobs submitted to a failed cluster", n)
	}

	fake.SetBehavior(dataproctest.Behavior{})
	if _, err := e.Build(t.Context(), request()); err != nil {
		t.Fatal(err)
	}
	assertDeleted(t, fake, 2)
}

func TestClusterRejectedRequestIsPermanent(t *testing.T) {
	fake := dataproctest.Start(t)
	// The fake rejects the label (keys must start with a letter) as Dataproc does.
	e := newEngine(t, fake, ModeCluster)
	sp, err := e.spec(request())
	if err != nil {
		t.Fatal(err)
	}
	sp.labels["9bad"] = "x"
	ctx := t.Context()
	_, err = e.runOnCluster(ctx, ctx, e.log, sp)
	mustFail(t, err, true, "InvalidArgument", "9bad")
	if n := len(fake.DeleteClusterRequests()); n != 1 {
		t.Errorf("%d DeleteCluster requests, want 1 (the always-delete)", n)
	}
}

func TestCancelledAttemptsAreBounded(t *testing.T) {
	fake := dataproctest.Start(t)
	fake.SetBehavior(dataproctest.Behavior{Hang: true})
	e := newEngine(t, fake, ModeCluster)
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { _, err := e.Build(ctx, request()); done <- err }()
		waitFor(t, "a running job", func() bool {
			j := fake.Jobs()
			return len(j) == attempt && j[attempt-1].Status.State == dataprocpb.JobStatus_RUNNING
		})
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	_, err := e.Build(t.Context(), request())
	mustFail(t, err, true, "cancelled")
	assertDeleted(t, fake, maxAttempts+1)
}

func TestInvalidRequestsArePermanentWithoutCalls(t *testing.T) {
	fake := dataproctest.Start(t)
	for _, mode := range []string{ModeServerless, ModeCluster} {
		e := newEngine(t, fake, mode)
		for name, mut := range map[string]func(*Request){
			"run id":        func(r *Request) { r.RunID = "" },
			"snapshot date": func(r *Request) { r.SnapshotDate = "02/06/2024" },
			"raw objects":   func(r *Request) { r.Raw = nil },
			"two folders": func(r *Request) {
				r.Raw = append(r.Raw, &eventsv1.StoredObject{Name: "runs/other/raw/x.parquet"})
			},
			"output prefix": func(r *Request) { r.OutPrefix = "" },
			"window":        func(r *Request) { r.LookbackDays = -1 },
		} {
			req := request()
			mut(&req)
			_, err := e.Build(t.Context(), req)
			if err == nil || !eventing.IsPermanent(err) {
				t.Errorf("%s/%s: err = %v, want permanent", mode, name, err)
			}
		}
	}
	if len(fake.CreateBatchRequests())+len(fake.CreateClusterRequests())+len(fake.SubmitJobRequests()) != 0 {
		t.Error("an invalid request reached Dataproc")
	}
}

func TestOutputAsURIAndRawByName(t *testing.T) {
	fake := dataproctest.Start(t)
	e := newEngine(t, fake, ModeServerless)
	req := request()
	for _, o := range req.Raw {
		o.Uri = "" // names only: the bucket comes from the config
	}
	req.OutPrefix = "gs://other/runs/" + runID + "/features" // no trailing slash
	req.Pipeline = "Backfill Run"
	req.LookbackDays, req.LabelWindowDays = 180, 30
	res, err := e.Build(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Training.Uri != "gs://other/runs/"+runID+"/features/training.parquet" ||
		res.Training.Name != "runs/"+runID+"/features/training.parquet" {
		t.Errorf("training = %v", res.Training)
	}
	r := fake.CreateBatchRequests()[0]
	if args := r.Batch.GetPysparkBatch().Args; !slices.Equal(args, []string{"--raw", "gs://bkt/runs/" + runID + "/raw/",
		"--out", "gs://other/runs/" + runID + "/features/", "--snapshot-date", "2024-06-02",
		"--lookback-days", "180", "--label-window-days", "30"}) {
		t.Errorf("args = %v", args)
	}
	if got := r.Batch.Labels["pipeline"]; got != "backfill-run" {
		t.Errorf("pipeline label = %q", got)
	}
}

func TestDescribeFillsRowsAndBytes(t *testing.T) {
	for _, mode := range []string{ModeServerless, ModeCluster} {
		t.Run(mode, func(t *testing.T) {
			fake := dataproctest.Start(t)
			e := newEngine(t, fake, mode)
			fail := true
			e.Describe = func(_ context.Context, o *eventsv1.StoredObject) error {
				if fail {
					return eventing.Permanent(errors.New("object not found"))
				}
				o.Rows, o.Bytes = 7, 99
				return nil
			}
			_, err := e.Build(t.Context(), request())
			mustFail(t, err, true, "object not found", "training.parquet")
			if c := fake.Clusters(); len(c) != 0 {
				t.Errorf("clusters left: %v", c)
			}

			fail = false
			res, err := e.Build(t.Context(), request())
			if err != nil {
				t.Fatal(err)
			}
			if res.Training.Rows != 7 || res.Scoring.Bytes != 99 {
				t.Errorf("result = %v %v", res.Training, res.Scoring)
			}
			if n := len(fake.SubmitJobRequests()) + len(fake.CreateBatchRequests()); n != 1 {
				t.Errorf("%d submissions, want 1", n)
			}
		})
	}
}
