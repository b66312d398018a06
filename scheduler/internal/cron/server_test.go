package cron

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pubsubtest"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

// The wired publisher: it serves /healthz, publishes kicks to the emulator
// at PUBSUB_EMULATOR_HOST (here a pstest server on loopback), and stops
// cleanly when its context ends, as on SIGTERM.
func TestServer(t *testing.T) {
	ps := pubsubtest.New(t)
	sub := ps.Subscribe(t, "pipeline-triggered")
	s, err := New(context.Background(), Config{
		Port: 0, ProjectID: pubsubtest.Project, EmulatorHost: ps.Addr, TimeZone: "Europe/Berlin",
		Only: []string{events.WeeklyKPIReport}, PublishTimeout: 5 * time.Second,
		LogFormat: "text", LogLevel: "error", ShutdownGrace: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.cron.Entries(); len(got) != 1 || got[0].Location().String() != "Europe/Berlin" {
		t.Fatalf("entries %+v", got)
	}
	s.cron.schedule = everySecond
	addr, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	resp, err := http.Get("http://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"status":"ok"`)) {
		t.Errorf("/healthz: %d %s", resp.StatusCode, body)
	}

	m := sub.Next(10 * time.Second)
	if m == nil {
		t.Fatal("no kick arrived")
	}
	want := scheduler.KickMessage(events.WeeklyKPIReport)
	if !maps.Equal(m.Attributes, want.Attributes) || !bytes.Equal(m.Data, want.Data) {
		t.Errorf("received %v %s, want %v %s", m.Attributes, m.Data, want.Attributes, want.Data)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop within the shutdown grace")
	}
	if _, err := http.Get("http://" + addr.String() + "/healthz"); err == nil {
		t.Error("/healthz still served after shutdown")
	}
}
