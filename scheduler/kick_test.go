package scheduler_test

import (
	"maps"
	"regexp"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

func TestKickMessage(t *testing.T) {
	for _, p := range events.Pipelines {
		t.Run(p.ID, func(t *testing.T) {
			m := scheduler.KickMessage(p.ID)
			want := map[string]string{
				"ce-type":        "cmmsflow.pipeline.triggered.v1",
				"ce-source":      "//cmmsflow/scheduler",
				"ce-specversion": "1.0",
				"content-type":   "application/json",
				"pipeline":       p.ID,
				"run_id":         "scheduled",
			}
			if !maps.Equal(m.Attributes, want) {
				t.Errorf("attributes\n got %v\nwant %v", m.Attributes, want)
			}
			// Exact bytes: Cloud Scheduler jobs carry them as static data.
			if string(m.Data) != `{"source":"scheduled"}` {
				t.Errorf("data %s", m.Data)
			}
			var pt eventsv1.PipelineTriggered
			if err := protojson.Unmarshal(m.Data, &pt); err != nil || pt.GetSource() != "scheduled" {
				t.Errorf("data %s does not decode to PipelineTriggered{source: scheduled}: %v", m.Data, err)
			}
			if m.PubSubID != "" || !m.PublishTime.IsZero() {
				t.Error("a kick to publish has no Pub/Sub id or publish time")
			}
		})
	}
	if scheduler.KickSource != events.Source("scheduler") {
		t.Errorf("KickSource %q != events.Source(scheduler) %q", scheduler.KickSource, events.Source("scheduler"))
	}
	if got := scheduler.KickTopic(); got != "pipeline-triggered" || got != events.TopicOf(events.PipelineTriggered) {
		t.Errorf("KickTopic() = %q", got)
	}
}

func TestKickMessageIsFresh(t *testing.T) {
	a := scheduler.KickMessage(events.WeeklyKPIReport)
	a.Attributes["run_id"] = "changed"
	a.Data[0] = 'X'
	b := scheduler.KickMessage(events.WeeklyKPIReport)
	if b.Attributes["run_id"] != "scheduled" || b.Data[0] != '{' {
		t.Fatal("KickMessage shares state between calls")
	}
}

func TestKickMessageUnknownPipeline(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("KickMessage of an unknown pipeline did not panic")
		}
	}()
	scheduler.KickMessage("no_such_pipeline")
}

// The receiver decodes a kick with the Pub/Sub message id and publish time
// standing in for ce-id and ce-time, and control names the run after the tick
// Prev(publish time).
func TestKickDecodes(t *testing.T) {
	published := time.Date(2026, 11, 23, 6, 0, 2, 500_000_000, time.UTC) // 2.5 s after a 06:00 tick
	m := scheduler.KickMessage(events.PreventiveMaintenance)
	m.PubSubID, m.PublishTime = "4242", published
	ev, err := eventing.FromMessage(m)
	if err != nil {
		t.Fatalf("FromMessage rejects a kick: %v", err)
	}
	if ev.ID() != "4242" || !ev.Time().Equal(published) {
		t.Errorf("id %q time %v, want the Pub/Sub message id and publish time", ev.ID(), ev.Time())
	}
	if ev.Type() != events.PipelineTriggered || ev.Source() != scheduler.KickSource ||
		ev.Pipeline != events.PreventiveMaintenance || ev.RunID != scheduler.KickRunID {
		t.Errorf("decoded %s from %s, pipeline %s, run %s", ev.Type(), ev.Source(), ev.Pipeline, ev.RunID)
	}
	var pt eventsv1.PipelineTriggered
	if err := ev.Decode(&pt); err != nil || pt.GetSource() != scheduler.KickTriggerSource {
		t.Errorf("Decode: %v, source %q", err, pt.GetSource())
	}
	e, _ := mustLoad(t).Lookup(events.PreventiveMaintenance)
	if tick := e.Prev(ev.Time()); !tick.Equal(time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)) {
		t.Errorf("the kick belongs to tick %v", tick)
	}

	m.PubSubID = ""
	if _, err := eventing.FromMessage(m); err == nil || !eventing.IsPermanent(err) {
		t.Errorf("a kick with neither ce-id nor a Pub/Sub id must be a permanent error, got %v", err)
	}
}

// Job ids are the documented form (deploy/README.md), distinct per pipeline,
// and ids Cloud Scheduler accepts.
func TestJobID(t *testing.T) {
	want := map[string]string{
		"etl_ml_training":        "cmmsflow-etl-ml-training",
		"preventive_maintenance": "cmmsflow-preventive-maintenance",
		"weekly_kpi_report":      "cmmsflow-weekly-kpi-report",
		"model_monitoring":       "cmmsflow-model-monitoring",
	}
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]{1,500}$`)
	seen := map[string]string{}
	for _, p := range events.Pipelines {
		id := scheduler.JobID("cmmsflow", p.ID)
		if w, ok := want[p.ID]; ok && id != w {
			t.Errorf("JobID(cmmsflow, %s) = %q, want %q", p.ID, id, w)
		}
		if !valid.MatchString(id) {
			t.Errorf("JobID(cmmsflow, %s) = %q: not a Cloud Scheduler job id", p.ID, id)
		}
		if other, ok := seen[id]; ok {
			t.Errorf("pipelines %s and %s share the job id %q", other, p.ID, id)
		}
		seen[id] = p.ID
	}
	if len(seen) != len(want) {
		t.Errorf("%d pipelines, the test knows %d: add the new one's id", len(seen), len(want))
	}
	if got := scheduler.JobID("acme", "etl_ml_training"); got != "acme-etl-ml-training" {
		t.Errorf("JobID(acme, etl_ml_training) = %q", got)
	}
}
