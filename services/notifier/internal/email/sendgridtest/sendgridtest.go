// Package sendgridtest is a fake SendGrid v3 Mail Send API for tests. It
// checks each request as SendGrid would (method, path, bearer key, JSON
// shape, content order, attachment encoding), answers 401/400 when they are
// wrong, and otherwise answers what the test's responder says (202 by
// default), recording every request it received.
package sendgridtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Address is a SendGrid email object.
type Address struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// Personalization is one SendGrid personalization.
type Personalization struct {
	To []Address `json:"to"`
}

// Content is one body.
type Content struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Attachment is one attachment, content base64 as sent.
type Attachment struct {
	Content     string `json:"content"`
	Type        string `json:"type"`
	Filename    string `json:"filename"`
	Disposition string `json:"disposition"`
	ContentID   string `json:"content_id"`
}

// Request is one decoded Mail Send request.
type Request struct {
	Authorization    string
	Personalizations []Personalization `json:"personalizations"`
	From             Address           `json:"from"`
	Subject          string            `json:"subject"`
	Content          []Content         `json:"content"`
	Attachments      []Attachment      `json:"attachments"`
	CustomArgs       map[string]string `json:"custom_args"`
}

// To lists the recipients' addresses.
func (r Request) To() []string {
	var out []string
	for _, p := range r.Personalizations {
		for _, a := range p.To {
			out = append(out, a.Email)
		}
	}
	return out
}

// Body is the content of the given type ("text/plain", "text/html").
func (r Request) Body(typ string) string {
	for _, c := range r.Content {
		if c.Type == typ {
			return c.Value
		}
	}
	return ""
}

// Key is the cmmsflow_key custom argument.
func (r Request) Key() string { return r.CustomArgs["cmmsflow_key"] }

// Decoded returns an attachment's bytes.
func (a Attachment) Decoded() ([]byte, error) { return base64.StdEncoding.DecodeString(a.Content) }

// Server is the fake.
type Server struct {
	*httptest.Server
	key string

	mu        sync.Mutex
	requests  []Request
	respond   func(Request) int
	malformed []string
}

// New starts a fake accepting apiKey, closed when the test ends.
func New(t testing.TB, apiKey string) *Server {
	s := &Server{key: apiKey, respond: func(Request) int { return http.StatusAccepted }}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Respond sets the status the fake answers a well-formed request with.
func (s *Server) Respond(f func(Request) int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.respond = f
}

// Requests returns every well-formed request received, in order, whatever
// the answer.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Malformed returns why each rejected request was rejected.
func (s *Server) Malformed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.malformed)
}

func (s *Server) reject(w http.ResponseWriter, code int, why string) {
	s.mu.Lock()
	s.malformed = append(s.malformed, why)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": why}}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send" {
		s.reject(w, http.StatusNotFound, fmt.Sprintf("%s %s: not the mail send endpoint", r.Method, r.URL.Path))
		return
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+s.key {
		s.reject(w, http.StatusUnauthorized, fmt.Sprintf("authorization %q", got))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.reject(w, http.StatusBadRequest, fmt.Sprintf("content type %q", ct))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.reject(w, http.StatusBadRequest, err.Error())
		return
	}
	var req Request
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&req); err != nil {
		s.reject(w, http.StatusBadRequest, "body is not JSON: "+err.Error())
		return
	}
	req.Authorization = r.Header.Get("Authorization")
	if why := check(req); why != "" {
		s.reject(w, http.StatusBadRequest, why)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	respond := s.respond
	s.mu.Unlock()
	code := respond(req)
	if code >= 300 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"errors":[{"message":"fake answered %d"}]}`, code)
		return
	}
	w.WriteHeader(code)
}

// check applies SendGrid's documented request rules.
func check(r Request) string {
	switch {
	case len(r.Personalizations) == 0:
		return "personalizations: at least one is required"
	case r.From.Email == "":
		return "from.email is required"
	case r.Subject == "":
		return "subject is required"
	case len(r.Content) == 0:
		return "content: at least one is required"
	}
	for _, p := range r.Personalizations {
		if len(p.To) == 0 {
			return "personalizations.to is required"
		}
		for _, a := range p.To {
			if !strings.Contains(a.Email, "@") {
				return fmt.Sprintf("to.email %q is invalid", a.Email)
			}
		}
	}
	for i, c := range r.Content {
		if c.Type == "text/plain" && i != 0 {
			return "content: text/plain must come first"
		}
		if c.Value == "" {
			return "content.value is required"
		}
	}
	for _, a := range r.Attachments {
		if a.Filename == "" || a.Content == "" {
			return "attachments need content and filename"
		}
		if _, err := base64.StdEncoding.DecodeString(a.Content); err != nil {
			return "attachments.content is not base64"
		}
		if a.Disposition == "inline" && a.ContentID == "" {
			return "inline attachments need a content_id"
		}
	}
	return ""
}
