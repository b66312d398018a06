package eventing

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
)

// Publisher sends a message to a topic and returns once Pub/Sub has it.
type Publisher interface {
	Publish(ctx context.Context, topic string, m Message) error
}

// PubSubPublisher publishes with the Cloud Pub/Sub client. The client honours
// PUBSUB_EMULATOR_HOST, so the same code talks to the emulator locally.
type PubSubPublisher struct {
	client *pubsub.Client
	mu     sync.Mutex
	topics map[string]*pubsub.Publisher
}

// NewPubSubPublisher wraps client; Close stops its publishers (not the client).
func NewPubSubPublisher(client *pubsub.Client) *PubSubPublisher {
	return &PubSubPublisher{client: client, topics: map[string]*pubsub.Publisher{}}
}

func (p *PubSubPublisher) publisher(topic string) *pubsub.Publisher {
	p.mu.Lock()
	defer p.mu.Unlock()
	pub, ok := p.topics[topic]
	if !ok {
		pub = p.client.Publisher(topic)
		pub.PublishSettings.DelayThreshold = publishDelay
		p.topics[topic] = pub
	}
	return pub
}

// publishDelay is how long the client holds a message to bundle it with
// others for the same topic. The client's default, 10 ms, was spent on every
// hop of a pipeline: the relay publishes an outbox batch all at once and
// waits for every result, so there is nothing to wait for.
const publishDelay = time.Millisecond

// Publish implements Publisher.
func (p *PubSubPublisher) Publish(ctx context.Context, topic string, m Message) error {
	res := p.publisher(topic).Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: m.Attributes})
	if _, err := res.Get(ctx); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// Close flushes and stops every topic publisher.
func (p *PubSubPublisher) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pub := range p.topics {
		pub.Stop()
	}
}
