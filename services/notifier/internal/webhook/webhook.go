// Package webhook posts notifier's messages to chat and automation webhooks:
// Slack incoming webhooks, Microsoft Teams (an Adaptive Card in a message, the
// shape Teams workflows and incoming webhooks accept) and generic JSON.
package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Kind is a webhook flavour.
type Kind string

const (
	Slack   Kind = "slack"
	Teams   Kind = "teams"
	Generic Kind = "json" // "generic" is accepted as an alias
)

// Target is one configured webhook.
type Target struct {
	// ID is stable for a given kind and URL, and safe to store and log:
	// webhook URLs embed their secret.
	ID   string
	Kind Kind
	URL  string
}

// Redacted is the target without its secret: kind, scheme and host.
func (t Target) Redacted() string {
	u, err := url.Parse(t.URL)
	if err != nil {
		return string(t.Kind)
	}
	return string(t.Kind) + " " + u.Scheme + "://" + u.Host + "/…"
}

// ParseTargets parses a comma-separated list of webhooks, each
// "<kind>=<url>" with kind slack, teams or json (alias generic); a bare URL
// is a generic JSON webhook.
func ParseTargets(list string) ([]Target, error) {
	var out []Target
	seen := map[string]bool{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		kind, raw := Generic, item
		if k, v, ok := strings.Cut(item, "="); ok {
			switch Kind(strings.ToLower(strings.TrimSpace(k))) {
			case Slack:
				kind, raw = Slack, v
			case Teams:
				kind, raw = Teams, v
			case Generic, "generic":
				kind, raw = Generic, v
			default:
				if !strings.Contains(k, "://") {
					return nil, fmt.Errorf("webhook: unknown kind %q (want slack, teams or json)", k)
				}
			}
		}
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("webhook: %s target is not an http(s) URL", kind)
		}
		sum := sha256.Sum256([]byte(string(kind) + "=" + raw))
		t := Target{ID: string(kind) + "-" + hex.EncodeToString(sum[:])[:10], Kind: kind, URL: raw}
		if seen[t.ID] {
			continue
		}
		seen[t.ID] = true
		out = append(out, t)
	}
	return out, nil
}

// Message is what a webhook announces.
type Message struct {
	Kind     string // what happened: pm_summary, alert, ...
	RunID    string
	Pipeline string
	Title    string
	Text     string // a few lines of plain text
	Facts    []Fact // label/value pairs shown as a table where the format has one
	Data     any    // the structured payload, in generic JSON only
	Severity string // "info" or "error"
}

// Fact is one label/value pair.
type Fact struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Payload encodes m as the JSON body kind expects.
func Payload(kind Kind, m Message) ([]byte, error) {
	switch kind {
	case Slack:
		return json.Marshal(slackPayload(m))
	case Teams:
		return json.Marshal(teamsPayload(m))
	case Generic:
		return json.Marshal(map[string]any{
			"kind": m.Kind, "run_id": m.RunID, "pipeline": m.Pipeline, "severity": m.Severity,
			"title": m.Title, "text": m.Text, "facts": m.Facts, "data": m.Data,
		})
	}
	return nil, fmt.Errorf("webhook: unknown kind %q", kind)
}

// slackPayload is an incoming-webhook message: text (the notification
// fallback) plus Block Kit blocks.
func slackPayload(m Message) map[string]any {
	blocks := []map[string]any{
		{"type": "header", "text": map[string]any{"type": "plain_text", "text": truncate(m.Title, 150)}},
	}
	if m.Text != "" {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": truncate(slackEscape(m.Text), 3000)}})
	}
	if len(m.Facts) > 0 {
		var fields []map[string]any
		for _, f := range m.Facts {
			if len(fields) == 10 { // Slack's limit per section
				break
			}
			fields = append(fields, map[string]any{"type": "mrkdwn", "text": "*" + slackEscape(f.Label) + "*\n" + slackEscape(f.Value)})
		}
		blocks = append(blocks, map[string]any{"type": "section", "fields": fields})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []map[string]any{
		{"type": "mrkdwn", "text": slackEscape(fmt.Sprintf("cmmsflow · %s · run %s", m.Pipeline, m.RunID))},
	}})
	return map[string]any{"text": m.Title, "blocks": blocks}
}

func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// teamsPayload is a message carrying one Adaptive Card.
func teamsPayload(m Message) map[string]any {
	color := "Default"
	if m.Severity == "error" {
		color = "Attention"
	}
	body := []map[string]any{
		{"type": "TextBlock", "text": m.Title, "weight": "Bolder", "size": "Medium", "wrap": true, "color": color},
	}
	if m.Text != "" {
		body = append(body, map[string]any{"type": "TextBlock", "text": m.Text, "wrap": true})
	}
	if len(m.Facts) > 0 {
		var facts []map[string]any
		for _, f := range m.Facts {
			facts = append(facts, map[string]any{"title": f.Label, "value": f.Value})
		}
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	}
	body = append(body, map[string]any{"type": "TextBlock", "text": fmt.Sprintf("cmmsflow · %s · run %s", m.Pipeline, m.RunID),
		"isSubtle": true, "size": "Small", "wrap": true})
	return map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content": map[string]any{
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"type":    "AdaptiveCard",
				"version": "1.4",
				"body":    body,
			},
		}},
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Poster posts payloads.
type Poster struct {
	client *http.Client
}

// NewPoster returns a poster using a copy of client (nil: a client with a
// 30 s timeout) that never follows redirects: a redirect would carry the
// message, and the secret in the URL's path or query, to a host nobody
// configured, and would turn a POST into a GET to it (302, 303). Post
// reports a 3xx as a failed delivery instead.
func NewPoster(client *http.Client) *Poster {
	c := http.Client{Timeout: 30 * time.Second}
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Poster{client: &c}
}

// Error is a post the endpoint refused or that did not reach it.
type Error struct {
	Target     string // redacted
	StatusCode int    // 0 when there was no response
	Body       string
	Temporary  bool
	Err        error
}

func (e *Error) Error() string {
	msg := "webhook " + e.Target + ": post failed"
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.StatusCode)
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether a failed post will fail the same way again:
// a 3xx (a redirect, not followed) or a 4xx other than 408 and 429.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && !e.Temporary
}

// Post sends body as JSON to t. 2xx is success; 408, 429, 5xx and network
// errors are temporary; other statuses, redirects included, are permanent.
func (p *Poster) Post(ctx context.Context, t Target, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return &Error{Target: t.Redacted(), Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cmmsflow-notifier")
	resp, err := p.client.Do(req)
	if err != nil {
		// url.Error carries the URL, and so the secret: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &Error{Target: t.Redacted(), Temporary: true, Err: err}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	code := resp.StatusCode
	e := &Error{
		Target:     t.Redacted(),
		StatusCode: code,
		Body:       strings.TrimSpace(string(answer)),
		Temporary:  code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500,
	}
	if code >= 300 && code < 400 {
		e.Body = "" // a redirect's body is boilerplate ("Found.")
		e.Err = fmt.Errorf("redirected to %s, which is not followed: configure the webhook with the URL it redirects to",
			redactedURL(resp.Header.Get("Location"), t.URL))
	}
	return e
}

// redactedURL is location, resolved against base, as scheme and host only:
// its path and query may hold a secret too.
func redactedURL(location, base string) string {
	if location == "" {
		return "nowhere (no Location header)"
	}
	b, err := url.Parse(base)
	if err != nil {
		return "an unreadable Location"
	}
	u, err := b.Parse(location)
	if err != nil || u.Host == "" {
		return "an unreadable Location"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
