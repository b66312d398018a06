package pubsub

import (
	"context"
	"fmt"
	"sync"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// StartEmbedded runs pstest on 127.0.0.1 in this process, plus the pusher
// that delivers its push subscriptions (pusher.go). ctx is not retained: the
// emulator runs until Stop.
func StartEmbedded(_ context.Context, o Options) (*Emulator, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	host, err := loopback(o.Port)
	if err != nil {
		return nil, err
	}
	nudge := make(chan struct{}, 1)
	srv, err := newPstest(host, pstest.ServerReactorOption{FuncName: "Publish", Reactor: nudger(nudge)})
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("pubsub: dial embedded emulator: %w", err)
	}
	p := newPusher(pubsubpb.NewPublisherClient(conn), pubsubpb.NewSubscriberClient(conn), o, nudge)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.run(ctx)
	}()

	e := &Emulator{kind: Embedded, host: srv.Addr, project: o.Project}
	e.stop = sync.OnceValue(func() error {
		if o.Faults != nil {
			o.Faults.stop()
		}
		cancel()
		<-done
		p.close()
		_ = conn.Close()
		return srv.Close()
	})
	return e, nil
}

// newPstest starts pstest on addr, turning its panic on a listen error into
// an error.
func newPstest(addr string, opts ...pstest.ServerReactorOption) (srv *pstest.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pubsub: start embedded emulator on %s: %v", addr, r)
		}
	}()
	return pstest.NewServerWithAddress(addr, opts...), nil
}

// nudger is a pstest reactor that wakes the pusher on every Publish and lets
// pstest handle the call. It runs under pstest's lock, so the pusher's next
// Pull sees the message.
type nudger chan struct{}

func (n nudger) React(any) (bool, any, error) {
	select {
	case n <- struct{}{}:
	default:
	}
	return false, nil, nil
}
