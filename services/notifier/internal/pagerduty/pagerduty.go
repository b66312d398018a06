// Package pagerduty sends alerts to PagerDuty's Events API v2
// (https://developer.pagerduty.com/docs/events-api-v2/overview): a trigger
// opens an incident, a resolve with the same dedup key closes it.
//
// The routing key is a secret. An Event carries none: notify stores events
// in the notifications table, and Client.Send adds the key to the request
// only. Requests go through webhook.Poster, so PagerDuty's answers are
// classified like a webhook's: 2xx (202) sent, 429 and 5xx temporary, other
// 4xx (400: an invalid event) permanent.
package pagerduty

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/cmmsflow/cmmsflow/services/notifier/internal/webhook"
)

// DefaultEventsURL is the Events API v2 endpoint.
const DefaultEventsURL = "https://events.pagerduty.com/v2/enqueue"

// Event actions.
const (
	Trigger = "trigger"
	Resolve = "resolve"
)

// Severities PagerDuty accepts; also the alerts table's.
var Severities = []string{"critical", "error", "warning", "info"}

// Event is one Events API v2 event, without its routing key.
type Event struct {
	RoutingKey string   `json:"routing_key,omitempty"` // set by Send only
	Action     string   `json:"event_action"`
	DedupKey   string   `json:"dedup_key"`
	Payload    *Payload `json:"payload,omitempty"` // required by trigger, ignored by resolve
}

// Payload describes a triggered incident.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Component     string         `json:"component,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// maxSummary is PagerDuty's limit on a summary.
const maxSummary = 1024

// Validate checks e as PagerDuty would, but for the routing key.
func (e Event) Validate() error {
	if e.DedupKey == "" || len(e.DedupKey) > 255 {
		return fmt.Errorf("pagerduty: dedup_key must have 1 to 255 characters, got %d", len(e.DedupKey))
	}
	switch e.Action {
	case Resolve:
		return nil
	case Trigger:
	default:
		return fmt.Errorf("pagerduty: event_action %q: want %s or %s", e.Action, Trigger, Resolve)
	}
	p := e.Payload
	switch {
	case p == nil:
		return errors.New("pagerduty: a trigger needs a payload")
	case p.Summary == "" || len([]rune(p.Summary)) > maxSummary:
		return fmt.Errorf("pagerduty: summary must have 1 to %d characters", maxSummary)
	case p.Source == "":
		return errors.New("pagerduty: a trigger needs a source")
	case !slices.Contains(Severities, p.Severity):
		return fmt.Errorf("pagerduty: severity %q: want one of %v", p.Severity, Severities)
	}
	return nil
}

// TargetID is the notifications.target of a PagerDuty delivery. Webhook
// targets' ids are <kind>-<hash>, so none is ever equal to it.
const TargetID = "pagerduty"

// Client sends events to one routing key.
type Client struct {
	target webhook.Target
	key    string
	poster *webhook.Poster
}

// New returns a client sending to eventsURL (DefaultEventsURL when empty)
// with routingKey, through poster.
func New(eventsURL, routingKey string, poster *webhook.Poster) (*Client, error) {
	if eventsURL == "" {
		eventsURL = DefaultEventsURL
	}
	if err := CheckURL(eventsURL); err != nil {
		return nil, err
	}
	if routingKey == "" {
		return nil, errors.New("pagerduty: no routing key")
	}
	return &Client{target: webhook.Target{ID: TargetID, Kind: TargetID, URL: eventsURL}, key: routingKey, poster: poster}, nil
}

// CheckURL checks an events URL.
func CheckURL(eventsURL string) error {
	u, err := url.Parse(eventsURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("pagerduty: events URL %q: want an http(s) URL", eventsURL)
	}
	return nil
}

// Redacted names the client's endpoint and key without the key: the
// endpoint's host and the first 8 hex digits of the key's SHA-256, enough to
// tell two keys apart.
func (c *Client) Redacted() string {
	sum := sha256.Sum256([]byte(c.key))
	return c.target.Redacted() + " key sha256:" + hex.EncodeToString(sum[:4])
}

// Send posts the stored event body with the routing key added. A body that
// does not decode or validate is a permanent failure.
func (c *Client) Send(ctx context.Context, body []byte) error {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return &webhook.Error{Target: c.Redacted(), Err: fmt.Errorf("stored event: %w", err)}
	}
	if err := e.Validate(); err != nil {
		return &webhook.Error{Target: c.Redacted(), Err: err}
	}
	e.RoutingKey = c.key
	b, err := json.Marshal(e)
	if err != nil {
		return &webhook.Error{Target: c.Redacted(), Err: err}
	}
	return c.poster.Post(ctx, c.target, b)
}
