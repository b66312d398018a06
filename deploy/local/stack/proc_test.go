package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A port answered by another process (another stack's service that got the
// port first) is not taken for the service being ready; its own answer is.
func TestWaitReadyWantsItsOwnProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "svc")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	pid := 1 // someone else
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, `{"status":"ready","pid":%d}`, pid)
	}))
	defer srv.Close()
	p := &Proc{Name: "svc", URL: srv.URL, bin: bin, dir: t.TempDir(), out: &prefixWriter{mu: &sync.Mutex{}, w: io.Discard}, health: "/readyz"}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	err := p.WaitReady(context.Background(), 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "another process holds its port") {
		t.Fatalf("another process's answer: %v", err)
	}
	mu.Lock()
	pid = p.pid()
	mu.Unlock()
	if err := p.WaitReady(context.Background(), 2*time.Second); err != nil {
		t.Fatalf("its own answer: %v", err)
	}
}
