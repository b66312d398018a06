package eventing

import (
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// A failure fails the consumer's step only for an event of a pipeline it is
// a step of that its subscription does not filter out.
func TestIsStep(t *testing.T) {
	tests := []struct {
		consumer, eventType, pipeline string
		want                          bool
	}{
		{events.Deployer, events.ModelTrained, events.ETLMLTraining, true},
		{events.Deployer, events.FeaturesBuilt, events.ModelMonitoring, true},
		// The emulator ignores filters: etl's features.built reaches the deployer.
		{events.Deployer, events.FeaturesBuilt, events.ETLMLTraining, false},
		{events.Trainer, events.FeaturesBuilt, events.ModelMonitoring, false},
		{events.Pmgen, events.RunStarted, events.PreventiveMaintenance, true},
		{events.Pmgen, "cmmsflow.nothing.happened.v1", events.PreventiveMaintenance, true},
		{events.Notifier, events.StepFailed, events.PreventiveMaintenance, false},
		{events.Pmgen, events.RunStarted, events.WeeklyKPIReport, false},
	}
	for _, tt := range tests {
		ev, err := New(tt.eventType, events.Source("t"), "r1", tt.pipeline, "", &eventsv1.StepStarted{})
		if err != nil {
			t.Fatal(err)
		}
		in := &Inbox{Consumer: tt.consumer}
		if got := in.isStep(&ev); got != tt.want {
			t.Errorf("%s on %s of %s: isStep = %v, want %v", tt.consumer, tt.eventType, tt.pipeline, got, tt.want)
		}
	}
}
