// Package sendgridfake is a SendGrid v3 Mail Send API on loopback for the
// local stack's chaos runs: notifier is pointed at it with EMAIL_MODE=sendgrid
// and SENDGRID_BASE_URL. It checks the bearer key and the request's shape,
// can be told to answer 429 and 5xx for a while (Fail), and records every
// message it accepted with its cmmsflow_key custom argument (notifier's
// notification key), so a test can count duplicates per key.
package sendgridfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is a running fake.
type Server struct {
	URL string // http://127.0.0.1:port

	key string
	srv *http.Server

	mu        sync.Mutex
	failUntil time.Time
	failCodes []int
	nextCode  int
	accepted  map[string]int // by cmmsflow_key
	faults    int
	rejected  int
}

// Start serves a fake accepting apiKey on a free 127.0.0.1 port.
func Start(apiKey string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sendgridfake: %w", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), key: apiKey, accepted: map[string]int{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the fake.
func (s *Server) Close() { _ = s.srv.Close() }

// Fail makes the fake answer every well-formed request with codes in turn
// (e.g. 429, 500, 503) until d has passed; the requests are not accepted.
func (s *Server) Fail(d time.Duration, codes ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(codes) == 0 {
		codes = []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable}
	}
	s.failUntil, s.failCodes = time.Now().Add(d), codes
}

// Heal ends a Fail period at once.
func (s *Server) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failUntil = time.Time{}
}

// Accepted returns how many times each key was accepted (202).
func (s *Server) Accepted() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.accepted))
	for k, v := range s.accepted {
		out[k] = v
	}
	return out
}

// Faults is how many requests were answered with a Fail code.
func (s *Server) Faults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Rejected is how many requests were malformed or unauthorised.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

type request struct {
	Personalizations []struct {
		To []struct {
			Email string `json:"email"`
		} `json:"to"`
	} `json:"personalizations"`
	From struct {
		Email string `json:"email"`
	} `json:"from"`
	Subject    string            `json:"subject"`
	Content    []json.RawMessage `json:"content"`
	CustomArgs map[string]string `json:"custom_args"`
}

func (s *Server) reject(w http.ResponseWriter, code int, why string) {
	s.mu.Lock()
	s.rejected++
	s.mu.Unlock()
	writeErr(w, code, why)
}

func writeErr(w http.ResponseWriter, code int, why string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": why}}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send" {
		s.reject(w, http.StatusNotFound, "not the mail send endpoint")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.key {
		s.reject(w, http.StatusUnauthorized, "bad API key")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 30<<20))
	if err != nil {
		s.reject(w, http.StatusBadRequest, err.Error())
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		s.reject(w, http.StatusBadRequest, "body is not JSON")
		return
	}
	key := req.CustomArgs["cmmsflow_key"]
	if len(req.Personalizations) == 0 || len(req.Personalizations[0].To) == 0 || req.From.Email == "" ||
		req.Subject == "" || len(req.Content) == 0 || key == "" {
		s.reject(w, http.StatusBadRequest, "personalizations, from, subject, content and custom_args.cmmsflow_key are required")
		return
	}
	s.mu.Lock()
	if time.Now().Before(s.failUntil) {
		code := s.failCodes[s.nextCode%len(s.failCodes)]
		s.nextCode++
		s.faults++
		s.mu.Unlock()
		writeErr(w, code, fmt.Sprintf("fake answered %d", code))
		return
	}
	s.accepted[key]++
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}
