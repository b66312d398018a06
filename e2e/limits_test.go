package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// 20 triggers of one pipeline at once, with its max_active_runs of 1 (the
// cron table's): a sampler never sees two of its runs running, and all 20
// end. The triggers go straight to Pub/Sub, as control's outbox publishes
// them, so control's instances project them concurrently.
func TestMaxActiveRunsUnderConcurrentTriggers(t *testing.T) {
	const n = 20
	pm := events.PreventiveMaintenance
	// On a day before the fleet existed nothing is due: each run is quick
	// and creates no work order.
	conf := map[string]string{"as_of": "2001-01-01"}
	stamp := time.Now().UTC().Format("20060102T150405")

	ctx, stopSampling := context.WithCancel(context.Background())
	var maxRunning atomic.Int64
	sampled := make(chan int)
	go func() {
		samples := 0
		defer func() { sampled <- samples }()
		for ctx.Err() == nil {
			var running int64
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM runs WHERE pipeline = $1 AND state = 'running'`, pm).Scan(&running); err == nil {
				samples++
				if running > maxRunning.Load() {
					maxRunning.Store(running)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	pub := eventing.NewPubSubPublisher(sys.PubSub)
	defer pub.Close()
	runIDs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		runIDs[i] = fmt.Sprintf("manual__limit-%s-%02d", stamp, i)
		wg.Go(func() {
			ev, err := eventing.New(events.PipelineTriggered, events.Source("e2e"), runIDs[i], pm, "",
				&eventsv1.PipelineTriggered{Source: "manual", Conf: conf})
			if err == nil {
				err = pub.Publish(context.Background(), events.TopicOf(events.PipelineTriggered), ev.Message())
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, id := range runIDs {
		if state, steps := waitRun(t, id, 2*time.Minute); state != "success" {
			t.Errorf("run %s: %s %+v", id, state, steps)
		}
	}
	stopSampling()
	samples := <-sampled
	t.Logf("%d runs ended; %d samples, at most %d running at once", n, samples, maxRunning.Load())
	if maxRunning.Load() != 1 {
		t.Fatalf("at most %d runs of %s running at once, want 1 (max_active_runs)", maxRunning.Load(), pm)
	}
}
