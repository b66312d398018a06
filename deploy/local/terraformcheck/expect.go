package terraformcheck

import (
	"fmt"

	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

// Expect is what the Terraform must provide: the code's view of the system.
type Expect struct {
	Services      []string              // each its own Cloud Run service and service account
	EventTopics   []string              // one per event type with consumers
	Topics        []string              // EventTopics and every dead-letter topic
	Subscriptions []events.Subscription // push subscriptions
	Delivery      Delivery
	TimeZone      string            // of the cron table
	Schedules     map[string]string // pipeline → 5-field cron
	KickTopic     string
	Kicks         map[string]Kick // pipeline → the message its job publishes
	// JobID is the id of a pipeline's Cloud Scheduler job under the root
	// module's name_prefix (scheduler.JobID); nil: ids not checked.
	JobID func(namePrefix, pipeline string) string
	// Migrator is the service that would apply the schema migrations when
	// it starts (MIGRATE_ON_START, default true): it must run with
	// MIGRATE_ON_START=false, since a migrate job applies them as the owner
	// and every service connects as its own IAM login (source.go,
	// migrate.go). Empty: logins and the migrate job not checked.
	Migrator string
	// Frontend is the service reached from outside the project (control):
	// private unless the root variable PublicVar is set to true, and then
	// behind an external HTTPS load balancer with IAP. Every other service
	// is private, always. Empty: exposure not checked.
	Frontend, PublicVar string
	// Alerts are the alert policies the deployment must have, Dashboard
	// the Prometheus metrics its dashboard must chart. Nil: not checked.
	Alerts    []Alert
	Dashboard []string
}

// Alert is an alert policy the deployment must have: one whose PromQL
// condition reads Metric with every matcher of Matchers.
type Alert struct {
	Name     string
	Metric   string   // Prometheus name
	Matchers []string // label matchers the query must hold, e.g. state="failed"
}

// Metric is an OpenTelemetry instrument of the services and the name the
// Prometheus exporter of libs/telemetry gives it (what Cloud Monitoring's
// PromQL, through Managed Service for Prometheus, knows it by).
type Metric struct {
	OTel, Unit string
	Kind       string // counter, histogram or gauge
	Prom       string // for a histogram, the base of _bucket, _sum, _count
}

// Metrics are the instruments the alerts and the dashboard read: the event
// and outbox metrics of libs/eventing (telemetry.go, outbox.go) and the run,
// step and schedule metrics (cmmsflow.runs.*, cmmsflow.steps.duration,
// cmmsflow.schedule.*) recorded by control.
var Metrics = []Metric{
	{"cmmsflow.runs.finished", "{run}", "counter", "cmmsflow_runs_finished_total"},
	{"cmmsflow.runs.duration", "s", "histogram", "cmmsflow_runs_duration_seconds"},
	{"cmmsflow.steps.duration", "s", "histogram", "cmmsflow_steps_duration_seconds"},
	{"cmmsflow.schedule.lag", "s", "histogram", "cmmsflow_schedule_lag_seconds"},
	{"cmmsflow.schedule.missed", "{tick}", "counter", "cmmsflow_schedule_missed_total"},
	{"cmmsflow.runs.queued", "{run}", "gauge", "cmmsflow_runs_queued"},
	{"cmmsflow.events.dead_letters", "{event}", "counter", "cmmsflow_events_dead_letters_total"},
	{"cmmsflow.outbox.pending", "{event}", "gauge", "cmmsflow_outbox_pending"},
	{"cmmsflow.outbox.oldest_pending.age", "s", "gauge", "cmmsflow_outbox_oldest_pending_age_seconds"},
}

// promName is the Prometheus name of the OTel instrument.
func promName(otel string) string {
	for _, m := range Metrics {
		if m.OTel == otel {
			return m.Prom
		}
	}
	panic("terraformcheck: no metric " + otel)
}

// RequestCount is Cloud Run's run.googleapis.com/request_count in Cloud
// Monitoring's PromQL.
const RequestCount = "run_googleapis_com:request_count"

// alerts are the alert policies issue 16 asks for.
func alerts() []Alert {
	return []Alert{
		{"failed run", promName("cmmsflow.runs.finished"), []string{`state="failed"`}},
		{"missed schedule", promName("cmmsflow.schedule.missed"), nil},
		{"dead letter", promName("cmmsflow.events.dead_letters"), nil},
		{"outbox backlog", promName("cmmsflow.outbox.oldest_pending.age"), nil},
		{"5xx answers", RequestCount, []string{`response_code_class="5xx"`}},
	}
}

// dashboard lists every metric of Metrics and RequestCount.
func dashboard() []string {
	out := []string{RequestCount}
	for _, m := range Metrics {
		out = append(out, m.Prom)
	}
	return out
}

// Delivery is the registry's delivery settings.
type Delivery struct {
	AckDeadlineSeconds, MaxDeliveryAttempts, MinBackoffSeconds, MaxBackoffSeconds int
}

// Kick is a Cloud Scheduler job's static message.
type Kick struct {
	Attributes map[string]string
	Data       string
}

// FromCode is the expectation of the code in this repository.
func FromCode() (Expect, error) {
	table, err := scheduler.Load()
	if err != nil {
		return Expect{}, fmt.Errorf("cron table: %w", err)
	}
	exp := Expect{
		Services:      events.Services,
		Topics:        events.Topics(),
		Subscriptions: events.Subscriptions(),
		Delivery: Delivery{
			AckDeadlineSeconds: events.AckDeadlineSeconds, MaxDeliveryAttempts: events.MaxDeliveryAttempts,
			MinBackoffSeconds: events.MinBackoffSeconds, MaxBackoffSeconds: events.MaxBackoffSeconds,
		},
		TimeZone:  table.TimeZone,
		Schedules: map[string]string{},
		KickTopic: scheduler.KickTopic(),
		Kicks:     map[string]Kick{},
		JobID:     scheduler.JobID,
		// services/control would apply the migrations when it starts
		// (MIGRATE_ON_START, default true); no other service migrates.
		Migrator: "control",
		// control serves the API and the admin page; control_public opens
		// it to the internet.
		Frontend:  "control",
		PublicVar: "control_public",
		Alerts:    alerts(),
		Dashboard: dashboard(),
	}
	for _, t := range events.Types {
		exp.EventTopics = append(exp.EventTopics, t.Topic)
	}
	for _, en := range table.Entries {
		exp.Schedules[en.Pipeline] = en.Schedule
		msg := scheduler.KickMessage(en.Pipeline)
		exp.Kicks[en.Pipeline] = Kick{Attributes: msg.Attributes, Data: string(msg.Data)}
	}
	return exp, nil
}
