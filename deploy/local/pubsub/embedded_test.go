package pubsub

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

const testProject = "cmmsflow-test"

// unfiltered is a registry subscription without a filter, and the path its
// service receives pushes on. Other subscriptions of its topic get pushes too;
// tests look at this path only.
func unfiltered(t *testing.T) (events.Subscription, string) {
	t.Helper()
	for _, s := range events.Subscriptions() {
		if s.Filter() == "" {
			return s, "/" + s.Service + PushPath
		}
	}
	t.Fatal("the registry has no unfiltered subscription")
	return events.Subscription{}, ""
}

func TestEmbeddedPushBody(t *testing.T) {
	t.Parallel()
	_, c := startEmbedded(t, Options{Project: testProject})
	rec := newRecorder(t, nil)
	if err := Provision(t.Context(), c, testProject, rec.endpoint); err != nil {
		t.Fatal(err)
	}
	s, path := unfiltered(t)
	attrs := map[string]string{"ce-id": "e-1", "pipeline": events.WeeklyKPIReport, "run_id": "r-1"}
	id := publish(t, c, testProject, s.Topic, `{"hello":"world"}`, attrs)

	rec.waitFor("a push to "+path, 5*time.Second, func([]push) bool { return len(rec.on(path)) >= 1 })
	p := rec.on(path)[0]
	if ct := p.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(p.raw, &body); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(body)); !slices.Equal(keys, []string{"deliveryAttempt", "message", "subscription"}) {
		t.Errorf("body keys = %v", keys)
	}
	var msg map[string]any
	if err := json.Unmarshal(body["message"], &msg); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(msg)); !slices.Equal(keys, []string{"attributes", "data", "messageId", "message_id", "publishTime", "publish_time"}) {
		t.Errorf("message keys = %v", keys)
	}
	data, err := base64.StdEncoding.DecodeString(msg["data"].(string))
	if err != nil || string(data) != `{"hello":"world"}` {
		t.Errorf("data = %q (%v)", data, err)
	}
	if msg["messageId"] != id || msg["message_id"] != id {
		t.Errorf("message ids = %v / %v, want %s", msg["messageId"], msg["message_id"], id)
	}
	pt, err := time.Parse(time.RFC3339Nano, msg["publishTime"].(string))
	if err != nil || time.Since(pt) > time.Minute || msg["publish_time"] != msg["publishTime"] {
		t.Errorf("publish times = %v / %v (%v)", msg["publishTime"], msg["publish_time"], err)
	}
	gotAttrs := map[string]string{}
	for k, v := range msg["attributes"].(map[string]any) {
		gotAttrs[k] = v.(string)
	}
	if !maps.Equal(gotAttrs, attrs) {
		t.Errorf("attributes = %v, want %v", gotAttrs, attrs)
	}
	var sub string
	_ = json.Unmarshal(body["subscription"], &sub)
	if want := subscriptionName(testProject, s.ID); sub != want {
		t.Errorf("subscription = %q, want %q", sub, want)
	}
	if string(body["deliveryAttempt"]) != "1" {
		t.Errorf("deliveryAttempt = %s", body["deliveryAttempt"])
	}
	// And the services' own decoder reads it.
	if p.err != nil || p.msg.PubSubID != id || p.msg.DeliveryAttempt != 1 || string(p.msg.Data) != `{"hello":"world"}` || !maps.Equal(p.msg.Attributes, attrs) {
		t.Errorf("eventing.DecodePush = %+v, %v", p.msg, p.err)
	}
}

func TestEmbeddedRetriesWithBackoffThenAcks(t *testing.T) {
	t.Parallel()
	_, c := startEmbedded(t, Options{Project: testProject})
	s, path := unfiltered(t)
	rec := newRecorder(t, func(p string, n int) int {
		if p == path && n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	const minB = 150 * time.Millisecond
	if err := Provision(t.Context(), c, testProject, rec.endpoint, WithRetryBackoff(minB, 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	id := publish(t, c, testProject, s.Topic, "x", map[string]string{"pipeline": events.ETLMLTraining})

	rec.waitFor("three pushes to "+path, 10*time.Second, func([]push) bool { return len(rec.on(path)) >= 3 })
	time.Sleep(4 * minB) // an unacked message would come back within this
	got := rec.on(path)
	if len(got) != 3 {
		t.Fatalf("%d pushes, want 3 (2 × 503, then 200 acks)", len(got))
	}
	for i, p := range got {
		if p.msg.PubSubID != id || p.msg.DeliveryAttempt != i+1 {
			t.Errorf("push %d: id %s attempt %d", i+1, p.msg.PubSubID, p.msg.DeliveryAttempt)
		}
	}
	gap1, gap2 := got[1].at.Sub(got[0].at), got[2].at.Sub(got[1].at)
	t.Logf("gaps: %v, %v", gap1, gap2)
	if gap1 < minB || gap2 < 2*minB {
		t.Errorf("gaps %v, %v: want ≥ %v then ≥ %v (exponential backoff)", gap1, gap2, minB, 2*minB)
	}
	if gap2 <= gap1 {
		t.Errorf("gaps %v, %v do not grow", gap1, gap2)
	}
}

func TestEmbeddedDeadLetters(t *testing.T) {
	t.Parallel()
	_, c := startEmbedded(t, Options{Project: testProject})
	src, path := unfiltered(t)
	rec := newRecorder(t, func(p string, _ int) int {
		if p == path {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	if err := Provision(t.Context(), c, testProject, rec.endpoint, WithRetryBackoff(10*time.Millisecond, 40*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	tap := subscriptionName(testProject, "dead-letter-tap")
	if _, err := c.SubscriptionAdminClient.CreateSubscription(t.Context(), &pubsubpb.Subscription{
		Name: tap, Topic: topicName(testProject, src.DeadLetterTopic), AckDeadlineSeconds: 10,
	}); err != nil {
		t.Fatal(err)
	}
	attrs := map[string]string{"pipeline": events.PreventiveMaintenance, "ce-id": "poison"}
	id := publish(t, c, testProject, src.Topic, "poison", attrs)

	rec.waitFor("MaxDeliveryAttempts pushes", 10*time.Second, func([]push) bool { return len(rec.on(path)) >= events.MaxDeliveryAttempts })
	dl := pullAll(t, c, tap, 1, 5*time.Second)
	if len(dl) != 1 {
		t.Fatalf("%d messages on the dead-letter topic, want 1", len(dl))
	}
	m := dl[0].Message
	if string(m.Data) != "poison" {
		t.Errorf("dead-lettered data %q", m.Data)
	}
	want := maps.Clone(attrs)
	want[AttrDeadLetterDeliveryCount] = "10"
	want[AttrDeadLetterSubscription] = src.ID
	want[AttrDeadLetterSubscriptionProject] = testProject
	publishTime := m.Attributes[AttrDeadLetterTopicPublishTime]
	if _, err := time.Parse(time.RFC3339, publishTime); err != nil {
		t.Errorf("%s = %q: %v", AttrDeadLetterTopicPublishTime, publishTime, err)
	}
	want[AttrDeadLetterTopicPublishTime] = publishTime
	if !maps.Equal(m.Attributes, want) {
		t.Errorf("dead-letter attributes = %v\nwant %v", m.Attributes, want)
	}

	time.Sleep(300 * time.Millisecond) // far beyond the 40 ms backoff
	got := rec.on(path)
	if len(got) != events.MaxDeliveryAttempts {
		t.Errorf("%d pushes, want exactly %d", len(got), events.MaxDeliveryAttempts)
	}
	for i, p := range got {
		if p.msg.PubSubID != id || p.msg.DeliveryAttempt != i+1 {
			t.Errorf("push %d: id %s attempt %d", i+1, p.msg.PubSubID, p.msg.DeliveryAttempt)
		}
	}
}

func TestEmbeddedFiltersRouteRunStartedByPipeline(t *testing.T) {
	t.Parallel()
	_, c := startEmbedded(t, Options{Project: testProject})
	rec := newRecorder(t, nil)
	if err := Provision(t.Context(), c, testProject, rec.endpoint); err != nil {
		t.Fatal(err)
	}
	checkRunStartedRouting(t, c, testProject, rec)
}

// checkRunStartedRouting publishes one run-started event per pipeline plus one
// for an unknown pipeline, and checks each reaches only its first step.
func checkRunStartedRouting(t *testing.T, c *pubsub.Client, project string, rec *recorder) {
	t.Helper()
	topic := events.TopicOf(events.RunStarted)
	want := map[string]int{} // "path pipeline" → pushes (two pipelines may share a first step)
	for _, p := range events.Pipelines {
		want["/"+p.Steps[0]+"/events "+p.ID]++
	}
	publish(t, c, project, topic, "nobody", map[string]string{"pipeline": "no_such_pipeline"})
	for _, p := range events.Pipelines {
		publish(t, c, project, topic, p.ID, map[string]string{"pipeline": p.ID})
	}
	n := len(events.Pipelines)
	rec.waitFor("one run-started per pipeline", 10*time.Second, func(p []push) bool { return len(p) >= n })
	time.Sleep(500 * time.Millisecond) // room for a wrong delivery to show up
	got := map[string]int{}
	for _, p := range rec.all() {
		pl := p.msg.Attributes["pipeline"]
		if string(p.msg.Data) != pl {
			t.Errorf("push to %s carried pipeline %q with data %q", p.path, pl, p.msg.Data)
		}
		got[p.path+" "+pl]++
	}
	if !maps.Equal(got, want) {
		t.Errorf("pushes (path pipeline → count) = %v, want %v", got, want)
	}
}

func TestEmbeddedPushTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	_, c := startEmbedded(t, Options{Project: testProject, PushTimeout: 200 * time.Millisecond})
	s, path := unfiltered(t)
	rec := newRecorder(t, func(p string, n int) int {
		if p == path && n == 1 {
			time.Sleep(time.Second)
		}
		return http.StatusOK
	})
	if err := Provision(t.Context(), c, testProject, rec.endpoint, WithRetryBackoff(10*time.Millisecond, 10*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	publish(t, c, testProject, s.Topic, "slow", map[string]string{"pipeline": events.ETLMLTraining})
	rec.waitFor("a second attempt", 5*time.Second, func([]push) bool { return len(rec.on(path)) >= 2 })
	got := rec.on(path)
	if got[1].msg.DeliveryAttempt != 2 || got[1].at.Sub(got[0].at) > 900*time.Millisecond {
		t.Errorf("second push: attempt %d, %v after the first; want attempt 2 right after the 200 ms timeout", got[1].msg.DeliveryAttempt, got[1].at.Sub(got[0].at))
	}
	time.Sleep(1200 * time.Millisecond) // the first, slow request ends; nothing more is pushed
	if n := len(rec.on(path)); n != 2 {
		t.Errorf("%d pushes, want 2", n)
	}
}

func TestEmbeddedBoundsConcurrentPushes(t *testing.T) {
	t.Parallel()
	_, c := startEmbedded(t, Options{Project: testProject, MaxConcurrentPushes: 2})
	var inFlight, peak atomic.Int32
	rec := newRecorder(t, func(string, int) int {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		inFlight.Add(-1)
		return http.StatusNoContent
	})
	if err := Provision(t.Context(), c, testProject, rec.endpoint); err != nil {
		t.Fatal(err)
	}
	s, path := unfiltered(t)
	const n = 8
	for i := range n {
		publish(t, c, testProject, s.Topic, "m", map[string]string{"pipeline": events.ETLMLTraining, "i": string(rune('a' + i))})
	}
	rec.waitFor("all messages", 10*time.Second, func([]push) bool { return len(rec.on(path)) >= n })
	if p := peak.Load(); p > 2 || p < 1 {
		t.Errorf("peak concurrent pushes %d, want ≤ 2", p)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	policy := &pubsubpb.RetryPolicy{}
	policy.MinimumBackoff, policy.MaximumBackoff = durationpb.New(ms(100)), durationpb.New(ms(1000))
	for _, tc := range []struct {
		policy  *pubsubpb.RetryPolicy
		attempt int
		want    time.Duration
	}{
		{policy, 1, ms(100)},
		{policy, 2, ms(200)},
		{policy, 3, ms(400)},
		{policy, 4, ms(800)},
		{policy, 5, ms(1000)},
		{policy, 60, ms(1000)},
		{nil, 1, defaultPushMinBackoff},
		{nil, 100, defaultPushMaxBackoff},
		{&pubsubpb.RetryPolicy{}, 1, defaultPolicyMinBackoff},
		{&pubsubpb.RetryPolicy{}, 100, defaultPolicyMaxBackoff},
	} {
		if got := backoff(tc.policy, tc.attempt); got != tc.want {
			t.Errorf("backoff(%v, %d) = %v, want %v", tc.policy, tc.attempt, got, tc.want)
		}
	}
}

func TestAckedStatuses(t *testing.T) {
	t.Parallel()
	for code := 100; code < 600; code++ {
		want := code == 102 || code == 200 || code == 201 || code == 202 || code == 204
		if acked(code) != want {
			t.Errorf("acked(%d) = %v", code, !want)
		}
	}
}
