package fleet

import (
	"slices"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/schedule"
)

// TestAddInterval checks the generator's time.Time adapter of
// schedule.Interval.Add (the month-end cases are libs/schedule's).
func TestAddInterval(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		from time.Time
		v    int
		unit string
		want time.Time
	}{
		{d(2025, 1, 31), 1, "months", d(2025, 2, 28)},
		{d(2024, 2, 29), 1, "years", d(2025, 2, 28)},
		{d(2025, 3, 15), 2, "weeks", d(2025, 3, 29)},
		{d(2025, 12, 31), 1, "days", d(2026, 1, 1)},
	} {
		if got := addInterval(tc.from, tc.v, tc.unit); got != tc.want {
			t.Errorf("%s + %d %s = %s, want %s", tc.from.Format(time.DateOnly), tc.v, tc.unit, got, tc.want)
		}
	}
}

// TestGeneratedHistoryFollowsTheDueRules replays pmgen's due rules
// (libs/schedule) over the generated history of every calendar-only plan: the
// daily pipeline, run on each work order's trigger day (its due date minus
// the lead days), generates that work order, and the plan's schedule then
// moves to the next work order's due date (for a floating plan, re-anchored
// on the completion), and after the last to the plan's next_due_date. A
// generator that stepped its schedules unlike pmgen would fail here.
func TestGeneratedHistoryFollowsTheDueRules(t *testing.T) {
	o, err := SeedOptions{Seed: 3, Now: testNow, Assets: 400, Years: 3}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	ds := generate(o)
	byPlan := map[string][]workOrderRow{}
	for _, w := range ds.workOrders {
		if w.PlanCode != "" {
			byPlan[w.PlanCode] = append(byPlan[w.PlanCode], w)
		}
	}
	active := schedule.Asset{Status: schedule.AssetActive}
	replayed := map[string]int{}
	for _, p := range ds.plans {
		if p.IntervalValue == nil || p.MeterInterval != nil {
			continue
		}
		wos := byPlan[p.Code]
		slices.SortFunc(wos, func(a, b workOrderRow) int { return a.DueDate.Compare(*b.DueDate) })
		plan := schedule.Plan{
			Calendar: schedule.Interval{Value: int(*p.IntervalValue), Unit: schedule.Unit(*p.IntervalUnit)},
			LeadDays: int(p.LeadDays), Mode: schedule.Mode(p.Mode), Active: true,
		}
		for i, w := range wos {
			due := schedule.DateOf(*w.DueDate)
			plan.NextDueDate, plan.AnchorDay = due, 0 // the demo data keeps no anchor day
			dec := schedule.Evaluate(plan, active, due.AddDays(-plan.LeadDays))
			if dec.Outcome != schedule.Generate || dec.DueDate != due {
				t.Fatalf("plan %s (%s, every %d %s): on its trigger day, work order %s due %s: %v due %s",
					p.Code, p.Mode, plan.Calendar.Value, plan.Calendar.Unit, w.Number, due, dec.Outcome, dec.DueDate)
			}
			plan.NextDueDate = dec.Next.NextDueDate
			if plan.Mode == schedule.Floating && w.Status == "COMPLETED" {
				plan = schedule.Complete(plan, schedule.DateOf(w.CompletedAt.UTC()), 0)
			}
			want, of := schedule.DateOf(*p.NextDueDate), "next_due_date"
			if i+1 < len(wos) {
				want, of = schedule.DateOf(*wos[i+1].DueDate), "the next work order's due date"
			}
			if plan.NextDueDate != want {
				t.Fatalf("plan %s (%s, every %d %s): after work order %s due %s (%s) pmgen's rules give %s, the data has %s as %s",
					p.Code, p.Mode, plan.Calendar.Value, plan.Calendar.Unit, w.Number, due, w.Status, plan.NextDueDate, want, of)
			}
		}
		replayed[p.Mode] += len(wos)
	}
	if replayed["fixed"] < 100 || replayed["floating"] < 100 {
		t.Fatalf("replayed too few work orders: %v", replayed)
	}
}
