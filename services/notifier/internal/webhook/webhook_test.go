package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

func TestParseTargets(t *testing.T) {
	ts, err := webhook.ParseTargets(" slack=https://hooks.slack.test/services/T/B/secret , teams=https://teams.test/workflows/x?sig=abc," +
		"json=http://127.0.0.1:9/hook, generic=http://127.0.0.1:9/other, https://bare.test/hook?token=a=b,,")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind webhook.Kind
		url  string
	}{
		{webhook.Slack, "https://hooks.slack.test/services/T/B/secret"},
		{webhook.Teams, "https://teams.test/workflows/x?sig=abc"},
		{webhook.Generic, "http://127.0.0.1:9/hook"},
		{webhook.Generic, "http://127.0.0.1:9/other"},
		{webhook.Generic, "https://bare.test/hook?token=a=b"},
	}
	if len(ts) != len(want) {
		t.Fatalf("targets %+v", ts)
	}
	ids := map[string]bool{}
	for i, w := range want {
		if ts[i].Kind != w.kind || ts[i].URL != w.url {
			t.Errorf("target %d: %s %s, want %s %s", i, ts[i].Kind, ts[i].URL, w.kind, w.url)
		}
		if !strings.HasPrefix(ts[i].ID, string(w.kind)+"-") || ids[ts[i].ID] {
			t.Errorf("target id %q", ts[i].ID)
		}
		ids[ts[i].ID] = true
	}
	if r := ts[0].Redacted(); r != "slack https://hooks.slack.test/…" {
		t.Errorf("redacted %q", r)
	}
	again, _ := webhook.ParseTargets("slack=https://hooks.slack.test/services/T/B/secret")
	if again[0].ID != ts[0].ID {
		t.Error("target id is not stable")
	}
	if ts, err := webhook.ParseTargets(""); err != nil || len(ts) != 0 {
		t.Errorf("empty list: %v %v", ts, err)
	}
	for _, bad := range []string{"email=https://x.test", "slack=ftp://x.test", "slack=", "not a url"} {
		if _, err := webhook.ParseTargets(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func message() webhook.Message {
	return webhook.Message{
		Kind: "pm_summary", RunID: "run-1", Pipeline: "preventive_maintenance", Severity: "info",
		Title: "Preventive maintenance: 7 work orders created", Text: "3 technicians notified <ok>",
		Facts: []webhook.Fact{{Label: "Created", Value: "7"}, {Label: "Failed", Value: "0"}},
		Data:  map[string]any{"created": 7},
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPayloads(t *testing.T) {
	b, err := webhook.Payload(webhook.Slack, message())
	if err != nil {
		t.Fatal(err)
	}
	slack := decode(t, b)
	if slack["text"] != "Preventive maintenance: 7 work orders created" {
		t.Errorf("slack text %v", slack["text"])
	}
	blocks := slack["blocks"].([]any)
	if len(blocks) != 4 || blocks[0].(map[string]any)["type"] != "header" ||
		!strings.Contains(string(b), `3 technicians notified \u0026lt;ok\u0026gt;`) || !strings.Contains(string(b), `*Created*\n7`) {
		t.Errorf("slack blocks %s", b)
	}

	b, err = webhook.Payload(webhook.Teams, message())
	if err != nil {
		t.Fatal(err)
	}
	teams := decode(t, b)
	att := teams["attachments"].([]any)[0].(map[string]any)
	card := att["content"].(map[string]any)
	if teams["type"] != "message" || att["contentType"] != "application/vnd.microsoft.card.adaptive" ||
		card["type"] != "AdaptiveCard" || len(card["body"].([]any)) != 4 {
		t.Errorf("teams payload %s", b)
	}

	b, err = webhook.Payload(webhook.Generic, message())
	if err != nil {
		t.Fatal(err)
	}
	generic := decode(t, b)
	if generic["kind"] != "pm_summary" || generic["run_id"] != "run-1" || generic["data"].(map[string]any)["created"] != 7.0 ||
		len(generic["facts"].([]any)) != 2 {
		t.Errorf("generic payload %s", b)
	}
	if _, err := webhook.Payload("email", message()); err == nil {
		t.Error("unknown kind encoded")
	}
}

func TestPosterClassifiesAnswers(t *testing.T) {
	var status int
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
		io.WriteString(w, "answer")
	}))
	defer srv.Close()
	target := webhook.Target{ID: "json-1", Kind: webhook.Generic, URL: srv.URL + "/secret-token"}
	p := webhook.NewPoster(nil)
	for _, tt := range []struct {
		status    int
		ok        bool
		permanent bool
	}{
		{200, true, false}, {204, true, false},
		{400, false, true}, {404, false, true}, {410, false, true},
		{429, false, false}, {500, false, false}, {503, false, false},
	} {
		status = tt.status
		err := p.Post(context.Background(), target, []byte(`{"a":1}`))
		if (err == nil) != tt.ok || webhook.IsPermanent(err) != tt.permanent {
			t.Errorf("status %d: error %v, permanent %v", tt.status, err, webhook.IsPermanent(err))
		}
		if err != nil && strings.Contains(err.Error(), "secret-token") {
			t.Errorf("error %q reveals the webhook URL", err)
		}
		if string(got) != `{"a":1}` {
			t.Errorf("body %q", got)
		}
	}
	srv.Close()
	err := p.Post(context.Background(), target, []byte(`{}`))
	if err == nil || webhook.IsPermanent(err) || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("unreachable: %v", err)
	}
}

// A webhook that answers with a redirect has not been delivered to: the
// poster does not follow it (the second server receives nothing, whatever
// the redirect's kind), and the failure is permanent and names where the
// redirect points, without the path that may hold a secret.
func TestPosterDoesNotFollowRedirects(t *testing.T) {
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	defer elsewhere.Close()
	var status int
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/stolen-token", status)
	}))
	defer hook.Close()
	target := webhook.Target{ID: "json-1", Kind: webhook.Generic, URL: hook.URL + "/secret-token"}
	p := webhook.NewPoster(&http.Client{Timeout: 5 * time.Second})
	for _, status = range []int{301, 302, 303, 307, 308} {
		err := p.Post(context.Background(), target, []byte(`{"a":1}`))
		want := fmt.Sprintf("HTTP %d: redirected to %s/…, which is not followed", status, elsewhere.URL)
		if err == nil || !strings.Contains(err.Error(), want) || !webhook.IsPermanent(err) {
			t.Errorf("redirect %d: %v, want a permanent failure containing %q", status, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "secret-token") || strings.Contains(err.Error(), "stolen-token")) {
			t.Errorf("redirect %d: error %q reveals a URL's path", status, err)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the redirect's target received %d requests, want none", n)
	}
}
