package compat

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/steplogs"
)

// A task's log is its step's own log lines (steplogs) of one try, one line of
// text each. A fragment is at most logPageLines lines and logPageBytes bytes;
// full_content returns every line the reader keeps (steplogs.MaxLines), at
// most logFullBytes bytes.
const (
	logPageLines = 1000
	logPageBytes = 1 << 20
	logFullBytes = 8 << 20
	// logSinceSlack looks for lines a little before the run was queued, for
	// the clocks of the services.
	logSinceSlack = time.Minute
)

// WithLogs sets the reader of the steps' log lines; without one the task
// log route answers 404.
func (s *Server) WithLogs(r steplogs.Reader) *Server {
	s.logs = r
	return s
}

// logToken is the continuation token, as Airflow's holds it (there signed
// with URLSafeSerializer; here base64url JSON): log_pos counts lines of the
// try already sent.
type logToken struct {
	LogPos   int  `json:"log_pos"`
	EndOfLog bool `json:"end_of_log"`
}

func (t logToken) String() string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseLogToken(s string) (logToken, error) {
	var t logToken
	if s == "" {
		return t, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.LogPos < 0 {
		return t, badRequest("token: not a continuation token of this API")
	}
	return t, nil
}

// getLog serves a try's log: JSON {continuation_token, content}, or the
// content alone as text/plain when the Accept header prefers it (as
// Airflow's best match of text/plain and application/json).
func (s *Server) getLog(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	run, step, try, err := s.logTarget(ctx, r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	full := false
	if v := q.Get("full_content"); v != "" {
		if full, err = strconv.ParseBool(v); err != nil {
			return badRequest("full_content: must be true or false")
		}
	}
	tok, err := parseLogToken(q.Get("token"))
	if err != nil {
		return err
	}
	res, err := s.logs.Read(ctx, steplogs.Query{RunID: run.GetRunId(), Service: step.GetStep(), Try: try,
		Since: run.GetQueuedAt().AsTime().Add(-logSinceSlack)})
	if err != nil {
		return s.internal(ctx, "read task log", err)
	}
	content, next := logContent(res, tok.LogPos, full)
	tok = logToken{LogPos: next, EndOfLog: next >= len(res.Lines) && tryEnded(run, step, try)}
	if prefersText(r.Header.Get("Accept")) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(content))
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"continuation_token": tok.String(), "content": content})
	return nil
}

// logTarget is the run, step and try a log request names (404 for an
// unknown run, task, map index or try; no reader is a 404 too).
func (s *Server) logTarget(ctx context.Context, r *http.Request) (*controlv1.Run, *controlv1.Step, int, error) {
	run, err := s.run(ctx, r.PathValue("dag_id"), r.PathValue("dag_run_id"))
	if err != nil {
		return nil, nil, 0, err
	}
	taskID := r.PathValue("task_id")
	var step *controlv1.Step
	for _, st := range run.GetSteps() {
		if st.GetStep() == taskID {
			step = st
		}
	}
	if mi := r.URL.Query().Get("map_index"); step == nil || (mi != "" && mi != "-1") {
		return nil, nil, 0, status.Errorf(codes.NotFound, "Task instance did not exist in the DB")
	}
	try, err := strconv.Atoi(r.PathValue("task_try_number"))
	if err != nil {
		return nil, nil, 0, badRequest("task_try_number: must be an integer")
	}
	if try < 1 || try > max(int(step.GetAttempts()), 1) {
		return nil, nil, 0, status.Errorf(codes.NotFound, "Task %s of run %s has no try %d (it has %d)",
			taskID, run.GetRunId(), try, step.GetAttempts())
	}
	if s.logs == nil {
		return nil, nil, 0, status.Error(codes.NotFound, "task logs are not available: control has no log reader (LOGS_BACKEND, LOG_DIR)")
	}
	return run, step, try, nil
}

// logContent renders the lines from pos: a fragment, or with full every
// line left, within the byte bound; it returns the position after them.
// The first fragment says when lines are missing.
func logContent(res steplogs.Result, pos int, full bool) (string, int) {
	maxLines, maxBytes := logPageLines, logPageBytes
	if full {
		maxLines, maxBytes = len(res.Lines), logFullBytes
	}
	var b strings.Builder
	if pos == 0 && res.Dropped > 0 {
		b.WriteString("*** " + strconv.Itoa(res.Dropped) + " older lines are not shown\n")
	}
	if pos == 0 && res.Partial {
		b.WriteString("*** the log reader's bound was reached: lines may be missing\n")
	}
	end := min(pos, len(res.Lines))
	for ; end < len(res.Lines) && end-pos < maxLines; end++ {
		line := res.Lines[end].Text() + "\n"
		if b.Len()+len(line) > maxBytes && end > pos {
			break
		}
		b.WriteString(line)
	}
	return b.String(), end
}

// tryEnded reports that no more lines will come for the try: a later try
// began, or the step or its run ended.
func tryEnded(run *controlv1.Run, step *controlv1.Step, try int) bool {
	if try < int(step.GetAttempts()) {
		return true
	}
	st := taskState(step.GetState(), run.GetState())
	return st != nil && *st != "running" && *st != "up_for_retry"
}

// prefersText is werkzeug's best_match(["text/plain", "application/json"])
// as Airflow's log endpoint uses it: the most preferred (quality, then
// specificity of the matching range; text/plain on a tie) of the two;
// without an Accept header, JSON.
func prefersText(accept string) bool {
	best, bestQ, bestSpec := "", -1.0, -1
	for _, offer := range []string{"text/plain", "application/json"} {
		for _, rng := range strings.Split(accept, ",") {
			mt, q, ok := mediaRange(rng)
			if !ok || q <= 0 || q < bestQ {
				continue
			}
			spec := rangeMatches(mt, offer)
			if spec >= 0 && (q > bestQ || spec > bestSpec) {
				best, bestQ, bestSpec = offer, q, spec
			}
		}
	}
	return best == "text/plain"
}

// mediaRange parses "type/subtype;q=0.5" into the range and its quality.
func mediaRange(s string) (string, float64, bool) {
	parts := strings.Split(s, ";")
	mt := strings.ToLower(strings.TrimSpace(parts[0]))
	if !strings.Contains(mt, "/") {
		return "", 0, false
	}
	q := 1.0
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "q") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return "", 0, false
			}
			q = f
		}
	}
	return mt, q, true
}

// rangeMatches is the specificity with which a media range matches a type
// (2 exact, 1 type/*, 0 */*), or -1.
func rangeMatches(rng, mt string) int {
	switch {
	case rng == mt:
		return 2
	case rng == "*/*":
		return 0
	case strings.HasSuffix(rng, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(rng, "*")):
		return 1
	}
	return -1
}
