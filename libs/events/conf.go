package events

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

var (
	dateRE    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	isoWeekRE = regexp.MustCompile(`^([0-9]{4})-W([0-9]{2})$`)
)

// ValidateConf checks a trigger's conf, a JSON object as Airflow's conf is:
// the pipeline's declared keys must be strings in their formats; any other
// key, of any JSON type, is kept with the run and read by no step. It returns
// the declared keys' values, which is what the steps read. The error names
// the key and the reason; every API that triggers a run (control's, the
// Airflow-compatible one, the old composer routes) uses this one check.
func (p Pipeline) ValidateConf(conf map[string]any) (map[string]string, error) {
	known := map[string]string{}
	for _, ck := range p.Conf {
		v, ok := conf[ck.Name]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("conf: key %q: the value must be a string (%s)", ck.Name, ck.Format)
		}
		if err := CheckConfValue(ck.Format, s); err != nil {
			return nil, fmt.Errorf("conf: key %q: %w", ck.Name, err)
		}
		known[ck.Name] = s
	}
	return known, nil
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
