package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// Environment variables the API commands' flags default to.
const (
	EnvControl = "CMMSFLOW_CONTROL"
	EnvToken   = "CMMSFLOW_TOKEN"
)

// DefaultControl is the control service of `make up`.
const DefaultControl = "http://127.0.0.1:8080"

// callTimeout bounds one API call.
const callTimeout = 30 * time.Second

// controlURL is --control, else $CMMSFLOW_CONTROL, else DefaultControl.
func (a *App) controlURL() string {
	if a.control != "" {
		return a.control
	}
	if a.Getenv != nil {
		if v := a.Getenv(EnvControl); v != "" {
			return v
		}
	}
	return DefaultControl
}

// apiToken is the API token: the first line of standard input with
// --token-stdin, else $CMMSFLOW_TOKEN; read once. Standard input is read
// only when a command calls the API.
func (a *App) apiToken() (string, error) {
	if a.tokenRead {
		return a.token, nil
	}
	switch {
	case a.tokenStdin:
		tok, err := a.readTokenStdin()
		if err != nil {
			return "", err
		}
		a.token = tok
	case a.Getenv != nil:
		a.token = a.Getenv(EnvToken)
	}
	a.tokenRead = true
	return a.token, nil
}

// readTokenStdin reads the token from the first line of standard input,
// without its line ending and surrounding spaces.
func (a *App) readTokenStdin() (string, error) {
	if a.Stdin == nil {
		return "", &usageError{errors.New("--token-stdin: there is no standard input to read the token from")}
	}
	line, err := bufio.NewReader(io.LimitReader(a.Stdin, maxTokenLine)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--token-stdin: read standard input: %w", err)
	}
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", &usageError{errors.New("--token-stdin: the first line of standard input is empty: pipe the token in " +
			"(cmmsflow --token-stdin ... < token-file)")}
	}
	return tok, nil
}

// maxTokenLine bounds the line --token-stdin reads.
const maxTokenLine = 4096

// tokenFlagHint turns the error of the removed --token flag into one that
// says how to pass the token now.
func tokenFlagHint(err error) error {
	if err.Error() != "unknown flag: --token" {
		return err
	}
	return fmt.Errorf("--token was removed: a token on the command line shows in ps; "+
		"set %s or pipe the token in with --token-stdin", EnvToken)
}

// Client connects to control's gRPC API on first use (the same port as its
// HTTP API: h2c for http://, TLS for https://). Every call carries the
// bearer token as the authorization metadata; a token goes over plain http
// only to a loopback host.
func (a *App) Client() (controlv1.ControlServiceClient, error) {
	if a.client != nil {
		return a.client, nil
	}
	target, secure, err := grpcTarget(a.controlURL())
	if err != nil {
		return nil, err
	}
	token, err := a.apiToken()
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if secure {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	} else if token != "" && !loopbackURL(a.controlURL()) {
		return nil, &usageError{fmt.Errorf("refusing to send the API token over plain http to %s: "+
			"use https://, or a loopback host (localhost, 127.0.0.0/8, ::1)", a.controlURL())}
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("cmmsflow-cli"),
		grpc.WithUnaryInterceptor(bearer(token)),
	}
	if a.dial != nil {
		target = "passthrough:///" + strings.TrimPrefix(target, "dns:///")
		opts = append(opts, grpc.WithContextDialer(a.dial))
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("control at %s: %w", a.controlURL(), err)
	}
	a.conn = conn
	a.client = controlv1.NewControlServiceClient(conn)
	return a.client, nil
}

// bearer adds the token (when there is one) to every call as its
// authorization metadata, and bounds the call by callTimeout.
func bearer(token string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// grpcTarget turns a control URL (http[s]://host[:port]) into a gRPC target.
func grpcTarget(raw string) (target string, secure bool, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", false, &usageError{fmt.Errorf("invalid control URL %q: want http://host[:port] or https://host[:port]", raw)}
	}
	secure = u.Scheme == "https"
	port := u.Port()
	if port == "" {
		port = "80"
		if secure {
			port = "443"
		}
	}
	return "dns:///" + net.JoinHostPort(u.Hostname(), port), secure, nil
}

// loopbackURL reports whether the URL's host is loopback: localhost,
// 127.0.0.0/8 or ::1.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	return loopbackHost(u.Hostname())
}

// loopbackHost reports whether host (a name or an IP, without port or
// brackets) is loopback: localhost, 127.0.0.0/8 or ::1.
func loopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// apiError turns a gRPC status into a message that says what to do; the
// HTTP status of the same error on control's HTTP API is given alongside.
func (a *App) apiError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unauthenticated:
		if a.token == "" {
			return fmt.Errorf("no API token (401 unauthenticated): set %s or pipe it in with --token-stdin (make one with 'cmmsflow token')", EnvToken)
		}
		return fmt.Errorf("control refused the token (401 unauthenticated): check the token (%s or --token-stdin) against control's API_TOKENS", EnvToken)
	case codes.PermissionDenied:
		return errors.New("permission denied (403): this command needs an admin token")
	case codes.NotFound:
		return fmt.Errorf("not found (404): %s", msg)
	case codes.InvalidArgument:
		return fmt.Errorf("invalid request (400): %s", msg)
	case codes.AlreadyExists, codes.Aborted:
		return fmt.Errorf("conflict (409): %s", msg)
	case codes.FailedPrecondition:
		return fmt.Errorf("not possible now (412): %s", msg)
	case codes.ResourceExhausted:
		return fmt.Errorf("rate limited (429): %s; retry later", msg)
	case codes.Unavailable:
		return fmt.Errorf("cannot reach control at %s (unavailable): %s (set --control or %s)", a.controlURL(), msg, EnvControl)
	case codes.DeadlineExceeded:
		return fmt.Errorf("control at %s did not answer within %s", a.controlURL(), callTimeout)
	default:
		return fmt.Errorf("control: %s: %s", st.Code(), msg)
	}
}

// parseConf parses --conf k=v values.
func parseConf(kvs []string) (map[string]string, error) {
	conf := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid --conf %q: want key=value", kv)
		}
		if _, dup := conf[k]; dup {
			return nil, fmt.Errorf("invalid --conf: key %q given twice", k)
		}
		conf[k] = v
	}
	return conf, nil
}
