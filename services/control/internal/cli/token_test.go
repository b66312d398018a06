package cli

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// TestTokenFlagRemoved: --token, which ps would show, is refused with how to
// pass the token now, before anything is sent.
func TestTokenFlagRemoved(t *testing.T) {
	c := newControl(t)
	for _, args := range [][]string{
		{"pipelines", "--token", c.adminTok},
		{"--token=" + c.adminTok, "pipelines"},
		{"pause", "preventive_maintenance", "--token"},
	} {
		r := run(t, map[string]string{EnvControl: c.url}, args...)
		want := "cmmsflow: --token was removed: a token on the command line shows in ps; " +
			"set CMMSFLOW_TOKEN or pipe the token in with --token-stdin\n"
		if r.code != ExitUsage || !strings.HasPrefix(r.stderr, want) || r.stdout != "" {
			t.Errorf("%q: %+v", args, r)
		}
	}
	var paused bool
	if err := c.pool.QueryRow(context.Background(),
		`SELECT EXISTS (SELECT 1 FROM pipelines WHERE id = 'preventive_maintenance' AND paused)`).Scan(&paused); err != nil {
		t.Fatal(err)
	}
	if paused {
		t.Error("pause ran despite --token")
	}
}

// TestTokenStdin reads the token from the first line of standard input, in
// place of $CMMSFLOW_TOKEN; an empty or missing input is a usage error.
func TestTokenStdin(t *testing.T) {
	c := newControl(t)
	env := map[string]string{EnvControl: c.url, EnvToken: c.viewerTok}
	r := runInput(t, strings.NewReader("  "+c.adminTok+"\r\nsecond line\n"), env, "--token-stdin", "pause", "preventive_maintenance")
	if r.code != ExitOK || !strings.HasPrefix(r.stdout, "preventive_maintenance paused") {
		t.Fatalf("pause with the admin token on stdin: %+v", r)
	}
	// Without the flag, the environment's viewer token is used.
	r = runInput(t, strings.NewReader(c.adminTok+"\n"), env, "unpause", "preventive_maintenance")
	if r.code != ExitError || !strings.Contains(r.stderr, "permission denied (403)") {
		t.Fatalf("unpause with the viewer token of the environment: %+v", r)
	}
	for name, in := range map[string]*strings.Reader{"empty": strings.NewReader(""), "blank line": strings.NewReader("\nx\n")} {
		r = runInput(t, in, env, "--token-stdin", "pipelines")
		if r.code != ExitUsage || !strings.Contains(r.stderr, "--token-stdin: the first line of standard input is empty") {
			t.Errorf("%s: %+v", name, r)
		}
	}
	r = run(t, env, "--token-stdin", "pipelines")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--token-stdin: there is no standard input") {
		t.Errorf("no stdin: %+v", r)
	}
}

// TestTokenNotOverPlainHTTP: a token goes over plain http to loopback only;
// to any other host the CLI refuses before it connects.
func TestTokenNotOverPlainHTTP(t *testing.T) {
	var mu sync.Mutex
	var dialed []string
	dial := func(_ context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		dialed = append(dialed, addr)
		return nil, errors.New("test: no network")
	}
	for _, control := range []string{"http://control.test:8080", "http://10.0.0.8", "http://[2001:db8::1]:8080", "http://localhost.example"} {
		a := &App{Getenv: envMap{EnvControl: control, EnvToken: "cmf_secret"}.get}
		a.dial = dial
		_, err := a.Client()
		var usage *usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), "refusing to send the API token over plain http to "+control+
			": use https://, or a loopback host (localhost, 127.0.0.0/8, ::1)") {
			t.Errorf("%s: %v", control, err)
		}
	}
	// Without a token there is nothing to protect: the call is made (and
	// fails on the test's dialer).
	a := &App{Getenv: envMap{EnvControl: "http://control.test:8080"}.get}
	a.dial = dial
	defer a.close()
	cl, err := a.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ListPipelines(context.Background(), &controlv1.ListPipelinesRequest{}); err == nil {
		t.Fatal("the test dialer should fail the call")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dialed) == 0 || dialed[0] != "control.test:8080" {
		t.Errorf("dialed %q, want only the tokenless call's control.test:8080", dialed)
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "localhost.": true, "127.0.0.1": true, "127.8.9.10": true,
		"::1": true, "::ffff:127.0.0.1": true, "10.0.0.1": false, "0.0.0.0": false, "::": false,
		"128.0.0.1": false, "localhost.example": false, "mylocalhost": false, "control.internal": false,
		"2001:db8::1": false, "no host": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

type envMap map[string]string

func (e envMap) get(k string) string { return e[k] }
