package pubsub

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// The Cloud SDK emulator (0.8.x) stores a subscription's filter but does not
// apply it: every message reaches every subscription. The gate puts the
// filter back. Emulator.Provision points each filtered push subscription at
//
//	http://127.0.0.1:<gate>/gate/<base64url(service URL)>/events
//
// The gate reads the push body's subscription, gets that subscription's
// filter from the emulator, answers 204 (ack) for a message the filter
// excludes and forwards anything else unchanged to the service URL + /events,
// relaying the service's status. It forwards to loopback addresses only.
type gate struct {
	base   string // http://127.0.0.1:port
	srv    *http.Server
	conn   *grpc.ClientConn
	subs   pubsubpb.SubscriberClient
	client *http.Client
	log    *slog.Logger
	// faults, when set, carries every subscription through the gate and
	// injects duplicate and out-of-order deliveries.
	faults *DeliveryFaults

	mu      sync.Mutex
	filters map[string]cachedFilter
}

type cachedFilter struct {
	match matcher
	err   error
	at    time.Time
}

const (
	gatePrefix    = "/gate/"
	gateMaxBody   = 16 << 20
	filterRefresh = 2 * time.Second
)

func startGate(emulatorHost, project string, log *slog.Logger, faults *DeliveryFaults) (*gate, error) {
	conn, err := grpc.NewClient(emulatorHost, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("pubsub: filter gate: dial emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("pubsub: filter gate: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	var rt http.RoundTripper = tr
	if faults != nil {
		rt = faults.transport(tr)
	}
	g := &gate{
		base:    "http://" + ln.Addr().String(),
		conn:    conn,
		subs:    pubsubpb.NewSubscriberClient(conn),
		faults:  faults,
		client:  &http.Client{Transport: rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		log:     log.With("component", "pubsub-filter-gate", "project", project),
		filters: map[string]cachedFilter{},
	}
	g.srv = &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := g.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("filter gate stopped", "error", err)
		}
	}()
	return g, nil
}

func (g *gate) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.srv.Shutdown(ctx)
	if g.faults != nil {
		g.faults.stop()
	}
	g.client.CloseIdleConnections()
	_ = g.conn.Close()
}

// pushURL routes filtered subscriptions through the gate, and every
// subscription when faults are injected.
func (g *gate) pushURL(s events.Subscription, serviceURL string) string {
	if s.Filter() == "" && g.faults == nil {
		return serviceURL
	}
	return g.base + gatePrefix + base64.RawURLEncoding.EncodeToString([]byte(serviceURL))
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target, err := gateTarget(r.URL)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, gateMaxBody+1))
	if err != nil || len(body) > gateMaxBody {
		http.Error(w, "unreadable or oversized push body", http.StatusBadRequest)
		return
	}
	var env struct {
		Subscription string `json:"subscription"`
		Message      struct {
			Attributes map[string]string `json:"attributes"`
			MessageID  string            `json:"messageId"`
		} `json:"message"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Subscription == "" {
		http.Error(w, "not a Pub/Sub push body", http.StatusBadRequest)
		return
	}
	match, err := g.filter(r.Context(), env.Subscription)
	if err != nil {
		g.log.Warn("cannot get the subscription's filter; the emulator will retry", "subscription", env.Subscription, "error", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if !match(env.Message.Attributes) {
		g.log.Debug("filtered out", "subscription", shortName(env.Subscription), "message_id", env.Message.MessageID)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for k, vs := range r.Header {
		if k == "Content-Length" || k == "Connection" {
			continue
		}
		req.Header[k] = vs
	}
	resp, err := g.client.Do(req)
	if err != nil {
		http.Error(w, "forward: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, gateMaxBody))
}

// gateTarget decodes /gate/<base64url(base)><rest> into base + rest, refusing
// anything but http(s) on a loopback host.
func gateTarget(u *url.URL) (string, error) {
	rest, ok := strings.CutPrefix(u.Path, gatePrefix)
	if !ok {
		return "", errors.New("not a gate path")
	}
	enc, tail, _ := strings.Cut(rest, "/")
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("bad gate target: %w", err)
	}
	base, err := url.Parse(string(raw))
	if err != nil {
		return "", fmt.Errorf("bad gate target: %w", err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || !isLoopback(base.Hostname()) {
		return "", fmt.Errorf("gate target %s is not a loopback http(s) URL", base.Redacted())
	}
	target := strings.TrimRight(base.String(), "/") + "/" + tail
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	return target, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// filter returns the subscription's compiled filter, cached for a moment.
func (g *gate) filter(ctx context.Context, sub string) (matcher, error) {
	g.mu.Lock()
	c, ok := g.filters[sub]
	g.mu.Unlock()
	if ok && time.Since(c.at) < filterRefresh {
		return c.match, c.err
	}
	s, err := g.subs.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: sub})
	if err != nil {
		return nil, err // not cached: transient
	}
	c = cachedFilter{at: time.Now()}
	c.match, c.err = parseFilter(s.Filter)
	if c.err != nil {
		c.err = fmt.Errorf("subscription %s: %w", sub, c.err)
	}
	g.mu.Lock()
	g.filters[sub] = c
	g.mu.Unlock()
	return c.match, c.err
}
