package scheduler_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

func mustLoad(t *testing.T) scheduler.Table {
	t.Helper()
	tab, err := scheduler.Load()
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestLoad(t *testing.T) {
	tab := mustLoad(t)
	if tab.TimeZone != "UTC" {
		t.Errorf("time zone %q, want UTC", tab.TimeZone)
	}
	want := map[string]string{
		events.ETLMLTraining:         "0 2 * * 0",
		events.PreventiveMaintenance: "0 6 * * *",
		events.WeeklyKPIReport:       "0 8 * * 1",
		events.ModelMonitoring:       "0 5 * * *",
	}
	if len(tab.Entries) != len(events.Pipelines) {
		t.Fatalf("%d entries, want %d", len(tab.Entries), len(events.Pipelines))
	}
	for i, p := range events.Pipelines {
		e := tab.Entries[i]
		if e.Pipeline != p.ID {
			t.Errorf("entry %d is %s, want %s (events.Pipelines order)", i, e.Pipeline, p.ID)
		}
		if e.Schedule != want[p.ID] {
			t.Errorf("%s: schedule %q, want %q", p.ID, e.Schedule, want[p.ID])
		}
		if e.Description == "" {
			t.Errorf("%s: no description", p.ID)
		}
		if e.Location() != time.UTC {
			t.Errorf("%s: location %v, want UTC", p.ID, e.Location())
		}
		if e.MaxActiveRuns != 1 || tab.MaxActiveRuns(p.ID) != 1 {
			t.Errorf("%s: max_active_runs %d, want 1", p.ID, e.MaxActiveRuns)
		}
		if wantCatchup := p.ID != events.ETLMLTraining && p.ID != events.ModelMonitoring; e.Catchup != wantCatchup {
			t.Errorf("%s: catchup %v, want %v", p.ID, e.Catchup, wantCatchup)
		}
		if got, ok := tab.Lookup(p.ID); !ok || got.Schedule != e.Schedule {
			t.Errorf("Lookup(%s) = %+v, %v", p.ID, got, ok)
		}
	}
	if _, ok := tab.Lookup("nope"); ok {
		t.Error("Lookup of an unknown pipeline succeeded")
	}
}

func TestNextPrevUTC(t *testing.T) {
	tab := mustLoad(t)
	wed := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC) // a Wednesday
	for _, tt := range []struct {
		pipeline   string
		next, prev time.Time
	}{
		{events.ETLMLTraining, time.Date(2026, 6, 14, 2, 0, 0, 0, time.UTC), time.Date(2026, 6, 7, 2, 0, 0, 0, time.UTC)},
		{events.PreventiveMaintenance, time.Date(2026, 6, 11, 6, 0, 0, 0, time.UTC), time.Date(2026, 6, 10, 6, 0, 0, 0, time.UTC)},
		{events.WeeklyKPIReport, time.Date(2026, 6, 15, 8, 0, 0, 0, time.UTC), time.Date(2026, 6, 8, 8, 0, 0, 0, time.UTC)},
	} {
		t.Run(tt.pipeline, func(t *testing.T) {
			e, _ := tab.Lookup(tt.pipeline)
			if got := e.Next(wed); !got.Equal(tt.next) {
				t.Errorf("Next(%v) = %v, want %v", wed, got, tt.next)
			}
			if got := e.Prev(wed); !got.Equal(tt.prev) {
				t.Errorf("Prev(%v) = %v, want %v", wed, got, tt.prev)
			}
			// A tick is its own Prev; Next is strictly after.
			if got := e.Prev(tt.next); !got.Equal(tt.next) {
				t.Errorf("Prev(tick %v) = %v", tt.next, got)
			}
			if got := e.Prev(tt.next.Add(-time.Nanosecond)); !got.Equal(tt.prev) {
				t.Errorf("Prev(just before tick) = %v, want %v", got, tt.prev)
			}
			if got := e.Next(tt.next); !got.After(tt.next) {
				t.Errorf("Next(tick) = %v, not after the tick", got)
			}
			// A kick published a few seconds after its tick belongs to it.
			if got := e.Prev(tt.next.Add(3 * time.Second)); !got.Equal(tt.next) {
				t.Errorf("Prev(tick+3s) = %v, want %v", got, tt.next)
			}
		})
	}
}

// Berlin in 2026: clocks go forward on Sunday 29 March at 02:00 (to 03:00)
// and back on Sunday 25 October at 03:00 (to 02:00). Both are Sundays, and
// etl_ml_training runs on Sundays at 02:00: skipped the first time, repeated
// the second.
func TestNextPrevAcrossDSTBerlin(t *testing.T) {
	tab, err := mustLoad(t).InZone("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	ber := mustZone(t, "Europe/Berlin")
	utc := func(mo time.Month, d, h, m int) time.Time { return time.Date(2026, mo, d, h, m, 0, 0, time.UTC) }
	for _, tt := range []struct {
		pipeline string
		ticks    []time.Time // consecutive ticks, in UTC
	}{
		{events.ETLMLTraining, []time.Time{
			utc(3, 22, 1, 0), // 02:00 CET
			utc(3, 29, 1, 0), // 02:00 does not exist: 03:00 CEST, the end of the gap
			utc(4, 5, 0, 0),  // 02:00 CEST
		}},
		{events.ETLMLTraining, []time.Time{
			utc(10, 18, 0, 0), // 02:00 CEST
			utc(10, 25, 0, 0), // 02:00 CEST, the first of two 02:00s
			utc(11, 1, 1, 0),  // 02:00 CET: the second 02:00 of 25 October does not tick
		}},
		{events.PreventiveMaintenance, []time.Time{
			utc(3, 28, 5, 0), // 06:00 CET
			utc(3, 29, 4, 0), // 06:00 CEST, 23 h later
			utc(3, 30, 4, 0),
		}},
		{events.PreventiveMaintenance, []time.Time{
			utc(10, 24, 4, 0), // 06:00 CEST
			utc(10, 25, 5, 0), // 06:00 CET, 25 h later
			utc(10, 26, 5, 0),
		}},
		{events.WeeklyKPIReport, []time.Time{
			utc(3, 23, 7, 0), // 08:00 CET
			utc(3, 30, 6, 0), // 08:00 CEST, 167 h later
		}},
		{events.WeeklyKPIReport, []time.Time{
			utc(10, 19, 6, 0), // 08:00 CEST
			utc(10, 26, 7, 0), // 08:00 CET, 169 h later
		}},
	} {
		t.Run(tt.pipeline+"/"+tt.ticks[0].Format("Jan"), func(t *testing.T) {
			e, _ := tab.Lookup(tt.pipeline)
			for i, tick := range tt.ticks {
				if i > 0 {
					prev := tt.ticks[i-1]
					if got := e.Next(prev); !got.Equal(tick) {
						t.Errorf("Next(%v) = %v, want %v", prev.In(ber), got, tick.In(ber))
					}
					if got := e.Next(prev.Add(time.Minute)); !got.Equal(tick) {
						t.Errorf("Next(%v) = %v, want %v", prev.Add(time.Minute).In(ber), got, tick.In(ber))
					}
					if got := e.Prev(tick.Add(-time.Second)); !got.Equal(prev) {
						t.Errorf("Prev(%v) = %v, want %v", tick.Add(-time.Second).In(ber), got, prev.In(ber))
					}
				}
				if got := e.Prev(tick); !got.Equal(tick) {
					t.Errorf("Prev(tick %v) = %v", tick.In(ber), got)
				}
				if got := e.Prev(tick.Add(2 * time.Second)); !got.Equal(tick) {
					t.Errorf("Prev(%v) = %v, want %v", tick.Add(2*time.Second).In(ber), got, tick.In(ber))
				}
				if loc := e.Next(tick.Add(-time.Hour)).Location(); loc.String() != "Europe/Berlin" {
					t.Errorf("Next returns times in %v, want Europe/Berlin", loc)
				}
			}
		})
	}

	// A kick published during the repeated hour (say Cloud Scheduler fired
	// again at the second 02:00) still belongs to the first 02:00's run.
	e, _ := tab.Lookup(events.ETLMLTraining)
	if got, want := e.Prev(utc(10, 25, 1, 0).Add(5*time.Second)), utc(10, 25, 0, 0); !got.Equal(want) {
		t.Errorf("Prev(second 02:00:05) = %v, want the first 02:00 %v", got.In(ber), want.In(ber))
	}
}

// Properties of Next and Prev for many instants, schedules and zones with
// daylight saving time (including Lord Howe's 30-minute shift): Next is
// strictly after, Prev at or before, Prev of a tick is the tick, and no tick
// lies between Prev(x) and Next(x).
func TestNextPrevProperties(t *testing.T) {
	schedules := []string{"0 2 * * 0", "0 6 * * *", "0 8 * * 1", "30 2 * * *", "*/20 * * * *", "0 * * * *", "15 1,2,3 * * *", "0 0 1 * *"}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, zone := range zones {
		for _, sched := range schedules {
			// The other pipelines at minute 7, which none of the schedules
			// hits: pipelines may not share a tick.
			tab, err := scheduler.Parse(tableYAML(zone, map[string]string{events.ETLMLTraining: sched,
				events.PreventiveMaintenance: "7 6 * * *", events.WeeklyKPIReport: "7 8 * * 1", events.ModelMonitoring: "7 5 * * *"}))
			if err != nil {
				t.Fatal(err)
			}
			e, _ := tab.Lookup(events.ETLMLTraining)
			for range 300 {
				x := start.Add(time.Duration(rng.Int64N(int64(2 * 365 * 24 * time.Hour))))
				next, prev := e.Next(x), e.Prev(x)
				if !next.After(x) || prev.After(x) || prev.IsZero() {
					t.Fatalf("%s %q: x=%v next=%v prev=%v", zone, sched, x, next, prev)
				}
				if got := e.Next(prev); !got.Equal(next) {
					t.Fatalf("%s %q: x=%v: Next(Prev(x)=%v) = %v, want Next(x) = %v", zone, sched, x, prev, got, next)
				}
				if got := e.Prev(next); !got.Equal(next) {
					t.Fatalf("%s %q: Prev(tick %v) = %v", zone, sched, next, got)
				}
			}
		}
	}
}

// Every wall-clock tick across a year happens once: counted in Berlin, a
// daily job has 365 ticks in 2026 and a weekly Sunday job 52.
func TestTickCountAcrossYear(t *testing.T) {
	tab, err := mustLoad(t).InZone("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	ber := mustZone(t, "Europe/Berlin")
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, ber), time.Date(2027, 1, 1, 0, 0, 0, 0, ber)
	want := map[string]int{events.ETLMLTraining: 52, events.PreventiveMaintenance: 365, events.WeeklyKPIReport: 52, events.ModelMonitoring: 365}
	for _, e := range tab.Entries {
		n := 0
		for tick := e.Next(from); tick.Before(to); tick = e.Next(tick) {
			n++
		}
		if n != want[e.Pipeline] {
			t.Errorf("%s: %d ticks in 2026, want %d", e.Pipeline, n, want[e.Pipeline])
		}
	}
}

func TestInZone(t *testing.T) {
	tab := mustLoad(t)
	same, err := tab.InZone("")
	if err != nil || same.TimeZone != "UTC" {
		t.Fatalf("InZone(\"\") = %v, %v; want the table unchanged", same.TimeZone, err)
	}
	ny, err := tab.InZone("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	if ny.TimeZone != "America/New_York" || tab.TimeZone != "UTC" || tab.Entries[0].Location() != time.UTC {
		t.Fatalf("InZone must return a copy: %s / %s", ny.TimeZone, tab.TimeZone)
	}
	e, _ := ny.Lookup(events.PreventiveMaintenance)
	got := e.Next(time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 1, 11, 11, 0, 0, 0, time.UTC); !got.Equal(want) { // 06:00 EST
		t.Errorf("Next = %v, want %v", got, want)
	}
	for _, bad := range []string{"Mars/Olympus", "Local", " "} {
		if _, err := tab.InZone(bad); err == nil {
			t.Errorf("InZone(%q) succeeded", bad)
		}
	}
}

// tableYAML is a valid table in zone with the default schedules, overridden
// by schedules.
func tableYAML(zone string, schedules map[string]string) []byte {
	def := map[string]string{events.ETLMLTraining: "0 2 * * 0", events.PreventiveMaintenance: "0 6 * * *", events.WeeklyKPIReport: "0 8 * * 1", events.ModelMonitoring: "0 5 * * *"}
	var b strings.Builder
	fmt.Fprintf(&b, "time_zone: %q\npipelines:\n", zone)
	for _, p := range events.Pipelines {
		s, ok := schedules[p.ID]
		if !ok {
			s = def[p.ID]
		}
		fmt.Fprintf(&b, "  %s:\n    schedule: %q\n    description: test\n", p.ID, s)
	}
	return []byte(b.String())
}

func TestParseErrors(t *testing.T) {
	valid := string(tableYAML("UTC", nil))
	for _, tt := range []struct {
		name string
		yaml string
		want []string // substrings of the error
	}{
		{"four fields", string(tableYAML("UTC", map[string]string{events.ETLMLTraining: "0 2 * *"})),
			[]string{"pipeline etl_ml_training", `schedule "0 2 * *"`, "want 5 fields", "got 4"}},
		{"six fields", string(tableYAML("UTC", map[string]string{events.ETLMLTraining: "0 0 2 * * 0"})),
			[]string{"pipeline etl_ml_training", "want 5 fields", "got 6"}},
		{"descriptor", string(tableYAML("UTC", map[string]string{events.PreventiveMaintenance: "@daily"})),
			[]string{"pipeline preventive_maintenance", "want 5 fields"}},
		{"time zone prefix", string(tableYAML("UTC", map[string]string{events.PreventiveMaintenance: "CRON_TZ=UTC 0 6 * *"})),
			[]string{"pipeline preventive_maintenance", "no time zone prefix"}},
		{"out of range", string(tableYAML("UTC", map[string]string{events.WeeklyKPIReport: "0 24 * * 1"})),
			[]string{"pipeline weekly_kpi_report", `schedule "0 24 * * 1"`, "above maximum"}},
		{"not a number", string(tableYAML("UTC", map[string]string{events.WeeklyKPIReport: "0 eight * * 1"})),
			[]string{"pipeline weekly_kpi_report", "eight"}},
		{"never fires", string(tableYAML("UTC", map[string]string{events.WeeklyKPIReport: "0 8 30 2 *"})),
			[]string{"pipeline weekly_kpi_report", "never fires"}},
		{"unknown pipeline", valid + "  etl_ml_trainig:\n    schedule: \"0 2 * * 0\"\n    description: typo\n",
			[]string{"pipeline etl_ml_trainig", "unknown pipeline id", "known: etl_ml_training, preventive_maintenance, weekly_kpi_report, model_monitoring"}},
		{"missing pipeline", strings.Replace(valid, "  weekly_kpi_report:", "  weekly_kpi_report_old:", 1),
			[]string{"pipeline weekly_kpi_report: missing", "pipeline weekly_kpi_report_old: unknown pipeline id"}},
		{"duplicate pipeline", valid + "  etl_ml_training:\n    schedule: \"0 3 * * 0\"\n    description: again\n",
			[]string{"etl_ml_training", "already defined"}},
		{"bad zone", string(tableYAML("Europe/Berlinn", nil)),
			[]string{"time_zone", "unknown time zone Europe/Berlinn"}},
		{"local zone", string(tableYAML("Local", nil)),
			[]string{"time_zone", "not an IANA time zone"}},
		{"missing zone", strings.Replace(valid, `time_zone: "UTC"`, "", 1),
			[]string{"time_zone: missing"}},
		{"missing description", strings.Replace(valid, "description: test", "description: ''", 1),
			[]string{"pipeline etl_ml_training", "description: missing"}},
		{"unknown field", strings.Replace(valid, "    description: test\n", "    description: test\n    schedul: \"0 1 * * *\"\n", 1),
			[]string{"field schedul not found"}},
		{"max_active_runs 0", strings.Replace(valid, "    description: test\n", "    description: test\n    max_active_runs: 0\n", 1),
			[]string{"pipeline etl_ml_training", "max_active_runs 0: want 1 to 64"}},
		{"max_active_runs not a number", strings.Replace(valid, "    description: test\n", "    description: test\n    max_active_runs: many\n", 1),
			[]string{"line 6", "`many` into int"}},
		{"catchup not a bool", strings.Replace(valid, "    description: test\n", "    description: test\n    catchup: sometimes\n", 1),
			[]string{"line 6", "`sometimes` into bool"}},
		{"two pipelines on one tick", string(tableYAML("UTC", map[string]string{events.WeeklyKPIReport: "0 6 * * 1"})),
			[]string{"pipelines preventive_maintenance and weekly_kpi_report both tick at", "T06:00:00Z", "move one schedule by a minute"}},
		{"not yaml", "time_zone: [", []string{"scheduler: cron table"}},
		{"several problems", strings.Replace(string(tableYAML("Nowhere/Land", map[string]string{events.ETLMLTraining: "x"})), "  weekly_kpi_report:", "  weekly:", 1),
			[]string{"time_zone", "pipeline etl_ml_training", "pipeline weekly_kpi_report: missing", "pipeline weekly: unknown"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scheduler.Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded on\n%s", tt.yaml)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not mention %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "scheduler: cron table: ") {
				t.Errorf("error %q lacks the scheduler: cron table: prefix", err)
			}
		})
	}
	tab, err := scheduler.Parse([]byte(valid))
	if err != nil {
		t.Fatalf("valid table: %v", err)
	}
	if e, _ := tab.Lookup(events.ETLMLTraining); e.MaxActiveRuns != 1 || e.Catchup {
		t.Errorf("defaults: max_active_runs %d, catchup %v", e.MaxActiveRuns, e.Catchup)
	}
	tab, err = scheduler.Parse([]byte(strings.Replace(valid, "    description: test\n", "    description: test\n    max_active_runs: 3\n    catchup: true\n", 1)))
	if e, _ := tab.Lookup(events.ETLMLTraining); err != nil || e.MaxActiveRuns != 3 || !e.Catchup || tab.MaxActiveRuns(events.ETLMLTraining) != 3 {
		t.Errorf("set: %+v, %v", e, err)
	}
}
