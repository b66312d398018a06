// Package backend creates preventive work orders through an existing CMMS
// backend's work-order HTTP API (pmgen's backend mode): one POST per work
// order with a bearer token and an Idempotency-Key, retried with bounded
// exponential backoff on 5xx, 429 and network errors.
package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/cmmsapi"
	"github.com/cmmsflow/cmmsflow/services/pmgen/internal/generate"
)

// Config configures a Client.
type Config struct {
	// URL is the backend's work-order collection endpoint, e.g.
	// https://cmms.example.com/api/v1/core/work-orders/.
	URL string
	// Token is sent as "Authorization: Bearer <token>".
	Token string
	// HTTPClient defaults to a client with a 30 s timeout per request.
	HTTPClient *http.Client
	// MaxAttempts bounds the POSTs per work order (default 5).
	MaxAttempts int
	// BaseDelay is the wait after the first failed attempt (default 500 ms);
	// it doubles per attempt up to MaxDelay (default 10 s). A Retry-After
	// answer is honoured up to MaxDelay.
	BaseDelay, MaxDelay time.Duration
}

// Client posts work orders to the backend. It is safe for concurrent use.
type Client struct {
	url         string
	token       string
	http        *http.Client
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
}

// New validates cfg and returns a client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("backend: URL %q must be an absolute http(s) URL", cfg.URL)
	}
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("backend: a bearer token is required")
	}
	c := &Client{url: cfg.URL, token: cfg.Token, http: cfg.HTTPClient,
		maxAttempts: cfg.MaxAttempts, baseDelay: cfg.BaseDelay, maxDelay: cfg.MaxDelay}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = 5
	}
	if c.baseDelay <= 0 {
		c.baseDelay = 500 * time.Millisecond
	}
	if c.maxDelay <= 0 {
		c.maxDelay = 10 * time.Second
	}
	return c, nil
}

// Payload is the JSON body of a work-order POST (the CMMS API's).
type Payload = cmmsapi.WorkOrder

// PayloadOf is the body posted for wo.
func PayloadOf(wo generate.WorkOrder) Payload {
	return Payload{
		WONumber: wo.Number, AssetID: wo.AssetID, AssetTag: wo.AssetTag, PlanID: wo.PlanID, PlanCode: wo.PlanCode,
		DueDate: wo.DueDate.String(), Type: wo.Type, Status: wo.Status, Priority: wo.Priority, Title: wo.Title,
		Description: wo.Description, AssignedTechnicianID: wo.TechnicianID, SkippedOccurrences: wo.SkippedOccurrences,
		RunID: wo.RunID,
	}
}

// CreateWorkOrder implements generate.Backend. A 2xx answer is success (a
// replay of an earlier request with the same key included); 408, 409 (the
// same key still in flight), 425, 429, 5xx and network errors are retried;
// any other answer is a refusal wrapping generate.ErrRefused.
func (c *Client) CreateWorkOrder(ctx context.Context, idempotencyKey string, wo generate.WorkOrder) error {
	body, err := json.Marshal(PayloadOf(wo))
	if err != nil {
		return fmt.Errorf("backend: encode work order %s: %w", wo.Number, err)
	}
	var last error
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := c.post(ctx, idempotencyKey, body)
		switch {
		case err == nil && status/100 == 2:
			return nil
		case err == nil && !retryable(status):
			return fmt.Errorf("backend: work order %s: %w", wo.Number, &StatusError{Code: status, Body: retryAfter.body})
		case err == nil:
			last = &StatusError{Code: status, Body: retryAfter.body}
		case ctx.Err() != nil:
			return fmt.Errorf("backend: work order %s: %w", wo.Number, ctx.Err())
		default:
			last = err
		}
		if attempt >= c.maxAttempts {
			return fmt.Errorf("backend: work order %s: giving up after %d attempts: %w", wo.Number, attempt, last)
		}
		delay := c.backoff(attempt)
		if retryAfter.after > 0 {
			delay = min(max(delay, retryAfter.after), c.maxDelay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("backend: work order %s: %w", wo.Number, ctx.Err())
		case <-t.C:
		}
	}
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("HTTP %d", e.Code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body)
}

// Is makes a refusal (a non-retryable status) match generate.ErrRefused.
func (e *StatusError) Is(target error) bool {
	return target == generate.ErrRefused && !retryable(e.Code)
}

type answer struct {
	after time.Duration // Retry-After
	body  string        // the start of an error body
}

func (c *Client) post(ctx context.Context, key string, body []byte) (int, answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, answer{}, err
	}
	defer resp.Body.Close()
	var a answer
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		a.body = strings.TrimSpace(string(b))
		a.after = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, a, nil
}

func retryable(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

// backoff is the wait after failed attempt n (1-based): BaseDelay·2^(n-1),
// capped at MaxDelay, with the upper half jittered.
func (c *Client) backoff(n int) time.Duration {
	d := c.baseDelay
	for i := 1; i < n && d < c.maxDelay; i++ {
		d *= 2
	}
	d = min(d, c.maxDelay)
	return d/2 + rand.N(d/2+1)
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
