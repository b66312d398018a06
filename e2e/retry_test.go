package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// injectDeployFault makes the run's deploy fail (the deployer's
// DEPLOY_FAULT_FILE) until the test ends or clearDeployFault.
func injectDeployFault(t *testing.T, runID string) {
	t.Helper()
	if err := os.WriteFile(deployFaults, []byte(runID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(clearDeployFault)
}

func clearDeployFault() { _ = os.Remove(deployFaults) }

// failAtDeployer triggers an ETL run whose deploy fails and waits for it to
// fail there, the steps before having succeeded. The run is named by the
// caller (Airflow's dag_run_id), so that the fault is in place before it
// starts.
func failAtDeployer(t *testing.T) string {
	t.Helper()
	runID := fmt.Sprintf("e2e_deploy_fault_%d", time.Now().UnixNano())
	injectDeployFault(t, runID)
	body, _ := json.Marshal(map[string]any{"dag_run_id": runID})
	if code, raw := controlCall(t, http.MethodPost, "/api/v1/dags/"+events.ETLMLTraining+"/dagRuns", body, nil); code != http.StatusOK {
		t.Fatalf("trigger %s: %d %s", runID, code, raw)
	}
	state, steps := waitRun(t, runID, 3*time.Minute)
	if state != "failed" || steps[events.Trainer].State != "success" || steps[events.Deployer].State != "failed" ||
		!strings.Contains(steps[events.Deployer].Error, "injected fault") || steps[events.Notifier].State != "pending" {
		t.Fatalf("run %s: %s %+v, want it failed at the deployer", runID, state, steps)
	}
	clearDeployFault()
	return runID
}

// artefact is what shows that an object was not written again.
type artefact struct {
	generation int64
	updated    time.Time
	sha256     [32]byte
}

// runArtefacts reads the run folder's objects under the prefixes.
func runArtefacts(t *testing.T, runID string, prefixes ...string) map[string]artefact {
	t.Helper()
	ctx := context.Background()
	store := bucket(t)
	out := map[string]artefact{}
	for _, p := range prefixes {
		objs, err := store.List(ctx, "runs/"+runID+"/"+p)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			b, err := store.Get(ctx, o.Name)
			if err != nil {
				t.Fatal(err)
			}
			out[o.Name] = artefact{o.Generation, o.Updated, sha256.Sum256(b)}
		}
	}
	return out
}

// controlCall calls control's HTTP API with the admin token and decodes the
// JSON answer into out (when not nil); it returns the status and the body.
func controlCall(t *testing.T, method, path string, body []byte, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, sys.Services[events.Control].URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+sys.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

// retryRun calls RetryRun over HTTP.
func retryRun(t *testing.T, runID, from string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"from_step": from})
	var run struct {
		State string `json:"state"`
	}
	if code, raw := controlCall(t, http.MethodPost, "/v1/runs/"+runID+":retry", body, &run); code != http.StatusOK || run.State != "running" {
		t.Fatalf("retry %s: HTTP %d %s", runID, code, raw)
	}
}

// An ETL run fails at the deployer (an injected fault). Retried from the
// failed step, it succeeds without a second extraction, feature job or
// training: the earlier steps stay at their first attempt, the deployer
// runs its second, and the run folder's extract, features and model are the
// ones the first attempt wrote.
func TestETLRetryFromTheFailedDeployer(t *testing.T) {
	t0 := time.Now()
	runID := failAtDeployer(t)
	failed := time.Since(t0)
	before := runArtefacts(t, runID, "raw/", "features/", "model/")
	if len(before) < 6 {
		t.Fatalf("run folder before the retry: %v", before)
	}

	t1 := time.Now()
	retryRun(t, runID, "") // the failed step
	state, steps := waitRun(t, runID, 2*time.Minute)
	t.Logf("run failed at the deployer after %s; the retry succeeded %s later", failed.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	want := map[string]int{events.Extractor: 1, events.Featurejob: 1, events.Trainer: 1, events.Deployer: 2, events.Notifier: 1}
	for step, attempts := range want {
		if s := steps[step]; s.State != "success" || s.Attempts != attempts {
			t.Errorf("%s: %+v, want success at attempt %d", step, s, attempts)
		}
	}
	if state != "success" {
		t.Fatalf("retried run %s: %s %+v", runID, state, steps)
	}
	after := runArtefacts(t, runID, "raw/", "features/", "model/")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the run folder changed:\nbefore %v\nafter  %v", before, after)
	}
	if n := count(t, `SELECT count(*) FROM models WHERE run_id = $1`, runID); n != 1 {
		t.Errorf("%d models trained by the run, want 1", n)
	}
	if n := count(t, `SELECT count(*) FROM ml_predictions WHERE run_id = $1`, runID); n == 0 {
		t.Error("the retried deploy scored nothing")
	}
	if n := count(t, `SELECT count(*) FROM notifications WHERE run_id = $1 AND kind = 'model_deployed' AND channel = 'email' AND status = 'sent'`, runID); n != 1 {
		t.Errorf("%d success emails, want 1", n)
	}

	// Airflow's view: the deployer's try_number is 2.
	var tis struct {
		TaskInstances []struct {
			TaskID    string `json:"task_id"`
			TryNumber int    `json:"try_number"`
			State     string `json:"state"`
		} `json:"task_instances"`
	}
	controlCall(t, http.MethodGet, "/api/v1/dags/"+events.ETLMLTraining+"/dagRuns/"+runID+"/taskInstances", nil, &tis)
	if len(tis.TaskInstances) != len(want) {
		t.Errorf("task instances %+v", tis)
	}
	for _, ti := range tis.TaskInstances {
		if ti.TryNumber != want[ti.TaskID] || ti.State != "success" {
			t.Errorf("task instance %+v, want try_number %d", ti, want[ti.TaskID])
		}
	}
}
