// Package events is the one registry of cmmsflow's pipelines, event types,
// topics and subscriptions. Code, the local stack and the Terraform check all
// read it; nothing else names a topic or a subscription.
package events

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event types. Versioned: cmmsflow.<noun>.<verb>.v1.
const (
	PipelineTriggered = "cmmsflow.pipeline.triggered.v1"
	RunStarted        = "cmmsflow.run.started.v1"
	StepStarted       = "cmmsflow.step.started.v1"
	StepSucceeded     = "cmmsflow.step.succeeded.v1"
	StepFailed        = "cmmsflow.step.failed.v1"

	WorkOrdersGenerated = "cmmsflow.workorders.generated.v1" // pmgen → notifier
	RawExtracted        = "cmmsflow.raw.extracted.v1"        // extractor → featurejob
	FeaturesBuilt       = "cmmsflow.features.built.v1"       // featurejob → trainer
	ModelTrained        = "cmmsflow.model.trained.v1"        // trainer → deployer
	ModelDeployed       = "cmmsflow.model.deployed.v1"       // deployer → notifier
	ReportGenerated     = "cmmsflow.report.generated.v1"     // reporter → notifier
	ScheduleMissed      = "cmmsflow.schedule.missed.v1"      // control → notifier
	ModelMonitored      = "cmmsflow.model.monitored.v1"      // deployer → notifier (model_monitoring)
	// DriftDetected is emitted beside model.monitored when a PSI reaches the
	// alert threshold; it is no step's input.
	DriftDetected = "cmmsflow.model.drift_detected.v1" // deployer → notifier
)

// Services, one Cloud Run service each.
const (
	Control    = "control"
	Extractor  = "extractor"
	Featurejob = "featurejob"
	Trainer    = "trainer"
	Deployer   = "deployer"
	Pmgen      = "pmgen"
	Notifier   = "notifier"
	Reporter   = "reporter"
)

// Services lists every service, control first.
var Services = []string{Control, Extractor, Featurejob, Trainer, Deployer, Pmgen, Notifier, Reporter}

// Pipeline ids.
const (
	ETLMLTraining         = "etl_ml_training"
	PreventiveMaintenance = "preventive_maintenance"
	WeeklyKPIReport       = "weekly_kpi_report"
	ModelMonitoring       = "model_monitoring"
)

// Pipeline is one of the old Airflow DAGs, now a chain of steps; a step is
// named after the service that performs it.
type Pipeline struct {
	ID string
	// Aliases are other ids the pipeline answers to wherever an id is taken
	// (APIs, kicks): the old DAG ids. It is listed, stored and published
	// under ID only.
	Aliases     []string
	Description string
	Steps       []string
	// Conf lists the keys a trigger's conf may set; control rejects any
	// other key and any value not in the key's format.
	Conf []ConfKey
	// Timeout is how long a run may go without any step finishing (counted
	// from the run's start, then from its latest step end) before control's
	// stale-run sweeper fails it (control's RUN_TIMEOUTS overrides it).
	Timeout time.Duration
}

// ConfFormat is the format of a conf value.
type ConfFormat string

// Conf value formats.
const (
	ConfDate    ConfFormat = "date"     // YYYY-MM-DD, a calendar day
	ConfISOWeek ConfFormat = "iso_week" // YYYY-Www, an ISO 8601 week (W01..W53)
)

// ConfKey is a key a pipeline's trigger conf may set.
type ConfKey struct {
	Name        string
	Format      ConfFormat
	Description string
}

// ConfKey returns the pipeline's conf key with the given name.
func (p Pipeline) ConfKey(name string) (ConfKey, bool) {
	i := slices.IndexFunc(p.Conf, func(k ConfKey) bool { return k.Name == name })
	if i < 0 {
		return ConfKey{}, false
	}
	return p.Conf[i], true
}

// Pipelines in the order the admin page shows them. Schedules live in the
// scheduler's cron table.
var Pipelines = []Pipeline{
	{
		ID:          ETLMLTraining,
		Description: "Extract assets and work orders, engineer features, train and gate a failure-risk model, deploy it and score the fleet.",
		Steps:       []string{Extractor, Featurejob, Trainer, Deployer, Notifier},
		// featurejob on Dataproc may take DATAPROC_TIMEOUT (75m) by itself.
		Timeout: 2 * time.Hour,
		Conf: []ConfKey{{Name: "snapshot_date", Format: ConfDate,
			Description: "the day the features describe the fleet at (default: the run's logical date)"}},
	},
	{
		ID:          PreventiveMaintenance,
		Aliases:     []string{"preventive_maintenance_generator"}, // the Composer DAG's id
		Description: "Create a work order for every due maintenance plan exactly once, advance the plans and notify technicians.",
		Steps:       []string{Pmgen, Notifier},
		Timeout:     30 * time.Minute,
		Conf: []ConfKey{{Name: "as_of", Format: ConfDate,
			Description: "the day maintenance plans are evaluated for (default: the run's logical date)"}},
	},
	{
		ID:          WeeklyKPIReport,
		Description: "Compute the week's maintenance KPIs, draw the charts, build the HTML and PDF report and email it.",
		Steps:       []string{Reporter, Notifier},
		Timeout:     30 * time.Minute,
		Conf: []ConfKey{{Name: "week", Format: ConfISOWeek,
			Description: "the ISO week to report on (default: the week before the run's logical date)"}},
	},
	{
		ID:          ModelMonitoring,
		Description: "Extract and engineer today's features, score them with the champion and any shadow, measure drift against the training profile and realized performance, promote or retrain, evaluate the alert rules.",
		Steps:       []string{Extractor, Featurejob, Deployer, Notifier},
		Timeout:     2 * time.Hour,
		Conf: []ConfKey{{Name: "snapshot_date", Format: ConfDate,
			Description: "the day the features describe the fleet at (default: the run's logical date)"}},
	},
}

// LookupPipeline returns the pipeline with the given id or alias; callers
// go on with its ID.
func LookupPipeline(id string) (Pipeline, bool) {
	i := slices.IndexFunc(Pipelines, func(p Pipeline) bool { return p.ID == id || slices.Contains(p.Aliases, id) })
	if i < 0 {
		return Pipeline{}, false
	}
	return Pipelines[i], true
}

// StepIndex is the position of step in the pipeline, or -1.
func (p Pipeline) StepIndex(step string) int { return slices.Index(p.Steps, step) }

// Input is the event type that starts step in the pipeline: run-started for
// the first step, else the output of the step before it (the type whose From
// is that step and which step consumes). It is "" for a step not in p.
func (p Pipeline) Input(step string) string {
	i := p.StepIndex(step)
	switch {
	case i < 0:
		return ""
	case i == 0:
		return RunStarted
	}
	for _, t := range Types {
		if t.From == p.Steps[i-1] && slices.ContainsFunc(t.Consumers, func(c Consumer) bool { return c.Service == step && c.For(p.ID) }) {
			return t.Name
		}
	}
	return ""
}

// Output is the event type step emits on success in the pipeline: the input
// of the step after it; "" for the last step and for a step not in p.
func (p Pipeline) Output(step string) string {
	i := p.StepIndex(step)
	if i < 0 || i == len(p.Steps)-1 {
		return ""
	}
	return p.Input(p.Steps[i+1])
}

// Consumer is a service that receives an event type through its own push
// subscription. Pipelines, when set, limits the subscription to those
// pipelines' events (a Pub/Sub subscription filter on the pipeline
// attribute).
type Consumer struct {
	Service   string
	Pipelines []string
}

// For reports whether the consumer receives the pipeline's events.
func (c Consumer) For(pipeline string) bool {
	return len(c.Pipelines) == 0 || slices.Contains(c.Pipelines, pipeline)
}

// Type is an event type with its topic and consumers.
type Type struct {
	Name  string
	Topic string
	// From is the pipeline step whose output the event is (the service that
	// emits it on success), for the events that feed the next step; empty
	// for control's events.
	From      string
	Consumers []Consumer
}

// Types is every event type that has consumers. Each has its own topic.
var Types = []Type{
	{Name: PipelineTriggered, Topic: "pipeline-triggered", Consumers: []Consumer{{Service: Control}}},
	{Name: RunStarted, Topic: "run-started", Consumers: firstSteps()},
	{Name: StepStarted, Topic: "step-started", Consumers: []Consumer{{Service: Control}}},
	{Name: StepSucceeded, Topic: "step-succeeded", Consumers: []Consumer{{Service: Control}}},
	{Name: StepFailed, Topic: "step-failed", Consumers: []Consumer{{Service: Control}, {Service: Notifier}}},
	{Name: WorkOrdersGenerated, Topic: "workorders-generated", From: Pmgen, Consumers: []Consumer{{Service: Notifier}}},
	{Name: RawExtracted, Topic: "raw-extracted", From: Extractor, Consumers: []Consumer{{Service: Featurejob}}},
	{Name: FeaturesBuilt, Topic: "features-built", From: Featurejob, Consumers: []Consumer{
		{Service: Trainer, Pipelines: []string{ETLMLTraining}}, {Service: Deployer, Pipelines: []string{ModelMonitoring}}}},
	{Name: ModelTrained, Topic: "model-trained", From: Trainer, Consumers: []Consumer{{Service: Deployer}}},
	{Name: ModelDeployed, Topic: "model-deployed", From: Deployer, Consumers: []Consumer{{Service: Notifier, Pipelines: []string{ETLMLTraining}}}},
	{Name: ModelMonitored, Topic: "model-monitored", From: Deployer, Consumers: []Consumer{{Service: Notifier, Pipelines: []string{ModelMonitoring}}}},
	{Name: DriftDetected, Topic: "drift-detected", Consumers: []Consumer{{Service: Notifier}}},
	{Name: ReportGenerated, Topic: "report-generated", From: Reporter, Consumers: []Consumer{{Service: Notifier}}},
	{Name: ScheduleMissed, Topic: "schedule-missed", Consumers: []Consumer{{Service: Notifier}}},
}

// firstSteps subscribes the first service of every pipeline to run-started,
// filtered to the pipelines it starts.
func firstSteps() []Consumer {
	var cs []Consumer
	for _, p := range Pipelines {
		i := slices.IndexFunc(cs, func(c Consumer) bool { return c.Service == p.Steps[0] })
		if i < 0 {
			cs = append(cs, Consumer{Service: p.Steps[0]})
			i = len(cs) - 1
		}
		cs[i].Pipelines = append(cs[i].Pipelines, p.ID)
	}
	return cs
}

// LookupType returns the registered event type with the given name.
func LookupType(name string) (Type, bool) {
	i := slices.IndexFunc(Types, func(t Type) bool { return t.Name == name })
	if i < 0 {
		return Type{}, false
	}
	return Types[i], true
}

// TopicOf returns the topic id of an event type; it panics on an unregistered
// type, which is a programming error caught by the registry tests.
func TopicOf(eventType string) string {
	t, ok := LookupType(eventType)
	if !ok {
		panic(fmt.Sprintf("events: unregistered event type %q", eventType))
	}
	return t.Topic
}

// Subscription is one consumer's push subscription to one topic.
type Subscription struct {
	ID              string
	Topic           string
	EventType       string
	Service         string
	Pipelines       []string // empty: every pipeline
	DeadLetterTopic string
}

// Filter is the Pub/Sub subscription filter expression, or "".
func (s Subscription) Filter() string {
	terms := make([]string, len(s.Pipelines))
	for i, p := range s.Pipelines {
		terms[i] = fmt.Sprintf("attributes.pipeline = %q", p)
	}
	return strings.Join(terms, " OR ")
}

// Delivery settings shared by every subscription (Terraform reads the same).
const (
	AckDeadlineSeconds  = 600 // the longest a push request may take before redelivery
	MaxDeliveryAttempts = 10  // then Pub/Sub forwards to the dead-letter topic
	MinBackoffSeconds   = 1
	MaxBackoffSeconds   = 60
)

// Subscriptions lists every push subscription, in a stable order.
func Subscriptions() []Subscription {
	var subs []Subscription
	for _, t := range Types {
		for _, c := range t.Consumers {
			id := t.Topic + "--" + c.Service
			subs = append(subs, Subscription{
				ID:              id,
				Topic:           t.Topic,
				EventType:       t.Name,
				Service:         c.Service,
				Pipelines:       c.Pipelines,
				DeadLetterTopic: id + "--dead-letter",
			})
		}
	}
	return subs
}

// SubscriptionsOf lists the subscriptions that push to service.
func SubscriptionsOf(service string) []Subscription {
	var out []Subscription
	for _, s := range Subscriptions() {
		if s.Service == service {
			out = append(out, s)
		}
	}
	return out
}

// Topics lists every topic id: event topics and dead-letter topics.
func Topics() []string {
	var out []string
	for _, t := range Types {
		out = append(out, t.Topic)
	}
	for _, s := range Subscriptions() {
		out = append(out, s.DeadLetterTopic)
	}
	return out
}

// Source is the CloudEvents source of events emitted by a service.
func Source(service string) string { return "//cmmsflow/" + strings.TrimPrefix(service, "/") }
