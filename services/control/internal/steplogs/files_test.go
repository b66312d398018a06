package steplogs

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/logging"
)

const (
	runA = "manual__2026-12-02T06:00:00+00:00"
	runB = "manual__2026-12-02T06:00:00+00:00x" // runA is a prefix of it
)

// logFile writes a service's log as libs/logging does (JSON, Cloud Logging
// keys) and returns its folder; write logs the lines.
func logFile(t *testing.T, service string, write func(log *slog.Logger)) string {
	t.Helper()
	dir := t.TempDir()
	var b bytes.Buffer
	log := logging.New(&b, logging.Options{Format: "json", Level: "debug", ProjectID: "p"}).With("service", service)
	write(log)
	if err := os.WriteFile(filepath.Join(dir, service+".log"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// twoTries logs two tries of pmgen's step of runA, interleaved with runB's
// lines, a non-JSON line and control lines without a run.
func twoTries(log *slog.Logger) {
	a := log.With("run_id", runA, "step", "pmgen")
	b := log.With("run_id", runB, "step", "pmgen")
	log.Info("listening")
	a.Info(eventing.StepStartedLog)
	a.Debug("evaluating maintenance plans", "try", 1)
	b.Info(eventing.StepStartedLog)
	b.Info("work orders generated", "run", "B")
	a.Warn("event failed, will be retried", "error", "backend answered 503")
	a.Info(eventing.StepStartedLog)
	a.Debug("evaluating maintenance plans", "try", 2)
	a.Info("work orders generated", "created", 3)
	a.Info("event handled")
}

func messages(r Result) string {
	var out []string
	for _, l := range r.Lines {
		out = append(out, l.Level+" "+l.Message)
	}
	return strings.Join(out, "; ")
}

func TestFilesFiltersByRunTryAndLevel(t *testing.T) {
	dir := logFile(t, "pmgen", twoTries)
	f := Files{Dir: dir}
	for _, tc := range []struct {
		q    Query
		want string
	}{
		{Query{RunID: runA, Service: "pmgen"}, "INFO step started; DEBUG evaluating maintenance plans; WARNING event failed, will be retried; " +
			"INFO step started; DEBUG evaluating maintenance plans; INFO work orders generated; INFO event handled"},
		{Query{RunID: runA, Service: "pmgen", Try: 1}, "INFO step started; DEBUG evaluating maintenance plans; WARNING event failed, will be retried"},
		{Query{RunID: runA, Service: "pmgen", Try: 2, MinLevel: "INFO"}, "INFO step started; INFO work orders generated; INFO event handled"},
		{Query{RunID: runA, Service: "pmgen", MinLevel: "WARNING"}, "WARNING event failed, will be retried"},
		{Query{RunID: runA, Service: "pmgen", Try: 3}, ""},
		{Query{RunID: runB, Service: "pmgen"}, "INFO step started; INFO work orders generated"},
		{Query{RunID: runA, Service: "reporter"}, ""}, // no file
		{Query{RunID: runA, Service: "pmgen", MaxLines: 2}, "INFO work orders generated; INFO event handled"},
	} {
		got, err := f.Read(context.Background(), tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if messages(got) != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.q, messages(got), tc.want)
		}
		if tc.q.MaxLines == 2 && got.Dropped != 5 {
			t.Errorf("dropped %d, want 5", got.Dropped)
		}
	}
	all, _ := f.Read(context.Background(), Query{RunID: runA, Service: "pmgen"})
	if all.Tries != 2 || all.Partial {
		t.Fatalf("tries %d, partial %v", all.Tries, all.Partial)
	}
	l := all.Lines[5]
	if all.Lines[2].Try != 1 || l.Try != 2 || l.Attrs["created"] != 3.0 || l.Attrs["run_id"] != runA || l.Attrs["step"] != "pmgen" || l.Attrs["service"] != nil ||
		time.Since(l.Time) > time.Minute {
		t.Fatalf("line %+v", l)
	}
}

func TestFilesBounds(t *testing.T) {
	dir := logFile(t, "pmgen", func(log *slog.Logger) {
		a := log.With("run_id", runA)
		for i := range 100 {
			a.Info(fmt.Sprintf("line %02d", i))
		}
	})
	path := filepath.Join(dir, "pmgen.log")
	raw, _ := os.ReadFile(path)
	lineLen := bytes.IndexByte(raw, '\n') + 1
	// A line too long, a non-JSON line, then a last line still being written.
	long := `{"severity":"INFO","message":"long","run_id":"` + runA + `","x":"` + strings.Repeat("x", 2000) + `"}` + "\n"
	partial := `{"severity":"INFO","message":"partial","run_id":"` + runA + `"`
	raw = append(raw, long+"panic: "+runA+"\n"+partial...)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Files{Dir: dir, MaxLineBytes: 1024}.Read(context.Background(), Query{RunID: runA, Service: "pmgen"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Lines) != 100 || got.Lines[99].Message != "line 99" || got.Partial {
		t.Fatalf("%d lines, last %q, partial %v", len(got.Lines), got.Lines[len(got.Lines)-1].Message, got.Partial)
	}
	// The window covers the last 10½ lines of 64: the half line is skipped.
	scan := int64(len(long)+len(partial)+len("panic: \n")+len(runA)) + int64(10*lineLen+lineLen/2)
	got, err = Files{Dir: dir, MaxScanBytes: scan}.Read(context.Background(), Query{RunID: runA, Service: "pmgen"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Partial || len(got.Lines) != 11 || got.Lines[0].Message != "line 90" || got.Lines[10].Message != "long" {
		t.Fatalf("windowed: partial %v, %s", got.Partial, messages(got))
	}
	got, _ = Files{Dir: dir}.Read(context.Background(), Query{RunID: runA, Service: "pmgen", Since: time.Now().Add(time.Hour)})
	if len(got.Lines) != 0 {
		t.Fatalf("lines before Since: %s", messages(got))
	}
}

func TestQueryIsChecked(t *testing.T) {
	for _, q := range []Query{{Service: "pmgen"}, {RunID: runA, Service: "../etc/passwd"}, {RunID: runA, Service: "pmgen", Try: -1}} {
		if _, err := (Files{Dir: t.TempDir()}).Read(context.Background(), q); err == nil {
			t.Errorf("%+v: no error", q)
		}
	}
}

func TestLineText(t *testing.T) {
	l := Line{Time: time.Date(2026, 12, 2, 6, 0, 1, 5e8, time.UTC), Level: "INFO", Message: "a\nb",
		Attrs: map[string]any{"z": 1.5, "run_id": runA, "note": "two words", "m": map[string]any{"k": "v"}}}
	want := `2026-12-02T06:00:01.500Z INFO a\nb m={"k":"v"} note="two words" run_id=` + runA + ` z=1.5`
	if got := l.Text(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if lv, err := ParseLevel("warn"); lv != "WARNING" || err != nil {
		t.Fatal(lv, err)
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Fatal("loud accepted")
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{}, "off"}, {Config{Dir: "/x"}, "files"}, {Config{Dir: "/x", OnCloudRun: true}, "files"},
		{Config{Backend: "off", Dir: "/x"}, "off"}, {Config{Backend: "files"}, "error"}, {Config{Backend: "loki"}, "error"},
		{Config{Backend: "cloudlogging"}, "error"}, // no project
	} {
		r, closeR, err := Open(ctx, tc.c)
		got := "off"
		switch {
		case err != nil:
			got = "error"
		case r != nil:
			got = r.Backend()
		}
		if got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.c, got, tc.want)
		}
		if err == nil {
			_ = closeR()
		}
	}
}
