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
	// Migrator is the service that applies the schema migrations
	// (MIGRATE_ON_START): it keeps the owner login when the others read a
	// mapped source through a read-only one. Empty: logins not checked.
	Migrator string
	// Frontend is the service reached from outside the project (control):
	// private unless the root variable PublicVar is set to true, and then
	// behind an external HTTPS load balancer with IAP. Every other service
	// is private, always. Empty: exposure not checked.
	Frontend, PublicVar string
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
		// services/control applies the migrations when it starts
		// (MIGRATE_ON_START, default true); no other service migrates.
		Migrator: "control",
		// control serves the API and the admin page; control_public opens
		// it to the internet.
		Frontend:  "control",
		PublicVar: "control_public",
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
