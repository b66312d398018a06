package api

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

var (
	dateRE           = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	isoWeekRE        = regexp.MustCompile(`^([0-9]{4})-W([0-9]{2})$`)
	idempotencyKeyRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

// validateConf checks a trigger's conf against the pipeline's declared keys
// and their formats. The error names the key and the reason.
func validateConf(pl events.Pipeline, conf map[string]string) error {
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ck, ok := pl.ConfKey(k)
		if !ok {
			return invalid("conf: unknown key %q for pipeline %s (allowed: %s)", k, pl.ID, allowedKeys(pl))
		}
		if err := checkFormat(ck.Format, conf[k]); err != nil {
			return invalid("conf: key %q: %v", k, err)
		}
	}
	return nil
}

func allowedKeys(pl events.Pipeline) string {
	if len(pl.Conf) == 0 {
		return "none"
	}
	names := make([]string, len(pl.Conf))
	for i, k := range pl.Conf {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
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
		if week < 1 || week > weeksIn(year) {
			return fmt.Errorf("%q: %d has weeks W01 to W%02d", v, year, weeksIn(year))
		}
	default:
		return fmt.Errorf("unsupported format %q", f)
	}
	return nil
}

// weeksIn is the number of ISO weeks of year: 28 December is always in the
// last one.
func weeksIn(year int) int {
	_, w := time.Date(year, time.December, 28, 0, 0, 0, 0, time.UTC).ISOWeek()
	return w
}

func validateIdempotencyKey(k string) error {
	if k != "" && !idempotencyKeyRE.MatchString(k) {
		return invalid("idempotency_key: must be 1-128 characters of [A-Za-z0-9._:-]")
	}
	return nil
}
