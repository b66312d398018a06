package pubsub

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

// push is one request an endpoint received.
type push struct {
	path   string
	at     time.Time
	header http.Header
	raw    []byte
	msg    eventing.Message // as the services decode it
	err    error
}

// recorder is an httptest server standing in for every service: path
// /<service>/events. respond picks the status for the n-th push (1-based) on
// a path; nil means 204.
type recorder struct {
	t       *testing.T
	srv     *httptest.Server
	respond func(path string, n int) int

	mu     sync.Mutex
	pushes []push
	byPath map[string]int
	wake   chan struct{}
}

func newRecorder(t *testing.T, respond func(path string, n int) int) *recorder {
	t.Helper()
	r := &recorder{t: t, respond: respond, byPath: map[string]int{}, wake: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(raw))
	msg, err := eventing.DecodePush(req, 1<<20)
	r.mu.Lock()
	r.pushes = append(r.pushes, push{path: req.URL.Path, at: time.Now(), header: req.Header.Clone(), raw: raw, msg: msg, err: err})
	r.byPath[req.URL.Path]++
	n := r.byPath[req.URL.Path]
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	code := http.StatusNoContent
	if r.respond != nil {
		code = r.respond(req.URL.Path, n)
	}
	w.WriteHeader(code)
}

// endpoint is the service URL function for Provision.
func (r *recorder) endpoint(service string) string { return r.srv.URL + "/" + service }

func (r *recorder) all() []push {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]push(nil), r.pushes...)
}

// on returns the pushes to path.
func (r *recorder) on(path string) []push {
	var out []push
	for _, p := range r.all() {
		if p.path == path {
			out = append(out, p)
		}
	}
	return out
}

// waitFor waits until cond holds for the pushes so far, or fails the test.
func (r *recorder) waitFor(what string, timeout time.Duration, cond func([]push) bool) []push {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		if got := r.all(); cond(got) {
			return got
		}
		select {
		case <-r.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			got := r.all()
			var paths []string
			for _, p := range got {
				paths = append(paths, p.path)
			}
			r.t.Fatalf("timed out after %v waiting for %s; %d pushes: %v", timeout, what, len(got), paths)
		}
	}
}

func startEmbedded(t *testing.T, o Options) (*Emulator, *pubsub.Client) {
	t.Helper()
	if o.LogWriter == nil {
		o.LogWriter = testLog{t}
	}
	e, err := StartEmbedded(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	c, err := e.NewClient(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return e, c
}

func publish(t *testing.T, c *pubsub.Client, project, topic string, data string, attrs map[string]string) string {
	t.Helper()
	resp, err := c.TopicAdminClient.Publish(t.Context(), &pubsubpb.PublishRequest{
		Topic:    topicName(project, topic),
		Messages: []*pubsubpb.PubsubMessage{{Data: []byte(data), Attributes: attrs}},
	})
	if err != nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
	return resp.MessageIds[0]
}

// pullAll pulls what a pull subscription holds, waiting up to timeout for at
// least want messages, and acks them.
func pullAll(t *testing.T, c *pubsub.Client, sub string, want int, timeout time.Duration) []*pubsubpb.ReceivedMessage {
	t.Helper()
	var got []*pubsubpb.ReceivedMessage
	deadline := time.Now().Add(timeout)
	for len(got) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		resp, err := c.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{Subscription: sub, MaxMessages: 100})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			t.Fatalf("pull %s: %v", sub, err)
		}
		for _, m := range resp.ReceivedMessages {
			got = append(got, m)
			if err := c.SubscriptionAdminClient.Acknowledge(t.Context(), &pubsubpb.AcknowledgeRequest{Subscription: sub, AckIds: []string{m.AckId}}); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
	}
	return got
}

// testLog sends emulator output to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
