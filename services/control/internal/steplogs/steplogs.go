// Package steplogs reads a step's own log lines: the lines its service wrote
// while handling a run's events, at every level the service emitted. Every
// line a handler logs through its context logger (logging.From) names the run
// (run_id), and the router logs eventing.StepStartedLog each time it reports
// the step started, so the lines split into tries there: try N is the lines
// from the Nth "step started" line up to the next (lines before the first
// belong to try 1), as control counts steps.attempts.
//
// Reader has two implementations: Files reads the local stack's log files
// (<LOG_DIR>/<service>.log, the services' JSON output), CloudLogging reads
// Cloud Logging (entries.list) on Google Cloud. Both are bounded: they scan a
// capped number of bytes or entries and keep the newest MaxLines lines.
package steplogs

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
)

// Line is one log line of a step.
type Line struct {
	Time time.Time `json:"time"`
	// Level is Cloud Logging's severity name: DEBUG, INFO, WARNING, ERROR…
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Attrs   map[string]any `json:"attrs"`
	// Try is the try the line belongs to (1, 2…).
	Try int `json:"try"`
}

// Query selects a step's lines.
type Query struct {
	RunID   string
	Service string // the step's service
	// Try is the try (1, 2…) whose lines are wanted; 0: every try.
	Try int
	// MinLevel keeps the lines at or above it (Level's names); "": all.
	MinLevel string
	// Since bounds the search: no line of the run is older (its queue
	// time). Zero: no bound beyond the reader's own.
	Since time.Time
	// MaxLines is how many of the newest lines are kept; 0 or more than
	// MaxLines: MaxLines.
	MaxLines int
}

// Result is what a Read found, oldest line first.
type Result struct {
	Lines []Line `json:"lines"`
	// Dropped counts older lines of the query not kept (MaxLines).
	Dropped int `json:"dropped"`
	// Partial is set when the reader's scan bound was reached: lines of the
	// run may be missing (the start of a large file, or entries past the
	// cap).
	Partial bool `json:"partial"`
	// Tries counts the tries seen (the step's "step started" lines).
	Tries int `json:"tries"`
}

// Reader reads a step's own log lines.
type Reader interface {
	Read(ctx context.Context, q Query) (Result, error)
	// Backend names the implementation: "files" or "cloudlogging".
	Backend() string
}

// MaxLines bounds the lines one Read returns.
const MaxLines = 10000

var serviceRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

func (q Query) check() error {
	if q.RunID == "" {
		return fmt.Errorf("steplogs: no run id")
	}
	if !serviceRE.MatchString(q.Service) {
		return fmt.Errorf("steplogs: %q is not a service name", q.Service)
	}
	if q.Try < 0 {
		return fmt.Errorf("steplogs: try %d", q.Try)
	}
	return nil
}

// severities ranks Cloud Logging's severity names (and slog's).
var severities = map[string]int{
	"DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARN": 400, "WARNING": 400,
	"ERROR": 500, "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800,
}

// ParseLevel returns the severity name of a level filter (debug, info,
// warn or warning, error…, in any case); "" stays "" (every line).
func ParseLevel(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u := strings.ToUpper(s)
	if u == "WARN" {
		u = "WARNING"
	}
	if _, ok := severities[u]; !ok {
		return "", fmt.Errorf("level %q: want debug, info, warning or error", s)
	}
	return u, nil
}

func rank(level string) int {
	if r, ok := severities[strings.ToUpper(level)]; ok {
		return r
	}
	return severities["INFO"]
}

// collector gathers, from a run's lines of one service in time order, those
// of the query's try and level, keeping the newest max.
type collector struct {
	q     Query
	min   int
	max   int
	lines []Line
	res   Result
}

func newCollector(q Query) *collector {
	c := &collector{q: q, max: MaxLines}
	if q.MaxLines > 0 && q.MaxLines < MaxLines {
		c.max = q.MaxLines
	}
	if q.MinLevel != "" {
		c.min = rank(q.MinLevel)
	}
	return c
}

func (c *collector) add(l Line) {
	if l.Message == eventing.StepStartedLog {
		c.res.Tries++
	}
	l.Try = max(c.res.Tries, 1)
	if c.q.Try != 0 && l.Try != c.q.Try {
		return
	}
	if rank(l.Level) < c.min {
		return
	}
	c.lines = append(c.lines, l)
	if len(c.lines) >= 2*c.max {
		c.trim()
	}
}

// done reports that no later line can be of the query's try.
func (c *collector) done() bool { return c.q.Try != 0 && c.res.Tries > c.q.Try }

func (c *collector) trim() {
	if n := len(c.lines) - c.max; n > 0 {
		c.res.Dropped += n
		c.lines = append([]Line(nil), c.lines[n:]...)
	}
}

func (c *collector) result() Result {
	c.trim()
	c.res.Lines = c.lines
	if c.res.Lines == nil {
		c.res.Lines = []Line{}
	}
	return c.res
}

// Text renders the line as one line of text: time, level, message and the
// attributes as key=value, sorted by key.
func (l Line) Text() string {
	var b strings.Builder
	b.WriteString(l.Time.UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteString(" " + l.Level + " " + oneLine(l.Message))
	keys := make([]string, 0, len(l.Attrs))
	for k := range l.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(" " + k + "=" + attrText(l.Attrs[k]))
	}
	return b.String()
}

func attrText(v any) string {
	s, ok := v.(string)
	if !ok {
		j, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(j)
	}
	if s == "" || strings.ContainsAny(s, " =\"\\\t\r\n") {
		return strconv.Quote(s)
	}
	return s
}

// oneLine keeps a message on its line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// Config selects a Reader (control's LOGS_BACKEND and LOG_DIR).
type Config struct {
	// Backend is "files", "cloudlogging" or "off"; "": files when Dir is
	// set, else cloudlogging on Cloud Run (OnCloudRun), else off.
	Backend    string
	Dir        string // the files' folder
	Project    string // Cloud Logging's project
	OnCloudRun bool
}

// Open returns the configured Reader (nil when off) and its closer.
func Open(ctx context.Context, c Config) (Reader, func() error, error) {
	backend := c.Backend
	if backend == "" {
		switch {
		case c.Dir != "":
			backend = "files"
		case c.OnCloudRun:
			backend = "cloudlogging"
		default:
			backend = "off"
		}
	}
	none := func() error { return nil }
	switch backend {
	case "off":
		return nil, none, nil
	case "files":
		if c.Dir == "" {
			return nil, none, fmt.Errorf("LOGS_BACKEND=files needs LOG_DIR")
		}
		return Files{Dir: c.Dir}, none, nil
	case "cloudlogging":
		r, err := NewCloudLogging(ctx, c.Project)
		if err != nil {
			return nil, none, err
		}
		return r, r.Close, nil
	}
	return nil, none, fmt.Errorf("LOGS_BACKEND %q: want files, cloudlogging or off", c.Backend)
}
