// Package scheduler is cmmsflow's cron table — when each pipeline is kicked —
// and the kick message itself. The table (crontab.yaml, embedded) is the one
// source of truth for the local cron publisher, for control (which names a
// scheduled run after the tick it belongs to) and for the Cloud Scheduler jobs
// on GCP.
//
// Terraform is the one owner of those jobs: deploy/terraform/scheduler.tf
// creates, updates and deletes one job per table entry, with the id JobID,
// publishing KickMessage, in the same apply that creates the kick topic and
// sets control's CRON_TIME_ZONE from the same table, and pauses them all with
// scheduler_paused. No Go code creates Cloud Scheduler jobs;
// deploy/local/terraformcheck checks the Terraform jobs against this package
// (ids, schedules, time zone, topic, message). See deploy/README.md.
package scheduler

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	_ "time/tzdata" // zones load on images without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

//go:embed crontab.yaml
var crontab []byte

// Table is the validated cron table: one entry per pipeline of
// events.Pipelines, in that order, all evaluated in one time zone.
type Table struct {
	// TimeZone is the IANA name the schedules are evaluated in.
	TimeZone string
	Entries  []Entry

	loc *time.Location
}

// Entry is one pipeline's schedule. Entries come from Load or Parse; the zero
// Entry has no schedule.
type Entry struct {
	Pipeline    string
	Schedule    string // 5-field unix-cron: minute hour day-of-month month day-of-week
	Description string
	// MaxActiveRuns is how many of the pipeline's runs may run at once;
	// more wait queued and start in order as runs end (Airflow's
	// max_active_runs). Default 1.
	MaxActiveRuns int
	// Catchup: a missed tick (no run after a grace period) gets its run
	// (Airflow's catchup). Default false.
	Catchup bool

	loc *time.Location
	// spec matches wall-clock times: it is evaluated on naive times in UTC,
	// and resolve maps a wall-clock time to an instant in loc.
	spec *cron.SpecSchedule
}

// file is crontab.yaml as written.
type file struct {
	TimeZone  string               `yaml:"time_zone"`
	Pipelines map[string]fileEntry `yaml:"pipelines"`
}

type fileEntry struct {
	Schedule      string `yaml:"schedule"`
	Description   string `yaml:"description"`
	MaxActiveRuns *int   `yaml:"max_active_runs"`
	Catchup       *bool  `yaml:"catchup"`
}

// Bounds and defaults of an entry's run policy.
const (
	DefaultMaxActiveRuns = 1
	MaxMaxActiveRuns     = 64
)

// Load returns the embedded cron table.
func Load() (Table, error) { return Parse(crontab) }

// Parse decodes and validates a cron table: a known IANA time zone, a valid
// 5-field cron schedule and a description for every entry, and exactly one
// entry for every pipeline in events.Pipelines and none for anything else.
// All problems are reported together.
func Parse(data []byte) (Table, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return Table{}, fmt.Errorf("scheduler: cron table: %w", err)
	}
	var errs []error
	loc, err := loadZone(f.TimeZone)
	if err != nil {
		errs = append(errs, fmt.Errorf("time_zone: %w", err))
	}
	t := Table{TimeZone: f.TimeZone, loc: loc}
	for _, p := range events.Pipelines {
		fe, ok := f.Pipelines[p.ID]
		if !ok {
			errs = append(errs, fmt.Errorf("pipeline %s: missing: every pipeline needs exactly one entry", p.ID))
			continue
		}
		e, err := newEntry(p.ID, fe, loc)
		if err != nil {
			errs = append(errs, fmt.Errorf("pipeline %s: %w", p.ID, err))
			continue
		}
		t.Entries = append(t.Entries, e)
	}
	var unknown []string
	for id := range f.Pipelines {
		if _, ok := events.LookupPipeline(id); !ok {
			unknown = append(unknown, id)
		}
	}
	sort.Strings(unknown)
	for _, id := range unknown {
		errs = append(errs, fmt.Errorf("pipeline %s: unknown pipeline id (known: %s)", id, strings.Join(pipelineIDs(), ", ")))
	}
	if len(errs) == 0 {
		errs = append(errs, sharedTicks(t.Entries, time.Now())...)
	}
	if len(errs) > 0 {
		return Table{}, fmt.Errorf("scheduler: cron table: %w", errors.Join(errs...))
	}
	return t, nil
}

// sharedTicks refuses two pipelines that tick at the same instant within a
// year of now: a scheduled run is named scheduled__<tick>, and run ids are
// unique across pipelines, so the second pipeline's run of that tick would
// be taken for the first's and never happen.
func sharedTicks(entries []Entry, now time.Time) []error {
	const maxTicks = 100_000 // an every-minute schedule is cut at ~70 days
	seen := map[time.Time]string{}
	var errs []error
	for _, e := range entries {
		n := 0
		for t := e.Next(now); !t.IsZero() && t.Before(now.AddDate(1, 0, 0)) && n < maxTicks; t, n = e.Next(t), n+1 {
			if other, ok := seen[t]; ok {
				errs = append(errs, fmt.Errorf("pipelines %s and %s both tick at %s: their scheduled runs would share the id scheduled__<tick>; move one schedule by a minute",
					other, e.Pipeline, t.UTC().Format(time.RFC3339)))
				break
			}
			seen[t] = e.Pipeline
		}
	}
	return errs
}

func pipelineIDs() []string {
	ids := make([]string, 0, len(events.Pipelines))
	for _, p := range events.Pipelines {
		ids = append(ids, p.ID)
	}
	return ids
}

// loadZone loads an IANA time zone; "" and "Local" are not zone names.
func loadZone(tz string) (*time.Location, error) {
	switch strings.TrimSpace(tz) {
	case "":
		return nil, errors.New("missing: want an IANA time zone such as UTC or Europe/Berlin")
	case "Local":
		return nil, errors.New(`"Local" is not an IANA time zone`)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, err // "unknown time zone X"
	}
	return loc, nil
}

// parser reads the 5-field unix-cron format Cloud Scheduler takes; no
// seconds, no @descriptors.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

func newEntry(id string, fe fileEntry, loc *time.Location) (Entry, error) {
	var errs []error
	if strings.TrimSpace(fe.Description) == "" {
		errs = append(errs, errors.New("description: missing"))
	}
	spec, err := parseSchedule(fe.Schedule)
	if err != nil {
		errs = append(errs, fmt.Errorf("schedule %q: %w", fe.Schedule, err))
	}
	e := Entry{Pipeline: id, Schedule: fe.Schedule, Description: fe.Description, loc: loc, spec: spec,
		MaxActiveRuns: DefaultMaxActiveRuns}
	if fe.MaxActiveRuns != nil {
		e.MaxActiveRuns = *fe.MaxActiveRuns
		if e.MaxActiveRuns < 1 || e.MaxActiveRuns > MaxMaxActiveRuns {
			errs = append(errs, fmt.Errorf("max_active_runs %d: want 1 to %d", e.MaxActiveRuns, MaxMaxActiveRuns))
		}
	}
	if fe.Catchup != nil {
		e.Catchup = *fe.Catchup
	}
	if len(errs) > 0 {
		return Entry{}, errors.Join(errs...)
	}
	if loc != nil && e.Next(time.Now()).IsZero() {
		return Entry{}, fmt.Errorf("schedule %q: never fires", fe.Schedule)
	}
	return e, nil
}

func parseSchedule(s string) (*cron.SpecSchedule, error) {
	fields := strings.Fields(s)
	if len(fields) != 5 {
		return nil, fmt.Errorf("want 5 fields (minute hour day-of-month month day-of-week), got %d", len(fields))
	}
	if strings.Contains(fields[0], "TZ=") {
		return nil, errors.New("no time zone prefix: the table's time_zone applies")
	}
	sched, err := parser.Parse(s)
	if err != nil {
		return nil, err
	}
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("unsupported schedule type %T", sched)
	}
	spec.Location = time.UTC
	return spec, nil
}

// MaxActiveRuns is pipeline's max_active_runs (the default for a pipeline
// without an entry).
func (t Table) MaxActiveRuns(pipeline string) int {
	if e, ok := t.Lookup(pipeline); ok && e.MaxActiveRuns > 0 {
		return e.MaxActiveRuns
	}
	return DefaultMaxActiveRuns
}

// Lookup returns the entry of a pipeline.
func (t Table) Lookup(pipeline string) (Entry, bool) {
	i := slices.IndexFunc(t.Entries, func(e Entry) bool { return e.Pipeline == pipeline })
	if i < 0 {
		return Entry{}, false
	}
	return t.Entries[i], true
}

// InZone returns the table evaluated in time zone tz instead of its own; an
// empty tz leaves it unchanged.
func (t Table) InZone(tz string) (Table, error) {
	if tz == "" {
		return t, nil
	}
	loc, err := loadZone(tz)
	if err != nil {
		return Table{}, fmt.Errorf("scheduler: time zone override: %w", err)
	}
	out := Table{TimeZone: tz, Entries: slices.Clone(t.Entries), loc: loc}
	for i := range out.Entries {
		out.Entries[i].loc = loc
	}
	return out, nil
}

// Location is the time zone the table is evaluated in.
func (t Table) Location() *time.Location { return t.loc }

// Location is the time zone the entry is evaluated in.
func (e Entry) Location() *time.Location { return e.loc }

// Next returns the entry's first tick strictly after the instant after, in
// the entry's time zone, or the zero time if it has none within five years.
//
// Schedules are wall-clock times in the table's zone, and each matching
// wall-clock time is one tick, also across daylight saving changes:
//   - a time skipped when clocks go forward (02:30 when 02:00 becomes 03:00)
//     ticks at the end of the gap (03:00), once however many times fall in it;
//   - a time repeated when clocks go back (02:30 when 03:00 becomes 02:00)
//     ticks at its first occurrence only.
//
// So a weekly or daily job never loses or doubles a run on a change day.
func (e Entry) Next(after time.Time) time.Time {
	wall := naive(after.In(e.loc))
	for {
		w := e.spec.Next(wall)
		if w.IsZero() {
			return time.Time{}
		}
		// resolve is monotonic, so the first wall-clock tick whose instant
		// is after `after` is the answer. The ones skipped here resolve to
		// an instant already past: a repeated hour's first pass when after
		// lies in its second, or a gap's end that already ticked.
		if t := resolve(w, e.loc); t.After(after) {
			return t
		}
		wall = w
	}
}

// maxLookback bounds Prev's search, like robfig/cron's five-year bound on Next.
const maxLookback = 5 * 366 * 24 * time.Hour

// Prev returns the entry's latest tick at or before at, in the entry's time
// zone, or the zero time if it has none within five years. A kick published
// at time p belongs to the tick Prev(p): control names the run after it.
func (e Entry) Prev(at time.Time) time.Time {
	for span := time.Hour; ; span = min(2*span, maxLookback) {
		t := e.Next(at.Add(-span))
		if !t.IsZero() && !t.After(at) {
			for {
				n := e.Next(t)
				if n.IsZero() || n.After(at) {
					return t
				}
				t = n
			}
		}
		if span == maxLookback {
			return time.Time{}
		}
	}
}

// naive is t's wall clock as a time in UTC, where no clock ever jumps.
func naive(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// resolve maps the wall-clock time w (naive, in UTC) to the instant it
// denotes in loc: the first occurrence of a repeated time, the end of the
// gap for a skipped one. It is monotonic in w.
func resolve(w time.Time, loc *time.Location) time.Time {
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
	if !naive(t).Equal(w) {
		// Skipped: Go normalised w to one side of the gap.
		start, end := t.ZoneBounds()
		if naive(t).After(w) {
			return start
		}
		return end
	}
	// Repeated: the same wall clock also occurred in the previous zone period
	// if that period's offset was larger.
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, prevOff := start.Add(-time.Second).Zone()
	_, off := t.Zone()
	if prevOff > off {
		if first := t.Add(-time.Duration(prevOff-off) * time.Second); first.Before(start) && naive(first).Equal(w) {
			return first
		}
	}
	return t
}
