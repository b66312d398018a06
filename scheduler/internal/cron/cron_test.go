package cron

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	robfig "github.com/robfig/cron/v3"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pubsubtest"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

type published struct {
	topic string
	msg   eventing.Message
}

// fakePublisher records what is published.
type fakePublisher struct {
	mu   sync.Mutex
	msgs []published
	err  error
}

func (f *fakePublisher) Publish(_ context.Context, topic string, m eventing.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.msgs = append(f.msgs, published{topic, m})
	return nil
}

func (f *fakePublisher) got() []published {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msgs)
}

// syncBuffer is a log sink safe for the runner's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records returns the JSON log records with the given message.
func (s *syncBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(s.b.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func newTestCron(t *testing.T, tz string, only []string, pub eventing.Publisher) (*Cron, *syncBuffer) {
	t.Helper()
	tab, err := scheduler.Load()
	if err != nil {
		t.Fatal(err)
	}
	if tab, err = tab.InZone(tz); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	c, err := NewCron(tab, only, pub, slog.New(slog.NewJSONHandler(logs, nil)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

func sameMessage(a, b eventing.Message) bool {
	return maps.Equal(a.Attributes, b.Attributes) && bytes.Equal(a.Data, b.Data) && a.PubSubID == b.PubSubID && a.PublishTime.Equal(b.PublishTime)
}

// A tick, read from the cron's clock, publishes exactly the pipeline's kick
// to the pipeline-triggered topic and logs the tick and the next one.
func TestTickPublishesKick(t *testing.T) {
	pub := &fakePublisher{}
	c, logs := newTestCron(t, "Europe/Berlin", nil, pub)
	// The runner woke 300 ms after Sunday 5 April 2026 02:00 in Berlin.
	tick := time.Date(2026, 4, 5, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return tick.Add(300 * time.Millisecond) }
	e := c.Entries()[0]
	if e.Pipeline != events.ETLMLTraining {
		t.Fatalf("first entry %s", e.Pipeline)
	}
	c.fire(context.Background(), e)

	got := pub.got()
	if len(got) != 1 {
		t.Fatalf("%d messages published, want 1", len(got))
	}
	if got[0].topic != "pipeline-triggered" {
		t.Errorf("topic %q", got[0].topic)
	}
	if want := scheduler.KickMessage(events.ETLMLTraining); !sameMessage(got[0].msg, want) {
		t.Errorf("published %+v\nwant %+v", got[0].msg, want)
	}
	recs := logs.records(t, "kicked")
	if len(recs) != 1 {
		t.Fatalf("%d kicked log records", len(recs))
	}
	r := recs[0]
	if r["pipeline"] != events.ETLMLTraining || r["topic"] != "pipeline-triggered" ||
		r["tick"] != "2026-04-05T02:00:00+02:00" || r["next"] != "2026-04-12T02:00:00+02:00" {
		t.Errorf("log record %v", r)
	}
}

func TestKickPublishError(t *testing.T) {
	pub := &fakePublisher{err: errors.New("emulator down")}
	c, logs := newTestCron(t, "", nil, pub)
	e := c.Entries()[1]
	err := c.Kick(context.Background(), e, e.Prev(time.Now()))
	if err == nil || !strings.Contains(err.Error(), "emulator down") || !strings.Contains(err.Error(), e.Pipeline) {
		t.Fatalf("Kick error %v", err)
	}
	if recs := logs.records(t, "kick failed"); len(recs) != 1 || recs[0]["pipeline"] != e.Pipeline {
		t.Errorf("kick failed log records %v", recs)
	}
}

func TestSelectEntries(t *testing.T) {
	tab, err := scheduler.Load()
	if err != nil {
		t.Fatal(err)
	}
	ids := func(es []scheduler.Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Pipeline)
		}
		return out
	}
	all := []string{events.ETLMLTraining, events.PreventiveMaintenance, events.WeeklyKPIReport, events.ModelMonitoring}
	for _, tt := range []struct {
		only []string
		want []string
	}{
		{nil, all},
		{[]string{""}, all},
		{[]string{" weekly_kpi_report", "etl_ml_training "}, []string{events.ETLMLTraining, events.WeeklyKPIReport}},
		{[]string{"preventive_maintenance", "preventive_maintenance"}, []string{events.PreventiveMaintenance}},
	} {
		got, err := selectEntries(tab, tt.only)
		if err != nil || !slices.Equal(ids(got), tt.want) {
			t.Errorf("selectEntries(%q) = %v, %v; want %v", tt.only, ids(got), err, tt.want)
		}
	}
	if _, err := selectEntries(tab, []string{"etl"}); err == nil || !strings.Contains(err.Error(), `CRON_ONLY: unknown pipeline "etl"`) {
		t.Errorf("unknown pipeline: %v", err)
	}
}

func TestConfig(t *testing.T) {
	var cfg Config
	if err := config.LoadFrom(context.Background(), &cfg, map[string]string{"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 8090 || cfg.ProjectID != "cmmsflow-local" || cfg.TimeZone != "" || len(cfg.Only) != 0 ||
		cfg.LogFormat != "json" || cfg.LogLevel != "info" || cfg.ShutdownGrace != 9*time.Second || cfg.PublishTimeout != 30*time.Second {
		t.Errorf("defaults %+v", cfg)
	}
	cfg = Config{}
	if err := config.LoadFrom(context.Background(), &cfg, map[string]string{
		"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085", "CRON_TIME_ZONE": "Europe/Berlin",
		"CRON_ONLY": "etl_ml_training,weekly_kpi_report", "PORT": "9999", "LOG_FORMAT": "text",
	}); err != nil {
		t.Fatal(err)
	}
	if cfg.TimeZone != "Europe/Berlin" || !slices.Equal(cfg.Only, []string{"etl_ml_training", "weekly_kpi_report"}) || cfg.Port != 9999 || cfg.LogFormat != "text" {
		t.Errorf("overrides %+v", cfg)
	}
	if err := config.LoadFrom(context.Background(), &Config{}, map[string]string{}); err == nil || !strings.Contains(err.Error(), "PUBSUB_EMULATOR_HOST") {
		t.Errorf("missing PUBSUB_EMULATOR_HOST: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{EmulatorHost: "127.0.0.1:1", ProjectID: "p", TimeZone: "Mars/Olympus"}, "CRON_TIME_ZONE"},
		{Config{EmulatorHost: "127.0.0.1:1", ProjectID: "p", Only: []string{"nope"}}, "CRON_ONLY"},
		{Config{ProjectID: "p"}, "PUBSUB_EMULATOR_HOST"},
	} {
		if _, err := New(context.Background(), tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", tt.cfg, err, tt.want)
		}
	}
}

// everySecond makes the runner tick each second instead of on the table.
func everySecond(scheduler.Entry) robfig.Schedule { return robfig.Every(time.Second) }

// The runner publishes kicks through the Pub/Sub client to an in-process
// pstest server, where a subscription receives them with the kick's
// attributes, and the receiver's decoding accepts them.
func TestRunPublishesToPubSub(t *testing.T) {
	ps := pubsubtest.New(t)
	sub := ps.Subscribe(t, "pipeline-triggered")
	pub := eventing.NewPubSubPublisher(ps.Client)
	defer pub.Close()
	c, logs := newTestCron(t, "", []string{events.PreventiveMaintenance}, pub)
	c.schedule = everySecond

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	m := sub.Next(10 * time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if m == nil {
		t.Fatal("no kick arrived")
	}
	want := scheduler.KickMessage(events.PreventiveMaintenance)
	if !maps.Equal(m.Attributes, want.Attributes) || !bytes.Equal(m.Data, want.Data) {
		t.Fatalf("received attributes %v data %s\nwant %v %s", m.Attributes, m.Data, want.Attributes, want.Data)
	}
	ev, err := eventing.FromMessage(eventing.Message{Attributes: m.Attributes, Data: m.Data, PubSubID: m.ID, PublishTime: m.PublishTime})
	if err != nil {
		t.Fatalf("FromMessage rejects the received kick: %v", err)
	}
	if ev.ID() != m.ID || !ev.Time().Equal(m.PublishTime) || ev.Pipeline != events.PreventiveMaintenance {
		t.Errorf("event id %s time %v pipeline %s", ev.ID(), ev.Time(), ev.Pipeline)
	}
	if len(logs.records(t, "scheduled")) != 1 || len(logs.records(t, "kicked")) == 0 {
		t.Errorf("want one scheduled and a kicked log record")
	}
}

// Cancelling Run waits for a kick under way and does not cut it short.
func TestRunStopWaitsForKick(t *testing.T) {
	pub := &slowPublisher{started: make(chan struct{}), release: make(chan struct{})}
	c, _ := newTestCron(t, "", []string{events.WeeklyKPIReport}, pub)
	c.schedule = everySecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-pub.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no kick started")
	}
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned while a kick was under way")
	case <-time.After(200 * time.Millisecond):
	}
	close(pub.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if pub.ctxErr != nil {
		t.Errorf("the kick's context was cancelled by shutdown: %v", pub.ctxErr)
	}
}

type slowPublisher struct {
	once             sync.Once
	started, release chan struct{}
	ctxErr           error
}

func (s *slowPublisher) Publish(ctx context.Context, _ string, _ eventing.Message) error {
	first := false
	s.once.Do(func() { first = true; close(s.started) })
	if !first {
		return nil
	}
	<-s.release
	s.ctxErr = ctx.Err()
	return nil
}
