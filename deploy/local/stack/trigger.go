package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// Trigger starts a manual run of pipeline (with conf, which may be nil)
// through control's HTTP API with the stack's admin token, as a user does.
// It returns the run id and whether the call created the run (false: an
// existing run was returned, e.g. for the same idempotency key).
func (s *Stack) Trigger(ctx context.Context, pipeline string, conf map[string]string) (runID string, created bool, err error) {
	control, ok := s.Services[events.Control]
	if !ok {
		return "", false, fmt.Errorf("trigger %s: the stack runs no control service", pipeline)
	}
	body, err := json.Marshal(map[string]any{"conf": conf})
	if err != nil {
		return "", false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, control.URL+"/v1/pipelines/"+pipeline+":trigger", bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Authorization", "Bearer "+s.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	var out struct {
		Run struct {
			RunID string `json:"run_id"`
		} `json:"run"`
		Created bool `json:"created"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Run.RunID == "" {
		return "", false, fmt.Errorf("trigger %s: HTTP %d, %v", pipeline, resp.StatusCode, err)
	}
	return out.Run.RunID, out.Created, nil
}
