package service

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Every calls its job on each tick until the context ends, logging failures,
// and Background's Stop waits for the job to return.
func TestEveryAndBackground(t *testing.T) {
	var out syncBuf
	log := slog.New(slog.NewTextHandler(&out, nil))
	var calls atomic.Int64
	s := &Service{}
	s.Background(func(ctx context.Context) {
		Every(ctx, 5*time.Millisecond, log, "the job", func(context.Context) error {
			if calls.Add(1) == 2 {
				return errors.New("boom")
			}
			return nil
		})
	})
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in 5 s", calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	for _, stop := range s.stops {
		stop()
	}
	after := calls.Load()
	time.Sleep(30 * time.Millisecond)
	if calls.Load() != after {
		t.Fatal("the job ran after Stop returned")
	}
	if got := out.String(); strings.Count(got, `msg="the job failed; will retry" error=boom`) != 1 {
		t.Fatalf("log: %s", got)
	}
}

// A zero interval (a Config built in code) runs at DefaultEvery instead of
// panicking in time.NewTicker: nothing is called before the context ends.
func TestEveryZeroInterval(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var calls atomic.Int64
	go func() {
		defer close(done)
		Every(ctx, 0, slog.Default(), "job", func(context.Context) error { calls.Add(1); return nil })
	}()
	cancel()
	<-done
	if n := calls.Load(); n != 0 {
		t.Fatalf("job called %d times before the first DefaultEvery tick", n)
	}
}
