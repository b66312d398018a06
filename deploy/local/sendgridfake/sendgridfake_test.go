package sendgridfake

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, s *Server, key, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/v3/mail/send", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

const mail = `{"personalizations":[{"to":[{"email":"a@x"}]}],"from":{"email":"f@x"},"subject":"s",
	"content":[{"type":"text/plain","value":"v"}],"custom_args":{"cmmsflow_key":"k1"}}`

func TestFakeFailsThenAcceptsAndCountsKeys(t *testing.T) {
	s, err := Start("SG.test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if code := post(t, s, "wrong", mail); code != http.StatusUnauthorized {
		t.Fatalf("bad key: %d", code)
	}
	if code := post(t, s, "SG.test", `{"subject":"x"}`); code != http.StatusBadRequest {
		t.Fatalf("malformed: %d", code)
	}
	s.Fail(time.Hour, 429, 503)
	if a, b := post(t, s, "SG.test", mail), post(t, s, "SG.test", mail); a != 429 || b != 503 {
		t.Fatalf("failing: %d %d", a, b)
	}
	s.Heal()
	for range 2 {
		if code := post(t, s, "SG.test", mail); code != http.StatusAccepted {
			t.Fatalf("healthy: %d", code)
		}
	}
	if got := s.Accepted()["k1"]; got != 2 || s.Faults() != 2 || s.Rejected() != 2 {
		t.Fatalf("accepted %d, faults %d, rejected %d", got, s.Faults(), s.Rejected())
	}
}
