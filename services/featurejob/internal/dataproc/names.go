package dataproc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// ScriptObject is the bucket object name under which the caller uploads the
// PySpark script before building: code/features-<sha256[:12]>.py. The name is
// content-addressed, so a deploy that changes the script never alters the
// code of a batch or job already submitted (a redelivery of an old run keeps
// pointing at the bytes it started with), and re-uploading the same bytes is
// a no-op rewrite of the same object.
func ScriptObject(script []byte) string {
	sum := sha256.Sum256(script)
	return "code/features-" + hex.EncodeToString(sum[:])[:12] + ".py"
}

// ResourceID is the id the engine gives a run's Dataproc resources: the
// Serverless batch id, the ephemeral cluster name and (with an attempt
// suffix) the job id. It is a pure function of the run id, so a redelivered
// event finds the resources its earlier delivery created.
//
// The form is cmmsflow-<sanitised run id, at most 33 chars>-<8 hex of
// sha256(run id)>: at most 51 characters of [a-z0-9-], starting with a letter
// and ending with a letter or digit, which satisfies the cluster-name rule
// (the strictest: ≤ 51 characters), the batch-id rule (4–63 characters) and
// the job-id rule. The hash keeps two run ids that sanitise alike apart.
func ResourceID(runID string) string {
	sum := sha256.Sum256([]byte(runID))
	h := hex.EncodeToString(sum[:])[:8]
	if s := sanitize(runID, 33, false); s != "" {
		return "cmmsflow-" + s + "-" + h
	}
	return "cmmsflow-" + h
}

// jobID is the Dataproc job id of the given attempt (1, 2, ...) on the run's
// cluster. A new attempt is started only after an earlier one was cancelled
// (see the package comment).
func jobID(base string, attempt int) string { return fmt.Sprintf("%s-a%d", base, attempt) }

// labelValue makes s a valid Google Cloud label value: lowercase letters,
// digits, '_' and '-', at most 63 characters.
func labelValue(s string) string { return sanitize(s, 63, true) }

// sanitize lowercases s, maps every other character outside [a-z0-9] (and '_'
// when keepUnderscore) to '-', collapses runs of '-', trims '-' at both ends
// and cuts the result to max characters.
func sanitize(s string, max int, keepUnderscore bool) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', keepUnderscore && r == '_':
			b.WriteRune(r)
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = true
		}
	}
	out := b.String()
	if len(out) > max {
		out = out[:max]
	}
	return strings.TrimRight(out, "-")
}
