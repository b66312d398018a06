package events

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	dateRE    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	isoWeekRE = regexp.MustCompile(`^([0-9]{4})-W([0-9]{2})$`)
)

// ValidateConf checks a trigger's conf against the pipeline's declared keys
// and their formats. The error names the key and the reason; every API that
// triggers a run (control's, the Airflow-compatible one) uses this one check.
func (p Pipeline) ValidateConf(conf map[string]string) error {
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ck, ok := p.ConfKey(k)
		if !ok {
			return fmt.Errorf("conf: unknown key %q for pipeline %s (allowed: %s)", k, p.ID, p.allowedConfKeys())
		}
		if err := CheckConfValue(ck.Format, conf[k]); err != nil {
			return fmt.Errorf("conf: key %q: %w", k, err)
		}
	}
	return nil
}

func (p Pipeline) allowedConfKeys() string {
	if len(p.Conf) == 0 {
		return "none"
	}
	names := make([]string, len(p.Conf))
	for i, k := range p.Conf {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

// CheckConfValue checks one conf value against its format.
func CheckConfValue(f ConfFormat, v string) error {
	switch f {
	case ConfDate:
		if !dateRE.MatchString(v) {
			return fmt.Errorf("%q is not a date YYYY-MM-DD", v)
		}
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return fmt.Errorf("%q is not a calendar day", v)
		}
	case ConfISOWeek:
		m := isoWeekRE.FindStringSubmatch(v)
		if m == nil {
			return fmt.Errorf("%q is not an ISO week YYYY-Www", v)
		}
		year, _ := strconv.Atoi(m[1])
		week, _ := strconv.Atoi(m[2])
		if week < 1 || week > ISOWeeksIn(year) {
			return fmt.Errorf("%q: %d has weeks W01 to W%02d", v, year, ISOWeeksIn(year))
		}
	default:
		return fmt.Errorf("unsupported format %q", f)
	}
	return nil
}

// ISOWeeksIn is the number of ISO weeks of year: 28 December is always in
// the last one.
func ISOWeeksIn(year int) int {
	_, w := time.Date(year, time.December, 28, 0, 0, 0, 0, time.UTC).ISOWeek()
	return w
}
