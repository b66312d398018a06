package compat

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// Airflow's conf is any JSON object; a pipeline's conf is string values of
// declared keys. stringConf keeps the object when every value is a string.
func stringConf(conf map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(conf))
	for k, v := range conf {
		sv, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("conf: key %q: the value must be a string", k)
		}
		out[k] = sv
	}
	return out, nil
}

var (
	dateRE    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	isoWeekRE = regexp.MustCompile(`^([0-9]{4})-W([0-9]{2})$`)
)

// validateConf applies the rules of the ControlService's TriggerPipeline
// (declared keys, their formats) for the triggers this package inserts itself
// (a caller-chosen dag_run_id or logical_date); TestConfRulesMatchAPI keeps
// the two in step.
func validateConf(pl events.Pipeline, conf map[string]string) error {
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ck, ok := pl.ConfKey(k)
		if !ok {
			names := make([]string, len(pl.Conf))
			for i, c := range pl.Conf {
				names[i] = c.Name
			}
			allowed := strings.Join(names, ", ")
			if allowed == "" {
				allowed = "none"
			}
			return fmt.Errorf("conf: unknown key %q for pipeline %s (allowed: %s)", k, pl.ID, allowed)
		}
		if err := checkFormat(ck.Format, conf[k]); err != nil {
			return fmt.Errorf("conf: key %q: %w", k, err)
		}
	}
	return nil
}

func checkFormat(f events.ConfFormat, v string) error {
	switch f {
	case events.ConfDate:
		if !dateRE.MatchString(v) {
			return fmt.Errorf("%q is not a date YYYY-MM-DD", v)
		}
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return fmt.Errorf("%q is not a calendar day", v)
		}
	case events.ConfISOWeek:
		m := isoWeekRE.FindStringSubmatch(v)
		if m == nil {
			return fmt.Errorf("%q is not an ISO week YYYY-Www", v)
		}
		year, _ := strconv.Atoi(m[1])
		week, _ := strconv.Atoi(m[2])
		_, last := time.Date(year, time.December, 28, 0, 0, 0, 0, time.UTC).ISOWeek()
		if week < 1 || week > last {
			return fmt.Errorf("%q: %d has weeks W01 to W%02d", v, year, last)
		}
	default:
		return fmt.Errorf("unsupported format %q", f)
	}
	return nil
}
