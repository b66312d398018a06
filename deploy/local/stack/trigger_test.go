package stack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A rate-limited trigger is waited out and sent again (make bench's latency
// step triggers every pipeline several times within control's limit).
func TestTriggerWaitsOutTheRateLimit(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/pipelines/etl_ml_training:trigger" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if calls.Add(1) < 3 {
			http.Error(w, `{"code":8,"message":"rate limit exceeded"}`, http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(`{"run":{"run_id":"manual__1"},"created":true}`))
	}))
	defer srv.Close()
	start := time.Now()
	id, created, err := trigger(context.Background(), srv.URL, "tok", "etl_ml_training", nil)
	if err != nil || id != "manual__1" || !created {
		t.Fatalf("trigger = %q, %v, %v", id, created, err)
	}
	if calls.Load() != 3 || time.Since(start) < 2*time.Second {
		t.Fatalf("%d calls in %s, want 3 with a second's wait before each retry", calls.Load(), time.Since(start))
	}
}

func TestTriggerGivesUpWithItsContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := trigger(ctx, srv.URL, "tok", "etl_ml_training", nil); err == nil {
		t.Fatal("trigger succeeded against a server that always rate-limits")
	}
}

func TestTriggerReportsOtherErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"unknown pipeline"}`, http.StatusNotFound)
	}))
	defer srv.Close()
	if _, _, err := trigger(context.Background(), srv.URL, "tok", "nope", nil); err == nil {
		t.Fatal("trigger succeeded on a 404")
	}
}

func TestRetryAfter(t *testing.T) {
	for h, want := range map[string]time.Duration{"": time.Second, "3": 3 * time.Second, "0": time.Second,
		"Wed, 21 Oct 2015 07:28:00 GMT": time.Second} {
		if got := retryAfter(h); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", h, got, want)
		}
	}
}
