// Package pubsub runs the local Pub/Sub for `make up` and the e2e tests, and
// provisions the registry's topics and push subscriptions on it.
//
// Two emulators, one interface (services see only PUBSUB_EMULATOR_HOST):
//
//   - StartCloudSDK runs the Cloud SDK emulator (`gcloud beta emulators pubsub
//     start`) in its own process group. It pushes by itself, but ignores
//     subscription filters (see gate.go), so Emulator.Provision routes the
//     filtered subscriptions through a small filter gate.
//   - StartEmbedded runs pstest in process plus a pusher (pusher.go) that does
//     what pstest does not: push, retry backoff, dead-lettering.
//
// Everything listens on 127.0.0.1 only.
package pubsub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

// DefaultProject is the project id used when Options.Project is empty.
const DefaultProject = "cmmsflow-local"

// Kind names an emulator implementation.
type Kind string

// Emulator kinds.
const (
	CloudSDK Kind = "cloudsdk" // gcloud beta emulators pubsub start
	Embedded Kind = "embedded" // pstest plus the pusher
)

// Options configures an emulator.
type Options struct {
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// Project is the project id the stack uses; DefaultProject if empty.
	Project string
	// LogWriter receives the emulator's output (the gcloud/java output, or
	// the pusher's log lines). Nil discards it.
	LogWriter io.Writer
	// Logger, when set, is used for the pusher and the filter gate instead
	// of a text logger on LogWriter.
	Logger *slog.Logger

	// StartTimeout bounds the Cloud SDK emulator's start-up; default 60 s.
	StartTimeout time.Duration
	// DataDir is the Cloud SDK emulator's data folder (and gcloud's config
	// folder); default a temporary folder removed by Stop.
	DataDir string

	// PollInterval is how often the embedded pusher looks for messages when
	// nothing nudged it; default 200 ms. Publishes nudge it at once.
	PollInterval time.Duration
	// MaxConcurrentPushes bounds the embedded pusher's HTTP requests in
	// flight; default 16.
	MaxConcurrentPushes int
	// PushTimeout bounds one push request of the embedded pusher; default the
	// subscription's ack deadline, as on Pub/Sub.
	PushTimeout time.Duration

	// Faults, when set, injects duplicate and out-of-order deliveries into
	// every push (chaos tests; see DeliveryFaults). Nil for `make up`.
	Faults *DeliveryFaults
}

func (o Options) withDefaults() (Options, error) {
	if o.Project == "" {
		o.Project = DefaultProject
	}
	if o.Port < 0 || o.Port > 65535 {
		return o, fmt.Errorf("pubsub: bad port %d", o.Port)
	}
	if o.LogWriter == nil {
		o.LogWriter = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(o.LogWriter, nil))
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 200 * time.Millisecond
	}
	if o.MaxConcurrentPushes <= 0 {
		o.MaxConcurrentPushes = 16
	}
	return o, nil
}

// Emulator is a running local Pub/Sub. Stop it when done.
type Emulator struct {
	kind    Kind
	host    string
	project string
	stop    func() error
	gate    *gate       // Cloud SDK only
	proc    *sdkProcess // Cloud SDK only
}

// Host is the emulator's address, the value for PUBSUB_EMULATOR_HOST.
func (e *Emulator) Host() string { return e.host }

// Project is the project id the emulator was started for.
func (e *Emulator) Project() string { return e.project }

// Kind tells which emulator runs.
func (e *Emulator) Kind() Kind { return e.kind }

// Stop shuts the emulator down: for the Cloud SDK emulator, the whole
// process group (gcloud and its java child). Safe to call more than once.
func (e *Emulator) Stop() error { return e.stop() }

// NewClient returns a Pub/Sub client for the emulator: plain-text gRPC to
// Host, no credentials. The caller closes it.
func (e *Emulator) NewClient(ctx context.Context) (*pubsub.Client, error) {
	return eventing.EmulatorClient(ctx, e.host, e.project)
}

// Provision is the package Provision for this emulator. On the Cloud SDK
// emulator, which accepts subscription filters but does not apply them,
// filtered subscriptions push through the emulator's filter gate, which acks
// what the filter excludes and forwards the rest unchanged.
func (e *Emulator) Provision(ctx context.Context, client *pubsub.Client, endpoint func(service string) string, opts ...ProvisionOption) error {
	if e.gate != nil {
		opts = append(opts, withPushURL(e.gate.pushURL))
	}
	return Provision(ctx, client, e.project, endpoint, opts...)
}

// loopback returns "127.0.0.1:port", choosing a free port when port is 0 and
// failing early when the port is taken.
func loopback(port int) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return "", fmt.Errorf("pubsub: port %d on 127.0.0.1 is not free: %w", port, err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", err
	}
	return addr, nil
}
