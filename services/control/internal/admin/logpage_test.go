package admin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/services/control/internal/admin"
	"github.com/cmmsflow/cmmsflow/services/control/internal/steplogs"
)

// writeStepLog writes the reporter's log file: "step started", then n lines
// of the secret run, each with a blob attribute of size bytes.
func writeStepLog(t *testing.T, n, size int) string {
	t.Helper()
	dir := t.TempDir()
	var b bytes.Buffer
	mine := logging.New(&b, logging.Options{Format: "json", Level: "debug"}).
		With("service", "reporter", "run_id", secretRun, "step", "reporter")
	mine.Info(eventing.StepStartedLog)
	for i := range n {
		mine.Info(fmt.Sprintf("line %d", i), "blob", strings.Repeat("x", size))
	}
	if err := os.WriteFile(filepath.Join(dir, "reporter.log"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The run view pages back through a step's lines with ?offset, 200 at most
// per page, and says where the next older page starts (next_offset).
func TestRunStepLogPages(t *testing.T) {
	f := newFixture(t, admin.Options{Logs: steplogs.Files{Dir: writeStepLog(t, 450, 0)}})
	page := func(query string) admin.StepLogs {
		var got admin.RunLogs
		getJSON(t, f.url+"/admin/api/runs/"+secretRun+"/logs"+query, f.viewer, &got)
		return got.Steps[0]
	}
	for _, c := range []struct {
		query            string
		first, last      string
		n, dropped, next int
	}{
		{"", "line 250", "line 449", 200, 251, 200},
		{"?offset=200", "line 50", "line 249", 200, 51, 400},
		{"?offset=400", eventing.StepStartedLog, "line 49", 51, 0, 0},
		{"?offset=440&limit=5", "line 5", "line 9", 5, 6, 445},
		{"?offset=451", "", "", 0, 0, 0},
	} {
		s := page(c.query)
		if len(s.Lines) != c.n || s.Dropped != c.dropped || s.NextOffset != c.next {
			t.Errorf("%q: %d lines, dropped %d, next_offset %d; want %d, %d, %d", c.query, len(s.Lines), s.Dropped, s.NextOffset, c.n, c.dropped, c.next)
			continue
		}
		if c.n > 0 && (s.Lines[0].Message != c.first || s.Lines[c.n-1].Message != c.last) {
			t.Errorf("%q: %s … %s, want %s … %s", c.query, s.Lines[0].Message, s.Lines[c.n-1].Message, c.first, c.last)
		}
	}
	for _, q := range []string{"?offset=-1", "?offset=10001", "?offset=ten"} {
		if resp, body := get(t, f.url+"/admin/api/runs/"+secretRun+"/logs"+q, f.viewer); resp.StatusCode != 400 ||
			!strings.Contains(body, "offset: want an integer from 0 to 10000") {
			t.Errorf("%s: %d %s", q, resp.StatusCode, body)
		}
	}
}

// A page holds at most 1 MiB of lines, shared by the run's steps: long lines
// make it shorter, and next_offset goes on from the last line sent.
func TestRunStepLogBytesBounded(t *testing.T) {
	f := newFixture(t, admin.Options{Logs: steplogs.Files{Dir: writeStepLog(t, 40, 60<<10)}})
	resp, body := get(t, f.url+"/admin/api/runs/"+secretRun+"/logs", f.viewer)
	if resp.StatusCode != 200 || len(body) > 1<<20+64<<10 {
		t.Fatalf("%d, %d bytes", resp.StatusCode, len(body))
	}
	var got admin.RunLogs
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	s := got.Steps[0]
	lines, err := json.Marshal(s.Lines)
	if err != nil {
		t.Fatal(err)
	}
	budget := (1 << 20) / len(got.Steps)
	if len(s.Lines) == 0 || len(lines) > budget || len(lines)+(61<<10) < budget {
		t.Fatalf("%d lines, %d bytes: want the newest that fit in %d bytes", len(s.Lines), len(lines), budget)
	}
	if s.Lines[len(s.Lines)-1].Message != "line 39" || s.NextOffset != len(s.Lines) || s.Dropped != 41-len(s.Lines) {
		t.Fatalf("last %q, next_offset %d, dropped %d with %d lines", s.Lines[len(s.Lines)-1].Message, s.NextOffset, s.Dropped, len(s.Lines))
	}
	var older admin.RunLogs
	getJSON(t, f.url+fmt.Sprintf("/admin/api/runs/%s/logs?offset=%d", secretRun, s.NextOffset), f.viewer, &older)
	want := fmt.Sprintf("line %d", 39-len(s.Lines))
	if o := older.Steps[0].Lines; len(o) == 0 || o[len(o)-1].Message != want {
		t.Fatalf("the older page does not end with %s", want)
	}
}
