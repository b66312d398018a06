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

// NewHTTPServer returns the server every port uses: HTTP/1.1 and
// unencrypted HTTP/2 (h2c with prior knowledge: what gRPC clients speak
// without TLS, and what Cloud Run's end-to-end HTTP/2 sends). Request
// contexts are not cancelled by ctx, only by the shutdown deadline.
func NewHTTPServer(ctx context.Context, h http.Handler) *http.Server {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         p,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// ServeHTTP serves h on l until ctx ends, then stops accepting and gives
// in-flight requests grace to finish (Cloud Run allows 10 s after SIGTERM).
func ServeHTTP(ctx context.Context, l net.Listener, h http.Handler, grace time.Duration) error {
	srv := NewHTTPServer(ctx, h)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(l) }()
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
