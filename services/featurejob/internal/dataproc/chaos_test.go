package dataproc

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/services/featurejob/internal/dataproc/dataproctest"
)

// The cluster engine under random Dataproc faults (seeded; the seed is
// logged): every run's event is delivered again while Build returns a
// transient error, as Pub/Sub does (up to its 10 delivery attempts), with
// the fake failing cluster creation, jobs, delete calls and delete
// operations at random. Every run that ended — succeeded, or failed for
// good — has no cluster left.
func TestClusterEngineUnderRandomFaults(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	fake := dataproctest.Start(t)
	e := newEngine(t, fake, ModeCluster, func(c *Config) { c.CleanupTimeout = 2 * time.Second })

	var ended, succeeded, failed, faults int
	for i := range 30 {
		run := "manual__2024-06-02T02:00:" + strconv.Itoa(10+i) + "+00:00"
		req := request()
		req.RunID, req.OutPrefix = run, "runs/"+run+"/features/"
		for _, o := range req.Raw {
			o.Name = "runs/" + run + "/raw/" + o.Name[len("runs/"+runID+"/raw/"):]
			o.Uri = "gs://bkt/" + o.Name
		}
		var outcome error
		done := false
		for delivery := 1; delivery <= 10 && !done; delivery++ {
			b := dataproctest.Behavior{ClusterCreateReads: rng.IntN(3), RunReads: rng.IntN(3), DeleteReads: rng.IntN(2)}
			switch r := rng.IntN(100); {
			case r < 15:
				b.FailClusterCreate = "Insufficient 'CPUS' quota"
			case r < 30:
				b.FailJob = "Job failed with message [boom]"
			}
			switch r := rng.IntN(100); {
			case r < 15:
				b.FailDeleteOp = "disk detach failed"
			case r < 25:
				b.DeleteError = status.Error(codes.Internal, "backend unavailable")
			}
			if b.FailClusterCreate != "" || b.FailJob != "" || b.FailDeleteOp != "" || b.DeleteError != nil {
				faults++
			}
			fake.SetBehavior(b)
			_, outcome = e.Build(t.Context(), req)
			done = outcome == nil || eventing.IsPermanent(outcome)
		}
		if !done {
			t.Logf("%s: still failing after 10 deliveries (Pub/Sub dead-letters it; control's sweeper fails the run): %v", run, outcome)
			continue
		}
		ended++
		if outcome == nil {
			succeeded++
		} else {
			failed++
		}
		fake.SetBehavior(dataproctest.Behavior{})
		for _, c := range fake.Clusters() {
			if c.ClusterName == ResourceID(run) {
				t.Errorf("%s ended (%v) with its cluster left: %s", run, outcome, c.GetStatus().GetState())
			}
		}
	}
	t.Logf("%d runs ended (%d succeeded, %d failed), %d deliveries with faults", ended, succeeded, failed, faults)
	if ended < 20 || faults == 0 {
		t.Fatalf("only %d runs ended, %d faults: the test exercised too little", ended, faults)
	}
}
