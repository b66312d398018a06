package pubsub

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The pusher makes pstest behave like Pub/Sub push for the subscriptions
// that have a push endpoint. pstest never pushes, ignores retry policies,
// redelivers a nack at once and drops a message that has been unleased for
// 10 minutes after its publication, so the pusher:
//
//   - pulls each push subscription (unary Pull) every PollInterval and at
//     once after a Publish;
//   - POSTs the plain push body to the endpoint, at most MaxConcurrentPushes
//     at a time; 102, 200, 201, 202 and 204 ack the message;
//   - on any other answer, a transport error or a timeout, keeps the message
//     leased (ModifyAckDeadline) for the subscription's exponential retry
//     backoff and pushes it again itself, so pstest neither redelivers it
//     early nor drops it, and the pusher counts the delivery attempts;
//   - once the attempts reach the dead-letter policy's maximum, publishes the
//     message to the dead-letter topic with the attributes Pub/Sub adds, and
//     acks it.
//
// Subscription filters are pstest's: its Pull returns only matching messages.
type pusher struct {
	pub         pubsubpb.PublisherClient
	sub         pubsubpb.SubscriberClient
	project     string
	log         *slog.Logger
	http        *http.Client
	poll        time.Duration
	pushTimeout time.Duration
	slots       chan struct{}
	nudge       <-chan struct{}
	wg          sync.WaitGroup

	mu       sync.Mutex
	attempts map[string]int // by subscription + message id, survives a re-pull
}

// Attributes Pub/Sub adds to a message it forwards to a dead-letter topic.
const (
	AttrDeadLetterDeliveryCount       = "CloudPubSubDeadLetterSourceDeliveryCount"
	AttrDeadLetterSubscription        = "CloudPubSubDeadLetterSourceSubscription"
	AttrDeadLetterSubscriptionProject = "CloudPubSubDeadLetterSourceSubscriptionProject"
	AttrDeadLetterTopicPublishTime    = "CloudPubSubDeadLetterSourceTopicPublishTime"
)

const (
	// leaseGrace is added to every lease the pusher takes, so a message never
	// becomes available in pstest while the pusher still owns it.
	leaseGrace = 30 * time.Second
	// Pub/Sub's defaults: push backoff without a retry policy, and the
	// policy's bounds when a field is unset.
	defaultPushMinBackoff   = 100 * time.Millisecond
	defaultPushMaxBackoff   = 60 * time.Second
	defaultPolicyMinBackoff = 10 * time.Second
	defaultPolicyMaxBackoff = 600 * time.Second
	defaultMaxAttempts      = 5
	maxPushResponseDrain    = 64 << 10
)

func newPusher(pub pubsubpb.PublisherClient, sub pubsubpb.SubscriberClient, o Options, nudge <-chan struct{}) *pusher {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // push endpoints are local; never go through a proxy
	var rt http.RoundTripper = tr
	if o.Faults != nil {
		rt = o.Faults.transport(tr)
	}
	return &pusher{
		pub: pub, sub: sub, project: o.Project,
		log:         o.Logger.With("component", "pubsub-pusher"),
		http:        &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		poll:        o.PollInterval,
		pushTimeout: o.PushTimeout,
		slots:       make(chan struct{}, o.MaxConcurrentPushes),
		nudge:       nudge,
		attempts:    map[string]int{},
	}
}

// run sweeps until ctx ends, then waits for the deliveries it started.
func (p *pusher) run(ctx context.Context) {
	defer p.wg.Wait()
	t := time.NewTicker(p.poll)
	defer t.Stop()
	for {
		p.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.nudge:
		}
	}
}

func (p *pusher) close() { p.http.CloseIdleConnections() }

// sweep pulls every push subscription once and starts a delivery for each
// message, as far as push slots are free.
func (p *pusher) sweep(ctx context.Context) {
	subs, err := p.pushSubscriptions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("list subscriptions", "error", err)
		}
		return
	}
	for _, s := range subs {
		free := cap(p.slots) - len(p.slots)
		if free <= 0 {
			return
		}
		//lint:ignore SA1019 pstest would otherwise hold an empty Pull open; the pusher polls.
		resp, err := p.sub.Pull(ctx, &pubsubpb.PullRequest{Subscription: s.Name, MaxMessages: int32(free), ReturnImmediately: true})
		if err != nil {
			if ctx.Err() == nil && status.Code(err) != codes.NotFound {
				p.log.Warn("pull", "subscription", shortName(s.Name), "error", err)
			}
			continue
		}
		for _, rm := range resp.ReceivedMessages {
			if !p.acquire(ctx) {
				return // stopping; the lease lapses with the emulator
			}
			p.wg.Add(1)
			go p.deliver(ctx, s, rm)
		}
	}
}

func (p *pusher) pushSubscriptions(ctx context.Context) ([]*pubsubpb.Subscription, error) {
	var out []*pubsubpb.Subscription
	req := &pubsubpb.ListSubscriptionsRequest{Project: "projects/" + p.project, PageSize: 1000}
	for {
		resp, err := p.sub.ListSubscriptions(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, s := range resp.Subscriptions {
			if s.GetPushConfig().GetPushEndpoint() != "" {
				out = append(out, s)
			}
		}
		if resp.NextPageToken == "" {
			return out, nil
		}
		req.PageToken = resp.NextPageToken
	}
}

func (p *pusher) acquire(ctx context.Context) bool {
	select {
	case p.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *pusher) release() { <-p.slots }

// deliver pushes one message until it is acked or dead-lettered, holding a
// push slot while a request is in flight. It is called holding a slot.
func (p *pusher) deliver(ctx context.Context, s *pubsubpb.Subscription, rm *pubsubpb.ReceivedMessage) {
	defer p.wg.Done()
	key := s.Name + "\x00" + rm.Message.GetMessageId()
	defer func() {
		p.mu.Lock()
		delete(p.attempts, key)
		p.mu.Unlock()
	}()
	log := p.log.With("subscription", shortName(s.Name), "message_id", rm.Message.GetMessageId())
	for {
		p.mu.Lock()
		p.attempts[key]++
		attempt := p.attempts[key]
		p.mu.Unlock()

		timeout := p.timeout(s)
		p.lease(ctx, s, rm, timeout+leaseGrace)
		code, err := p.push(ctx, s, rm, attempt, timeout)
		if err == nil && acked(code) {
			p.ack(ctx, s, rm, log)
			p.release()
			return
		}
		if ctx.Err() != nil {
			p.release()
			return
		}
		why := "status " + strconv.Itoa(code)
		if err != nil {
			why = err.Error()
		}
		if dl := s.GetDeadLetterPolicy(); dl != nil && dl.DeadLetterTopic != "" && attempt >= maxAttempts(dl) {
			if err := p.deadLetter(ctx, s, rm, attempt); err != nil {
				log.Warn("dead-letter publish failed; will retry the push", "topic", shortName(dl.DeadLetterTopic), "error", err)
			} else {
				log.Warn("push failed; dead-lettered", "attempt", attempt, "reason", why, "topic", shortName(dl.DeadLetterTopic))
				p.ack(ctx, s, rm, log)
				p.release()
				return
			}
		}
		wait := backoff(s.GetRetryPolicy(), attempt)
		log.Info("push failed; will retry", "attempt", attempt, "reason", why, "backoff", wait)
		p.lease(ctx, s, rm, wait+leaseGrace)
		p.release()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if !p.acquire(ctx) {
			return
		}
		// Pick up changes to the subscription (endpoint, policies).
		cur, err := p.sub.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: s.Name})
		switch {
		case status.Code(err) == codes.NotFound:
			p.release()
			return // deleted with its messages
		case err != nil:
			log.Warn("get subscription; retrying with the last known settings", "error", err)
		case cur.GetPushConfig().GetPushEndpoint() == "":
			// Now a pull subscription: hand the message back.
			p.lease(ctx, s, rm, 0)
			p.release()
			return
		default:
			s = cur
		}
	}
}

// pushBody is the plain Pub/Sub push request body (no payload unwrapping).
// Both spellings of messageId and publishTime are sent, as Pub/Sub does.
type pushBody struct {
	Message         pushMessage `json:"message"`
	Subscription    string      `json:"subscription"`
	DeliveryAttempt int         `json:"deliveryAttempt,omitempty"`
}

type pushMessage struct {
	Data           string            `json:"data"` // base64
	Attributes     map[string]string `json:"attributes"`
	MessageID      string            `json:"messageId"`
	MessageIDAlt   string            `json:"message_id"`
	PublishTime    string            `json:"publishTime"`
	PublishTimeAlt string            `json:"publish_time"`
	OrderingKey    string            `json:"orderingKey,omitempty"`
}

func newPushBody(s *pubsubpb.Subscription, m *pubsubpb.PubsubMessage, attempt int) pushBody {
	published := m.GetPublishTime().AsTime().UTC().Format(time.RFC3339Nano)
	attrs := m.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	b := pushBody{
		Message: pushMessage{
			Data: base64.StdEncoding.EncodeToString(m.Data), Attributes: attrs,
			MessageID: m.MessageId, MessageIDAlt: m.MessageId,
			PublishTime: published, PublishTimeAlt: published,
			OrderingKey: m.OrderingKey,
		},
		Subscription: s.Name,
	}
	// Pub/Sub sends the attempt count only when dead-lettering is on.
	if s.GetDeadLetterPolicy() != nil {
		b.DeliveryAttempt = attempt
	}
	return b
}

// push POSTs the message and returns the response status.
func (p *pusher) push(ctx context.Context, s *pubsubpb.Subscription, rm *pubsubpb.ReceivedMessage, attempt int, timeout time.Duration) (int, error) {
	body, err := json.Marshal(newPushBody(s, rm.Message, attempt))
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.PushConfig.PushEndpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cmmsflow-local-pubsub-pusher")
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxPushResponseDrain))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// acked reports whether a push response status acknowledges the message.
func acked(code int) bool {
	switch code {
	case 102, 200, 201, 202, 204:
		return true
	}
	return false
}

func (p *pusher) timeout(s *pubsubpb.Subscription) time.Duration {
	if p.pushTimeout > 0 {
		return p.pushTimeout
	}
	if s.AckDeadlineSeconds > 0 {
		return time.Duration(s.AckDeadlineSeconds) * time.Second
	}
	return 10 * time.Second
}

// lease sets the message's ack deadline to d from now, rounded up to whole
// seconds; 0 releases it (a nack).
func (p *pusher) lease(ctx context.Context, s *pubsubpb.Subscription, rm *pubsubpb.ReceivedMessage, d time.Duration) {
	secs := int32(math.Ceil(d.Seconds()))
	_, err := p.sub.ModifyAckDeadline(ctx, &pubsubpb.ModifyAckDeadlineRequest{
		Subscription: s.Name, AckIds: []string{rm.AckId}, AckDeadlineSeconds: secs,
	})
	if err != nil && ctx.Err() == nil && status.Code(err) != codes.NotFound {
		p.log.Warn("modify ack deadline", "subscription", shortName(s.Name), "error", err)
	}
}

func (p *pusher) ack(ctx context.Context, s *pubsubpb.Subscription, rm *pubsubpb.ReceivedMessage, log *slog.Logger) {
	_, err := p.sub.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: s.Name, AckIds: []string{rm.AckId}})
	if err != nil && ctx.Err() == nil && status.Code(err) != codes.NotFound {
		log.Warn("acknowledge", "error", err)
	}
}

// deadLetter publishes the message to the subscription's dead-letter topic
// with its data and attributes plus the attributes Pub/Sub adds.
func (p *pusher) deadLetter(ctx context.Context, s *pubsubpb.Subscription, rm *pubsubpb.ReceivedMessage, attempt int) error {
	m := rm.Message
	attrs := maps.Clone(m.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs[AttrDeadLetterDeliveryCount] = strconv.Itoa(attempt)
	attrs[AttrDeadLetterSubscription] = shortName(s.Name)
	attrs[AttrDeadLetterSubscriptionProject] = projectOf(s.Name)
	attrs[AttrDeadLetterTopicPublishTime] = m.GetPublishTime().AsTime().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	_, err := p.pub.Publish(ctx, &pubsubpb.PublishRequest{
		Topic:    s.DeadLetterPolicy.DeadLetterTopic,
		Messages: []*pubsubpb.PubsubMessage{{Data: m.Data, Attributes: attrs, OrderingKey: m.OrderingKey}},
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", s.DeadLetterPolicy.DeadLetterTopic, err)
	}
	return nil
}

func maxAttempts(dl *pubsubpb.DeadLetterPolicy) int {
	if dl.MaxDeliveryAttempts <= 0 {
		return defaultMaxAttempts
	}
	return int(dl.MaxDeliveryAttempts)
}

// backoff is the wait after the attempt-th failed delivery: the policy's
// minimum, doubled per further attempt, capped at its maximum.
func backoff(rp *pubsubpb.RetryPolicy, attempt int) time.Duration {
	lo, hi := defaultPushMinBackoff, defaultPushMaxBackoff
	if rp != nil {
		lo, hi = defaultPolicyMinBackoff, defaultPolicyMaxBackoff
		if rp.MinimumBackoff != nil {
			lo = rp.MinimumBackoff.AsDuration()
		}
		if rp.MaximumBackoff != nil {
			hi = rp.MaximumBackoff.AsDuration()
		}
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// projectOf is the project id in a resource name projects/P/...
func projectOf(name string) string {
	rest, ok := strings.CutPrefix(name, "projects/")
	if !ok {
		return ""
	}
	p, _, _ := strings.Cut(rest, "/")
	return p
}
