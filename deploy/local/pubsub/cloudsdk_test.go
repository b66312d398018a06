package pubsub

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// The Cloud SDK emulator is installed here and in CI: a missing one fails the
// test rather than skipping it.
func TestCloudSDKEmulator(t *testing.T) {
	t.Parallel()
	if _, err := cloudSDKCheck(); err != nil {
		t.Fatalf("the Cloud SDK Pub/Sub emulator is required for these tests: %v", err)
	}
	var out syncBuffer
	start := time.Now()
	e, err := StartCloudSDK(t.Context(), Options{Project: testProject, LogWriter: &out})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("Cloud SDK emulator ready on %s after %v", e.Host(), time.Since(start).Round(time.Millisecond))
	pgid := e.proc.pgid
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = e.Stop()
		}
		if t.Failed() {
			t.Logf("emulator output:\n%s", out.String())
		}
	})
	if live, ok := liveInGroup(pgid); !ok || live < 2 {
		t.Errorf("process group %d: %d live processes (want gcloud and java)", pgid, live)
	}

	t.Run("provision and push", func(t *testing.T) {
		c, err := e.NewClient(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, path := unfiltered(t)
		rec := newRecorder(t, func(p string, n int) int {
			if p == path && n == 1 {
				return http.StatusServiceUnavailable // one retry, paced by the emulator
			}
			return http.StatusNoContent
		})
		if err := e.Provision(t.Context(), c, rec.endpoint); err != nil {
			t.Fatal(err)
		}
		if err := e.Provision(t.Context(), c, rec.endpoint); err != nil {
			t.Fatalf("second run: %v", err)
		}
		// Filtered subscriptions go through the gate; the rest straight to
		// the service.
		checkProvisioned(t, c, testProject, func(s events.Subscription) string {
			return e.gate.pushURL(s, rec.endpoint(s.Service)) + PushPath
		}, events.MinBackoffSeconds*time.Second, events.MaxBackoffSeconds*time.Second)

		attrs := map[string]string{"pipeline": events.ETLMLTraining, "run_id": "r-1"}
		id := publish(t, c, testProject, s.Topic, "hello", attrs)
		rec.waitFor("the push and its retry", 15*time.Second, func([]push) bool { return len(rec.on(path)) >= 2 })
		for _, p := range rec.on(path)[:2] {
			if p.err != nil || p.msg.PubSubID != id || string(p.msg.Data) != "hello" || p.msg.Attributes["run_id"] != "r-1" {
				t.Errorf("push: %+v, %v", p.msg, p.err)
			}
			if !bytes.Contains(p.raw, []byte(`"messageId"`)) || !bytes.Contains(p.raw, []byte(`"message_id"`)) {
				t.Errorf("push body lacks a message id spelling: %s", p.raw)
			}
		}
		t.Logf("push body: %s", rec.on(path)[0].raw)
	})

	t.Run("filters via the gate", func(t *testing.T) {
		c, err := e.NewClient(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rec := newRecorder(t, nil)
		if err := e.Provision(t.Context(), c, rec.endpoint); err != nil {
			t.Fatal(err)
		}
		checkRunStartedRouting(t, c, testProject, rec)
	})

	// Not a requirement, a record: does this emulator version filter by itself
	// (then the gate could go)? Last, since it points the subscriptions
	// straight at the services.
	t.Run("emulator's own filtering", func(t *testing.T) {
		c, err := e.NewClient(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rec := newRecorder(t, nil)
		if err := Provision(t.Context(), c, testProject, rec.endpoint); err != nil {
			t.Fatal(err)
		}
		publish(t, c, testProject, events.TopicOf(events.RunStarted), "nobody", map[string]string{"pipeline": "no_such_pipeline"})
		var firstSteps int
		for _, s := range events.Subscriptions() {
			if s.EventType == events.RunStarted && s.Filter() != "" {
				firstSteps++
			}
		}
		time.Sleep(time.Second)
		if n := len(rec.all()); n == 0 {
			t.Logf("the Cloud SDK emulator applied the filters itself (0 pushes): the filter gate is no longer needed")
		} else {
			t.Logf("the Cloud SDK emulator ignored the filters: %d of %d filtered subscriptions got an event no filter matches", n, firstSteps)
		}
	})

	// The subtests opened many connections: at INFO each logs "Detected
	// HTTP/2 connection". Only warnings and errors are kept.
	if strings.Contains(out.String(), "INFO:") {
		t.Errorf("the emulator logged at INFO:\n%s", out.String())
	}

	if err := e.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	stopped = true
	if err := e.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
	if live, ok := liveInGroup(pgid); !ok || live != 0 {
		t.Errorf("process group %d: %d processes left after Stop", pgid, live)
	}
	_, port, _ := net.SplitHostPort(e.Host())
	for _, needle := range []string{"--host-port=" + e.Host(), "--port=" + port} {
		if left := processesMentioning(needle); len(left) > 0 {
			t.Errorf("processes left after Stop: %v", left)
		}
	}
}

func TestCloudSDKStartFailsOnBusyPort(t *testing.T) {
	t.Parallel()
	e, err := StartEmbedded(t.Context(), Options{Project: testProject})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	_, port, _ := net.SplitHostPort(e.Host())
	p, _ := strconv.Atoi(port)
	if _, err := StartCloudSDK(t.Context(), Options{Port: p}); err == nil || !strings.Contains(err.Error(), "not free") {
		t.Fatalf("StartCloudSDK on a busy port: %v", err)
	}
}

// processesMentioning lists the command lines that contain s.
func processesMentioning(s string) []string {
	var out []string
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		cmd := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		if strings.Contains(cmd, s) {
			out = append(out, filepath.Base(filepath.Dir(f))+": "+cmd)
		}
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
