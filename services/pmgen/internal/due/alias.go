// Package due is what is left of pmgen's due rules, which moved to
// libs/schedule (github.com/cmmsflow/cmmsflow/libs/schedule) so that the demo
// fleet generator uses them too. It keeps only the names the run handler
// (internal/pmgen) still imports; new code imports libs/schedule, and this
// package goes once the handler does.
package due

import (
	"time"

	"github.com/cmmsflow/cmmsflow/libs/schedule"
)

// Date is schedule.Date.
type Date = schedule.Date

// ParseDate is schedule.ParseDate.
func ParseDate(s string) (Date, error) { return schedule.ParseDate(s) }

// Today is schedule.Today.
func Today(now time.Time, loc *time.Location) Date { return schedule.Today(now, loc) }
