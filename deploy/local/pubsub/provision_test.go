package pubsub

import (
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/iterator"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

func TestProvisionIsIdempotent(t *testing.T) {
	t.Parallel()
	_, c := startEmbedded(t, Options{Project: testProject})
	first := func(service string) string { return "http://127.0.0.1:1/" + service }
	second := func(service string) string { return "http://127.0.0.1:2/" + service + "/" } // trailing slash is trimmed

	// A stale subscription with the wrong filter must be recreated.
	stale := events.SubscriptionsOf(events.Pmgen)[0]
	for _, topic := range []string{stale.Topic, stale.DeadLetterTopic} {
		if _, err := c.TopicAdminClient.CreateTopic(t.Context(), &pubsubpb.Topic{Name: topicName(testProject, topic)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(t.Context(), &pubsubpb.Subscription{
		Name: subscriptionName(testProject, stale.ID), Topic: topicName(testProject, stale.Topic),
		Filter: `attributes.pipeline = "stale"`, AckDeadlineSeconds: 10,
	}); err != nil {
		t.Fatal(err)
	}

	if err := Provision(t.Context(), c, testProject, first); err != nil {
		t.Fatal(err)
	}
	checkProvisioned(t, c, testProject, func(s events.Subscription) string { return first(s.Service) + "/events" }, events.MinBackoffSeconds*time.Second, events.MaxBackoffSeconds*time.Second)
	if err := Provision(t.Context(), c, testProject, first); err != nil {
		t.Fatalf("second run: %v", err)
	}
	checkProvisioned(t, c, testProject, func(s events.Subscription) string { return first(s.Service) + "/events" }, events.MinBackoffSeconds*time.Second, events.MaxBackoffSeconds*time.Second)
	// Changed endpoints and backoff are updated in place.
	if err := Provision(t.Context(), c, testProject, second, WithRetryBackoff(time.Second, 5*time.Second)); err != nil {
		t.Fatalf("third run: %v", err)
	}
	checkProvisioned(t, c, testProject, func(s events.Subscription) string { return "http://127.0.0.1:2/" + s.Service + "/events" }, time.Second, 5*time.Second)
}

func TestProvisionNeedsEveryEndpoint(t *testing.T) {
	t.Parallel()
	_, c := startEmbedded(t, Options{Project: testProject})
	err := Provision(t.Context(), c, testProject, func(service string) string {
		if service == events.Reporter {
			return ""
		}
		return "http://127.0.0.1:1/" + service
	})
	if err == nil {
		t.Fatal("Provision with no endpoint for reporter succeeded")
	}
}

// checkProvisioned compares the emulator's topics and subscriptions with the
// registry.
func checkProvisioned(t *testing.T, c *pubsub.Client, project string, pushURL func(events.Subscription) string, minB, maxB time.Duration) {
	t.Helper()
	var topics []string
	it := c.TopicAdminClient.ListTopics(t.Context(), &pubsubpb.ListTopicsRequest{Project: "projects/" + project})
	for {
		tp, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, shortName(tp.Name))
	}
	for _, want := range events.Topics() {
		if !slices.Contains(topics, want) {
			t.Errorf("topic %s missing (have %v)", want, topics)
		}
	}
	for _, s := range events.Subscriptions() {
		got, err := c.SubscriptionAdminClient.GetSubscription(t.Context(), &pubsubpb.GetSubscriptionRequest{Subscription: subscriptionName(project, s.ID)})
		if err != nil {
			t.Errorf("subscription %s: %v", s.ID, err)
			continue
		}
		if got.Topic != topicName(project, s.Topic) || got.Filter != s.Filter() || got.AckDeadlineSeconds != events.AckDeadlineSeconds {
			t.Errorf("subscription %s: topic %s filter %q ack deadline %d", s.ID, got.Topic, got.Filter, got.AckDeadlineSeconds)
		}
		if ep := got.GetPushConfig().GetPushEndpoint(); ep != pushURL(s) {
			t.Errorf("subscription %s: push endpoint %s, want %s", s.ID, ep, pushURL(s))
		}
		if rp := got.GetRetryPolicy(); rp.GetMinimumBackoff().AsDuration() != minB || rp.GetMaximumBackoff().AsDuration() != maxB {
			t.Errorf("subscription %s: retry policy %v", s.ID, rp)
		}
		if dl := got.GetDeadLetterPolicy(); dl.GetDeadLetterTopic() != topicName(project, s.DeadLetterTopic) || dl.GetMaxDeliveryAttempts() != events.MaxDeliveryAttempts {
			t.Errorf("subscription %s: dead-letter policy %v", s.ID, dl)
		}
	}
}
