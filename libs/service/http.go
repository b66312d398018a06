package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Listen binds host:port (an empty host binds every interface).
func Listen(host string, port int) (net.Listener, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	return l, nil
}

// ListenOnce binds host:port into *l unless *l is bound already, and returns
// the address: for a Listen method that lets the caller know the address
// before Run. name prefixes the error.
func ListenOnce(l *net.Listener, name, host string, port int) (net.Addr, error) {
	if *l == nil {
		bound, err := Listen(host, port)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		*l = bound
	}
	return (*l).Addr(), nil
}

// Healthz answers liveness probes for the named process.
func Healthz(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","service":%q,"pid":%d}`, name, os.Getpid())
	}
}

// HTTPLimits bound what a client may hold of a port's server.
type HTTPLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included: a client
	// that sends its headers and then stalls the body is cut off.
	ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection (HTTP/1.1 or HTTP/2) with
	// no request for that long.
	IdleTimeout time.Duration
	// MinPingInterval is the HTTP/2 ping enforcement (see h2ping.go): a
	// client pinging more often is sent GOAWAY "too_many_pings" and
	// disconnected. 0: none.
	MinPingInterval time.Duration
}

// DefaultHTTPLimits are every port's limits.
//
// There is no WriteTimeout: it would count from the end of the request's
// headers, and a push to /events is answered only once its handler returned,
// up to HANDLER_TIMEOUT (9 minutes by default) later; a too short one
// would cut a successful step's acknowledgement, making Pub/Sub redeliver
// it. Cloud Run's request timeout bounds the response instead.
var DefaultHTTPLimits = HTTPLimits{
	ReadHeaderTimeout: 10 * time.Second,
	// A push body is at most 16 MiB (eventing.RouterConfig.MaxBody) and
	// an API request 1 MiB: a minute is ample from Google's front ends.
	ReadTimeout: time.Minute,
	// Longer than the 600 s Google's load balancers keep an idle upstream
	// connection, so that they, not the service, close it: a connection
	// closed by the server as the proxy reuses it fails that request.
	IdleTimeout: 620 * time.Second,
	// gRPC's own default (keepalive.EnforcementPolicy.MinTime), which
	// gRPC clients are configured to respect.
	MinPingInterval: 5 * time.Minute,
}

// NewHTTPServer returns the server every port uses: HTTP/1.1 and
// unencrypted HTTP/2 (h2c with prior knowledge: what gRPC clients speak
// without TLS, and what Cloud Run's end-to-end HTTP/2 sends), with the
// DefaultHTTPLimits timeouts (its listener needs the ping enforcement too:
// ServeHTTP adds it). Request contexts are not cancelled by ctx, only by the
// shutdown deadline.
func NewHTTPServer(ctx context.Context, h http.Handler) *http.Server {
	return newHTTPServer(ctx, h, DefaultHTTPLimits)
}

func newHTTPServer(ctx context.Context, h http.Handler, limits HTTPLimits) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         p,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		IdleTimeout:       limits.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// ServeHTTP serves h on l with the DefaultHTTPLimits until ctx ends, then
// stops accepting and gives in-flight requests grace to finish (Cloud Run
// allows 10 s after SIGTERM).
func ServeHTTP(ctx context.Context, l net.Listener, h http.Handler, grace time.Duration) error {
	return serveHTTP(ctx, l, h, grace, DefaultHTTPLimits)
}

func serveHTTP(ctx context.Context, l net.Listener, h http.Handler, grace time.Duration, limits HTTPLimits) error {
	srv := newHTTPServer(ctx, h, limits)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(pingGuard(l, limits.MinPingInterval)) }()
	var err error
	select {
	case err = <-serveErr:
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), grace)
		err = srv.Shutdown(shutCtx)
		cancel()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
