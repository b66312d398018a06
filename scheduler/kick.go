package scheduler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// A kick is the message a cron tick publishes. Cloud Scheduler's Pub/Sub
// target publishes static data and attributes only, so a kick carries no
// ce-id, ce-time or per-run id: the receiver takes the Pub/Sub message id and
// publish time instead (as Eventarc does, see eventing.FromMessage), and
// control names the run after the tick Entry.Prev(publish time).
const (
	// KickSource is the kick's ce-source.
	KickSource = "//cmmsflow/scheduler"
	// KickRunID is the kick's run_id attribute: a placeholder, control names
	// a scheduled run scheduled__<tick>.
	KickRunID = "scheduled"
	// KickTriggerSource is PipelineTriggered.source in a kick's data.
	KickTriggerSource = "scheduled"
)

// KickTopic is the topic kicks are published to.
func KickTopic() string { return events.TopicOf(events.PipelineTriggered) }

// kickData is the kick's data, compact JSON so it is byte-for-byte stable
// (protojson varies its whitespace on purpose) for Terraform plans.
var kickData = func() []byte {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(&eventsv1.PipelineTriggered{Source: KickTriggerSource})
	if err != nil {
		panic(fmt.Sprintf("scheduler: encode kick data: %v", err))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		panic(fmt.Sprintf("scheduler: compact kick data: %v", err))
	}
	return buf.Bytes()
}()

// KickMessage is the static message that kicks pipeline: a
// cmmsflow.pipeline.triggered.v1 CloudEvent in Pub/Sub binary mode without
// ce-id and ce-time. It is the one definition of a kick, for the local cron
// publisher and for the Cloud Scheduler jobs. It panics on a pipeline id that
// is not in events.Pipelines, a programming error.
func KickMessage(pipeline string) eventing.Message {
	if _, ok := events.LookupPipeline(pipeline); !ok {
		panic(fmt.Sprintf("scheduler: kick for unknown pipeline %q", pipeline))
	}
	return eventing.Message{
		Attributes: map[string]string{
			eventing.AttrType:        events.PipelineTriggered,
			eventing.AttrSource:      KickSource,
			eventing.AttrSpecVersion: "1.0",
			eventing.AttrContentType: "application/json",
			eventing.AttrPipeline:    pipeline,
			eventing.AttrRunID:       KickRunID,
		},
		Data: bytes.Clone(kickData),
	}
}

// JobID is the id of pipeline's Cloud Scheduler job in a deployment whose
// Terraform name_prefix is prefix: the prefix, a hyphen and the pipeline id
// with hyphens for underscores, e.g. cmmsflow-etl-ml-training. Pipeline ids
// have no hyphens, so distinct pipelines get distinct ids. It is the one form
// of a job id: deploy/terraform/scheduler.tf names the jobs so, and
// deploy/local/terraformcheck checks it does.
func JobID(prefix, pipeline string) string {
	return prefix + "-" + strings.ReplaceAll(pipeline, "_", "-")
}
