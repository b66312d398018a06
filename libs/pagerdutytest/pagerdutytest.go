// Package pagerdutytest is a fake PagerDuty Events API v2 for tests
// (https://developer.pagerduty.com/docs/events-api-v2/overview). It checks
// each request as PagerDuty does (POST /v2/enqueue, JSON, routing key,
// event_action, dedup_key, the trigger's payload), answers 400 when it is
// wrong and 202 {"status":"success","dedup_key":…} when it is right,
// records every request, and keeps one incident per dedup key: a trigger
// opens it, a resolve closes it. A test can make it fail requests with a
// status, or hold requests (receive them without answering) to stop the
// sender while PagerDuty has its event.
package pagerdutytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// Path is the Events API v2 path.
const Path = "/v2/enqueue"

// Event is a decoded request body.
type Event struct {
	RoutingKey string   `json:"routing_key"`
	Action     string   `json:"event_action"`
	DedupKey   string   `json:"dedup_key"`
	Payload    *Payload `json:"payload"`
}

// Payload is a trigger's payload.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Component     string         `json:"component"`
	CustomDetails map[string]any `json:"custom_details"`
}

// Request is one request received and what it was answered.
type Request struct {
	Body   []byte
	Event  Event // zero if the body did not decode
	Status int   // the status answered; 0 when the client went away while it was held
}

// Incident is the state of one dedup key.
type Incident struct {
	Open     bool
	Triggers int // triggers accepted
	Resolves int // resolves accepted
}

// Server is the fake.
type Server struct {
	*httptest.Server
	key string

	mu        sync.Mutex
	requests  []Request
	incidents map[string]*Incident
	fail      []int            // statuses for the next requests, in turn
	hold      func(Event) bool // which valid requests to hold
	held      chan Event       // a request is being held
	release   chan struct{}    // closed by Release
}

// New starts a fake accepting routingKey, stopped at test end.
func New(t testing.TB, routingKey string) *Server {
	t.Helper()
	s := &Server{key: routingKey, incidents: map[string]*Incident{}, held: make(chan Event, 64), release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.Release()
		s.Close()
	})
	return s
}

// EventsURL is the URL to send events to.
func (s *Server) EventsURL() string { return s.URL + Path }

// Fail answers the next requests with statuses, in turn, before checking
// them; their events do not reach an incident.
func (s *Server) Fail(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, statuses...)
}

// Hold holds every valid request for which match is true: it is received
// but not answered until Release. A held request whose client goes away
// counts as accepted, as at PagerDuty: the event arrived, only the answer
// was lost. Held announces each held request.
func (s *Server) Hold(match func(Event) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = match
}

// Held receives the event of each request as it is held.
func (s *Server) Held() <-chan Event { return s.held }

// Release answers the held requests and holds no more.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = nil
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

// Requests returns every request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Incident returns the state of dedupKey's incident (zero: never triggered).
func (s *Server) Incident(dedupKey string) Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.incidents[dedupKey]; in != nil {
		return *in
	}
	return Incident{}
}

// Incidents returns every incident by dedup key.
func (s *Server) Incidents() map[string]Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Incident, len(s.incidents))
	for k, in := range s.incidents {
		out[k] = *in
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var e Event
	decodeErr := json.Unmarshal(body, &e)
	s.mu.Lock()
	status, msg := 0, ""
	if len(s.fail) > 0 {
		status, s.fail = s.fail[0], s.fail[1:]
		msg = http.StatusText(status)
	} else if msg = s.check(r, e, decodeErr); msg != "" {
		status = http.StatusBadRequest
	}
	hold := status == 0 && s.hold != nil && s.hold(e)
	release := s.release
	s.mu.Unlock()
	if hold {
		s.held <- e
		select {
		case <-release:
		case <-r.Context().Done():
			s.accept(Request{Body: body, Event: e})
			return
		}
	}
	if status != 0 {
		s.record(Request{Body: body, Event: e, Status: status})
		writeJSON(w, status, map[string]any{"status": "invalid event", "message": msg, "errors": []string{msg}})
		return
	}
	s.accept(Request{Body: body, Event: e, Status: http.StatusAccepted})
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": e.DedupKey})
}

// accept records r and applies its event to its incident.
func (s *Server) accept(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
	in := s.incidents[r.Event.DedupKey]
	if in == nil {
		in = &Incident{}
		s.incidents[r.Event.DedupKey] = in
	}
	switch r.Event.Action {
	case "trigger":
		in.Open = true
		in.Triggers++
	case "resolve":
		in.Open = false
		in.Resolves++
	}
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
}

var severities = []string{"critical", "error", "warning", "info"}

// check returns why PagerDuty would refuse the request ("" if it would not).
// Unlike PagerDuty, it also requires a trigger's dedup_key: the sender under
// test always sets one.
func (s *Server) check(r *http.Request, e Event, decodeErr error) string {
	switch {
	case r.Method != http.MethodPost || r.URL.Path != Path:
		return fmt.Sprintf("%s %s: want POST %s", r.Method, r.URL.Path, Path)
	case decodeErr != nil:
		return "body is not a JSON event: " + decodeErr.Error()
	case e.RoutingKey != s.key:
		return "Invalid routing key"
	case e.Action != "trigger" && e.Action != "resolve" && e.Action != "acknowledge":
		return fmt.Sprintf("event_action %q is invalid", e.Action)
	case e.DedupKey == "" || len(e.DedupKey) > 255:
		return "dedup_key must have 1 to 255 characters"
	case e.Action != "trigger":
		return ""
	case e.Payload == nil:
		return "payload is missing"
	case e.Payload.Summary == "" || len([]rune(e.Payload.Summary)) > 1024:
		return "payload.summary must have 1 to 1024 characters"
	case e.Payload.Source == "":
		return "payload.source is missing"
	case !slices.Contains(severities, e.Payload.Severity):
		return fmt.Sprintf("payload.severity %q is invalid", e.Payload.Severity)
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
