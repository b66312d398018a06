package pubsub

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// PushPath is the path every service receives pushed events on.
const PushPath = "/events"

// ProvisionOption adjusts Provision; the defaults are the registry's.
type ProvisionOption func(*provisionConfig)

type provisionConfig struct {
	minBackoff, maxBackoff time.Duration
	// pushURL maps a subscription and its service URL to the push endpoint.
	pushURL func(sub events.Subscription, serviceURL string) string
}

// WithRetryBackoff replaces the registry's retry backoff (events.Min/
// MaxBackoffSeconds), so tests need not wait seconds between attempts. The
// embedded emulator honours any positive durations; Pub/Sub itself allows
// 0–600 s.
func WithRetryBackoff(min, max time.Duration) ProvisionOption {
	return func(c *provisionConfig) { c.minBackoff, c.maxBackoff = min, max }
}

func withPushURL(f func(events.Subscription, string) string) ProvisionOption {
	return func(c *provisionConfig) { c.pushURL = f }
}

// Provision creates every topic of events.Topics() and every push
// subscription of events.Subscriptions() in project: push endpoint
// endpoint(service) + "/events", the subscription's filter, the registry's
// ack deadline, retry backoff and dead-letter policy. It is idempotent: an
// existing topic is kept, an existing subscription is updated to match (or,
// when its topic or filter differ, which Pub/Sub cannot update, deleted and
// created again).
//
// The Cloud SDK emulator stores filters but does not apply them: there, call
// Emulator.Provision, which puts the filters back with the filter gate.
func Provision(ctx context.Context, client *pubsub.Client, project string, endpoint func(service string) string, opts ...ProvisionOption) error {
	cfg := provisionConfig{
		minBackoff: events.MinBackoffSeconds * time.Second,
		maxBackoff: events.MaxBackoffSeconds * time.Second,
		pushURL:    func(_ events.Subscription, serviceURL string) string { return serviceURL },
	}
	for _, o := range opts {
		o(&cfg)
	}
	for _, t := range events.Topics() {
		_, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicName(project, t)})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("pubsub: create topic %s: %w", t, err)
		}
	}
	for _, s := range events.Subscriptions() {
		base := strings.TrimRight(endpoint(s.Service), "/")
		if base == "" {
			return fmt.Errorf("pubsub: no endpoint for service %q (subscription %s)", s.Service, s.ID)
		}
		want := &pubsubpb.Subscription{
			Name:               subscriptionName(project, s.ID),
			Topic:              topicName(project, s.Topic),
			PushConfig:         &pubsubpb.PushConfig{PushEndpoint: cfg.pushURL(s, base) + PushPath},
			AckDeadlineSeconds: events.AckDeadlineSeconds,
			Filter:             s.Filter(),
			RetryPolicy: &pubsubpb.RetryPolicy{
				MinimumBackoff: durationpb.New(cfg.minBackoff),
				MaximumBackoff: durationpb.New(cfg.maxBackoff),
			},
			DeadLetterPolicy: &pubsubpb.DeadLetterPolicy{
				DeadLetterTopic:     topicName(project, s.DeadLetterTopic),
				MaxDeliveryAttempts: events.MaxDeliveryAttempts,
			},
		}
		if err := ensureSubscription(ctx, client, want); err != nil {
			return fmt.Errorf("pubsub: subscription %s: %w", s.ID, err)
		}
	}
	return nil
}

func ensureSubscription(ctx context.Context, client *pubsub.Client, want *pubsubpb.Subscription) error {
	// The Cloud SDK emulator accepts any filter text; check it as Pub/Sub would.
	if want.Filter != "" {
		if err := pstest.ValidateFilter(want.Filter); err != nil {
			return fmt.Errorf("bad filter %q: %w", want.Filter, err)
		}
	}
	subs := client.SubscriptionAdminClient
	_, err := subs.CreateSubscription(ctx, want)
	if err == nil {
		return nil
	}
	if status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create: %w", err)
	}
	got, err := subs.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: want.Name})
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	if got.Topic != want.Topic || got.Filter != want.Filter {
		if err := subs.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: want.Name}); err != nil && status.Code(err) != codes.NotFound {
			return fmt.Errorf("delete to recreate with topic %s, filter %q: %w", want.Topic, want.Filter, err)
		}
		if _, err := subs.CreateSubscription(ctx, want); err != nil {
			return fmt.Errorf("recreate: %w", err)
		}
		return nil
	}
	var mask []string
	if got.GetPushConfig().GetPushEndpoint() != want.PushConfig.PushEndpoint {
		mask = append(mask, "push_config")
	}
	if got.AckDeadlineSeconds != want.AckDeadlineSeconds {
		mask = append(mask, "ack_deadline_seconds")
	}
	if !proto.Equal(got.RetryPolicy, want.RetryPolicy) {
		mask = append(mask, "retry_policy")
	}
	if !proto.Equal(got.DeadLetterPolicy, want.DeadLetterPolicy) {
		mask = append(mask, "dead_letter_policy")
	}
	if len(mask) == 0 {
		return nil
	}
	_, err = subs.UpdateSubscription(ctx, &pubsubpb.UpdateSubscriptionRequest{
		Subscription: want,
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: mask},
	})
	if err != nil {
		return fmt.Errorf("update %s: %w", strings.Join(mask, ", "), err)
	}
	return nil
}

func topicName(project, id string) string { return "projects/" + project + "/topics/" + id }
func subscriptionName(project, id string) string {
	return "projects/" + project + "/subscriptions/" + id
}

// shortName is the last path element of a resource name.
func shortName(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }
