package pubsub

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// DeliveryFaults makes the local push path misbehave the way Pub/Sub is
// allowed to, for chaos tests: it delivers some messages twice (a
// redelivery of a message already acked, some time later) and holds some
// back so that they arrive after messages published later. It sits in front
// of the services: in the embedded pusher's HTTP client, and in the filter
// gate of the Cloud SDK emulator, which then carries every subscription.
//
// It is off unless set in Options.Faults, and idle until Enable. Everything
// it sends goes to the same loopback endpoints the emulator pushes to.
type DeliveryFaults struct {
	// DuplicateRate is the probability that an acked push is delivered again
	// after a random wait of up to MaxDelay.
	DuplicateRate float64
	// DelayRate is the probability that a push is held back for a random
	// wait of up to MaxDelay before it is forwarded.
	DelayRate float64
	// MaxDelay bounds both waits; default 2 s.
	MaxDelay time.Duration
	// Seed makes the choices repeatable (as far as timing allows).
	Seed uint64

	once sync.Once
	mu   sync.Mutex
	rng  *rand.Rand
	on   bool
	// lastPublished is the latest publish time forwarded per subscription,
	// to tell when a held-back message really arrived out of order.
	lastPublished map[string]time.Time
	counts        FaultCounts
	pending       sync.WaitGroup
	ctx           context.Context
	cancel        context.CancelFunc
}

// FaultCounts is what DeliveryFaults did.
type FaultCounts struct {
	// Duplicates is how many extra deliveries reached an endpoint (answered
	// with a 2xx, so the service processed the copy).
	Duplicates int
	// DuplicatesDropped is how many extra deliveries were given up (the
	// endpoint kept failing, or the emulator stopped).
	DuplicatesDropped int
	// Delayed is how many pushes were held back.
	Delayed int
	// Reordered is how many held-back pushes were forwarded after a message
	// of the same subscription published later than them.
	Reordered int
}

func (f *DeliveryFaults) init() {
	f.once.Do(func() {
		f.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
		f.lastPublished = map[string]time.Time{}
		if f.MaxDelay <= 0 {
			f.MaxDelay = 2 * time.Second
		}
		f.ctx, f.cancel = context.WithCancel(context.Background())
	})
}

// Enable turns the faults on or off. Held-back and duplicate deliveries
// already scheduled still happen; Wait waits for them.
func (f *DeliveryFaults) Enable(on bool) {
	f.init()
	f.mu.Lock()
	f.on = on
	f.mu.Unlock()
}

// Counts returns what was injected so far.
func (f *DeliveryFaults) Counts() FaultCounts {
	f.init()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// Wait waits until every scheduled duplicate has been delivered or given
// up, or ctx ends.
func (f *DeliveryFaults) Wait(ctx context.Context) error {
	f.init()
	done := make(chan struct{})
	go func() { f.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop abandons scheduled duplicates (the emulator is stopping).
func (f *DeliveryFaults) stop() {
	f.init()
	f.cancel()
}

// decide returns whether to hold this push back and for how long, and
// whether (and after how long) to deliver it again once acked.
func (f *DeliveryFaults) decide() (delay, dupAfter time.Duration, dup bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		return 0, 0, false
	}
	if f.rng.Float64() < f.DelayRate {
		delay = time.Duration(f.rng.Int64N(int64(f.MaxDelay))) + f.MaxDelay/10
	}
	if f.rng.Float64() < f.DuplicateRate {
		dup = true
		dupAfter = time.Duration(f.rng.Int64N(int64(f.MaxDelay)))
	}
	return delay, dupAfter, dup
}

// transport wraps next (the HTTP transport pushes go through).
func (f *DeliveryFaults) transport(next http.RoundTripper) http.RoundTripper {
	f.init()
	return &faultyTransport{f: f, next: next}
}

type faultyTransport struct {
	f    *DeliveryFaults
	next http.RoundTripper
}

// pushMeta is what the faults read of a push body.
type pushMeta struct {
	Subscription string `json:"subscription"`
	Message      struct {
		PublishTime time.Time `json:"publishTime"`
	} `json:"message"`
}

func (t *faultyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f := t.f
	delay, dupAfter, dup := f.decide()
	if delay == 0 && !dup {
		return t.next.RoundTrip(req)
	}
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	var meta pushMeta
	_ = json.Unmarshal(body, &meta)
	if delay > 0 {
		f.mu.Lock()
		f.counts.Delayed++
		f.mu.Unlock()
		select {
		case <-req.Context().Done():
			return nil, req.Context().Err()
		case <-time.After(delay):
		}
	}
	f.forwarded(meta, delay > 0)
	resp, err := t.next.RoundTrip(cloneWithBody(req.Context(), req, body))
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 || !dup {
		return resp, err
	}
	// Acked: Pub/Sub may still deliver it again.
	f.pending.Add(1)
	go func() {
		defer f.pending.Done()
		f.redeliver(t.next, req, body, dupAfter)
	}()
	return resp, nil
}

// forwarded records the push's publish time and counts a held-back push
// that now arrives after a later-published message of its subscription.
func (f *DeliveryFaults) forwarded(m pushMeta, held bool) {
	if m.Subscription == "" || m.Message.PublishTime.IsZero() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.lastPublished[m.Subscription]
	if held && last.After(m.Message.PublishTime) {
		f.counts.Reordered++
	}
	if m.Message.PublishTime.After(last) {
		f.lastPublished[m.Subscription] = m.Message.PublishTime
	}
}

// redeliver sends the copy after wait, retrying a failing endpoint (a
// service being restarted) for a while, as Pub/Sub would.
func (f *DeliveryFaults) redeliver(next http.RoundTripper, orig *http.Request, body []byte, wait time.Duration) {
	deadline := time.Now().Add(wait + 60*time.Second)
	backoff := 200 * time.Millisecond
	for {
		select {
		case <-f.ctx.Done():
			f.count(false)
			return
		case <-time.After(wait):
		}
		ctx, cancel := context.WithTimeout(f.ctx, 60*time.Second)
		resp, err := next.RoundTrip(cloneWithBody(ctx, orig, body))
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxPushResponseDrain))
			_ = resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			f.count(true)
			return
		}
		if time.Now().After(deadline) {
			f.count(false)
			return
		}
		wait = backoff
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (f *DeliveryFaults) count(delivered bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if delivered {
		f.counts.Duplicates++
	} else {
		f.counts.DuplicatesDropped++
	}
}

func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil {
		return nil, nil
	}
	defer req.Body.Close()
	return io.ReadAll(req.Body)
}

func cloneWithBody(ctx context.Context, req *http.Request, body []byte) *http.Request {
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return r
}
