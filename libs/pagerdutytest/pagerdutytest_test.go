package pagerdutytest_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/pagerdutytest"
)

func post(ctx context.Context, t *testing.T, url, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

const trigger = `{"routing_key":"k","event_action":"trigger","dedup_key":"d1",
	"payload":{"summary":"s","source":"cmmsflow","severity":"error"}}`

func TestValidatesAndModelsIncidents(t *testing.T) {
	s := pagerdutytest.New(t, "k")
	code, body, _ := post(t.Context(), t, s.EventsURL(), trigger)
	var answer map[string]any
	if err := json.Unmarshal([]byte(body), &answer); err != nil || code != http.StatusAccepted ||
		answer["status"] != "success" || answer["dedup_key"] != "d1" {
		t.Fatalf("trigger: %d %s", code, body)
	}
	for _, bad := range []string{
		`{"routing_key":"wrong","event_action":"trigger","dedup_key":"d1","payload":{"summary":"s","source":"x","severity":"error"}}`,
		`{"routing_key":"k","event_action":"open","dedup_key":"d1"}`,
		`{"routing_key":"k","event_action":"resolve"}`,
		`{"routing_key":"k","event_action":"trigger","dedup_key":"d1"}`,
		`{"routing_key":"k","event_action":"trigger","dedup_key":"d1","payload":{"summary":"s","source":"x","severity":"high"}}`,
		`{"routing_key":"k","event_action":"trigger","dedup_key":"d1","payload":{"summary":"","source":"x","severity":"info"}}`,
		`not json`,
	} {
		if code, body, _ := post(t.Context(), t, s.EventsURL(), bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", bad, code, body)
		}
	}
	if in := s.Incident("d1"); !in.Open || in.Triggers != 1 {
		t.Fatalf("incident after trigger %+v", in)
	}
	if code, _, _ := post(t.Context(), t, s.EventsURL(), `{"routing_key":"k","event_action":"resolve","dedup_key":"d1"}`); code != http.StatusAccepted {
		t.Fatalf("resolve: %d", code)
	}
	if in := s.Incident("d1"); in.Open || in.Resolves != 1 || len(s.Requests()) != 9 {
		t.Fatalf("incident %+v, %d requests recorded", in, len(s.Requests()))
	}
	s.Fail(http.StatusTooManyRequests)
	if code, _, _ := post(t.Context(), t, s.EventsURL(), trigger); code != http.StatusTooManyRequests || s.Incident("d1").Triggers != 1 {
		t.Fatalf("failed request: %d, incident %+v", code, s.Incident("d1"))
	}
}

// A held request is answered on Release; one whose client goes away while
// held counts as accepted (the event reached PagerDuty).
func TestHold(t *testing.T) {
	s := pagerdutytest.New(t, "k")
	s.Hold(func(e pagerdutytest.Event) bool { return e.Action == "trigger" })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, _, err := post(ctx, t, s.EventsURL(), trigger); done <- err }()
	<-s.Held()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the held request was answered")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Incident("d1").Triggers != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r := s.Requests(); len(r) != 1 || r[0].Status != 0 || !s.Incident("d1").Open {
		t.Fatalf("requests %+v, incident %+v", r, s.Incident("d1"))
	}
	go func() {
		<-s.Held()
		s.Release()
	}()
	if code, _, err := post(t.Context(), t, s.EventsURL(), strings.Replace(trigger, "d1", "d2", 1)); err != nil || code != http.StatusAccepted {
		t.Fatalf("released request: %d %v", code, err)
	}
}
