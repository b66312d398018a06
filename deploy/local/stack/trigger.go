package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// Trigger starts a manual run of pipeline (with conf, which may be nil)
// through control's HTTP API with the stack's admin token, as a user does.
// It returns the run id and whether the call created the run (false: an
// existing run was returned, e.g. for the same idempotency key).
//
// Control rate-limits triggers per token (TRIGGER_RATE_LIMIT): a 429 is
// waited out (its Retry-After, else a second) and the trigger sent again,
// until ctx ends.
func (s *Stack) Trigger(ctx context.Context, pipeline string, conf map[string]string) (runID string, created bool, err error) {
	control, ok := s.Services[events.Control]
	if !ok {
		return "", false, fmt.Errorf("trigger %s: the stack runs no control service", pipeline)
	}
	return trigger(ctx, control.URL, s.AdminToken, pipeline, conf)
}

func trigger(ctx context.Context, baseURL, token, pipeline string, conf map[string]string) (string, bool, error) {
	body, err := json.Marshal(map[string]any{"conf": conf})
	if err != nil {
		return "", false, err
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/pipelines/"+pipeline+":trigger", bytes.NewReader(body))
		if err != nil {
			return "", false, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", false, err
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			resp.Body.Close()
			select {
			case <-ctx.Done():
				return "", false, fmt.Errorf("trigger %s: rate limited until %w", pipeline, ctx.Err())
			case <-time.After(retryAfter(resp.Header.Get("Retry-After"))):
			}
			continue
		}
		var out struct {
			Run struct {
				RunID string `json:"run_id"`
			} `json:"run"`
			Created bool `json:"created"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || out.Run.RunID == "" {
			return "", false, fmt.Errorf("trigger %s: HTTP %d, %v", pipeline, resp.StatusCode, err)
		}
		return out.Run.RunID, out.Created, nil
	}
}

// retryAfter is a Retry-After header's delay in seconds; one second when
// it is absent or not a number of seconds.
func retryAfter(h string) time.Duration {
	if n, err := strconv.Atoi(h); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return time.Second
}
