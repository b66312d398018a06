package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/pubsubtest"
)

// On Cloud Run (K_SERVICE set) PUSH_AUTH off fails closed unless written
// off-insecure, which warns; elsewhere off is allowed as before.
func TestPushAuthFailsClosedOnCloudRun(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     map[string]string
		refused bool
		warned  bool
	}{
		{"local, unset", map[string]string{}, false, false},
		{"local, off-insecure", map[string]string{"PUSH_AUTH": "off-insecure"}, false, false},
		{"Cloud Run, unset", map[string]string{"K_SERVICE": "pmgen"}, true, false},
		{"Cloud Run, off", map[string]string{"K_SERVICE": "pmgen", "PUSH_AUTH": "off"}, true, false},
		{"Cloud Run, false", map[string]string{"K_SERVICE": "pmgen", "PUSH_AUTH": "false"}, true, false},
		{"Cloud Run, off-insecure", map[string]string{"K_SERVICE": "pmgen", "PUSH_AUTH": "Off-Insecure"}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["DATABASE_URL"] = "postgres://unused"
			var cfg config.Common
			if err := config.LoadFrom(context.Background(), &cfg, tt.env); err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			v, err := PushVerifier(cfg, newTextLogger(&logged))
			if v != nil {
				t.Fatal("a verifier with PUSH_AUTH off")
			}
			if refused := err != nil; refused != tt.refused {
				t.Fatalf("error %v, want refused %v", err, tt.refused)
			}
			for _, want := range []string{"PUSH_AUTH is off on Cloud Run (K_SERVICE=pmgen)", "PUSH_AUTH=on", "PUSH_AUDIENCE",
				"PUSH_SERVICE_ACCOUNTS", "PUSH_AUTH=off-insecure", "forged events", "trigger runs", "fake step results", "send emails"} {
				if err != nil && !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if warned := strings.Contains(logged.String(), "level=WARN msg=\"PUSH_AUTH=off-insecure on Cloud Run"); warned != tt.warned {
				t.Errorf("log %q, want a warning %v", logged.String(), tt.warned)
			}
		})
	}
}

// The acceptance test of issue 16 on a real service binary (pmgen): with
// K_SERVICE set and PUSH_AUTH unset it exits 1 saying why; with
// PUSH_AUTH=off-insecure it starts, warns, and serves.
func TestServiceBinaryRefusesPushAuthOffOnCloudRun(t *testing.T) {
	bin := serviceBinary(t, "pmgen")
	_, dbURL := pgtest.NewWithURL(t)
	ps := pubsubtest.New(t)
	port := freePort(t)
	env := []string{"DATABASE_URL=" + dbURL, "PUBSUB_EMULATOR_HOST=" + ps.Addr, "GOOGLE_CLOUD_PROJECT=" + pubsubtest.Project,
		"HOST=127.0.0.1", fmt.Sprint("PORT=", port), "K_SERVICE=pmgen"}

	// A service that wrongly starts is killed after a minute, failing the
	// test rather than hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("PUSH_AUTH unset on Cloud Run: %v, want exit status 1; stderr %s", err, stderr.String())
	}
	if want := "error: pmgen: PUSH_AUTH is off on Cloud Run (K_SERVICE=pmgen)"; !strings.HasPrefix(stderr.String(), want) {
		t.Fatalf("stderr %q, want it to start %q", stderr.String(), want)
	}

	cmd = exec.Command(bin)
	cmd.Env = append(env, "PUSH_AUTH=off-insecure")
	var stdout syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", port), done, &stdout)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err != nil {
		t.Fatalf("PUSH_AUTH=off-insecure: %v; output %s", err, stdout.String())
	}
	if out := stdout.String(); !strings.Contains(out, `"severity":"WARNING"`) || !strings.Contains(out, "PUSH_AUTH=off-insecure on Cloud Run") {
		t.Fatalf("output %s: want the off-insecure warning", out)
	}
}

// serviceBinary is the named service's binary: $CMMSFLOW_BIN_DIR's when
// set (make bins), else built for this test.
func serviceBinary(t *testing.T, name string) string {
	t.Helper()
	if dir := os.Getenv("CMMSFLOW_BIN_DIR"); dir != "" {
		return filepath.Join(dir, name)
	}
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "github.com/cmmsflow/cmmsflow/services/"+name+"/cmd/"+name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return bin
}

// waitReady polls url until it answers 200, failing if the process ends
// first.
func waitReady(t *testing.T, url string, done <-chan error, out *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-done:
			t.Fatalf("the service exited (%v) before it was ready; output %s", err, out.String())
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within a minute; output %s", url, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a process's output, read while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
