// Package pubsubtest runs an in-process Pub/Sub (the client library's pstest)
// for tests, with every registry topic created and a way to read what was
// published to a topic.
package pubsubtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
)

// Project is the project id of the test server.
const Project = "test-project"

// Server is a pstest server with a connected client.
type Server struct {
	*pstest.Server
	Client *pubsub.Client
}

// New starts a server with every topic of the registry, closed at test end.
func New(t testing.TB) *Server {
	t.Helper()
	srv := pstest.NewServer()
	client, err := eventing.EmulatorClient(context.Background(), srv.Addr, Project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		srv.Close()
	})
	for _, topic := range events.Topics() {
		if _, err := client.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: TopicName(topic)}); err != nil {
			t.Fatalf("create topic %s: %v", topic, err)
		}
	}
	return &Server{Server: srv, Client: client}
}

// TopicName is the full resource name of topic.
func TopicName(topic string) string { return "projects/" + Project + "/topics/" + topic }

// Subscribe creates a pull subscription on topic and returns a reader of its
// messages. Create it before publishing: Pub/Sub keeps no messages for
// subscriptions made later.
func (s *Server) Subscribe(t testing.TB, topic string) *Reader {
	t.Helper()
	name := "projects/" + Project + "/subscriptions/test-" + topic + "-" + time.Now().Format("150405.000000000")
	if _, err := s.Client.SubscriptionAdminClient.CreateSubscription(context.Background(), &pubsubpb.Subscription{
		Name: name, Topic: TopicName(topic), AckDeadlineSeconds: 60,
	}); err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	r := &Reader{ch: make(chan *pubsub.Message, 1000)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = s.Client.Subscriber(name).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
			m.Ack()
			r.ch <- m
		})
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

// Reader yields the messages of a subscription.
type Reader struct{ ch chan *pubsub.Message }

// Next waits up to d for the next message; nil if none came.
func (r *Reader) Next(d time.Duration) *pubsub.Message {
	select {
	case m := <-r.ch:
		return m
	case <-time.After(d):
		return nil
	}
}
