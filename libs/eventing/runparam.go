package eventing

import (
	"errors"
	"fmt"
	"strings"
	"time"

	eventsv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/events/v1"
)

// RunParam is a value a step takes from its run: parse of the run's conf
// key (trimmed) when the conf gives it, else fromLogical of the run's
// logical date. A run-started without a valid logical date is an error.
func RunParam[T any](p *eventsv1.RunStarted, key string, parse func(string) (T, error), fromLogical func(time.Time) T) (T, error) {
	var none T
	if s, ok := p.GetConf()[key]; ok {
		v, err := parse(strings.TrimSpace(s))
		if err != nil {
			return none, fmt.Errorf("conf %s: %w", key, err)
		}
		return v, nil
	}
	if p.GetLogicalDate() == nil {
		return none, errors.New("run-started without a logical_date")
	}
	if err := p.GetLogicalDate().CheckValid(); err != nil {
		return none, fmt.Errorf("logical_date: %w", err)
	}
	return fromLogical(p.GetLogicalDate().AsTime()), nil
}

// FromRunStarted decodes ev as a run-started and returns what param takes
// from it (a step's RunParam). A param error is permanent: the run asks for
// what cannot be.
func FromRunStarted[T any](ev Event, param func(*eventsv1.RunStarted) (T, error)) (T, error) {
	var none T
	var p eventsv1.RunStarted
	if err := ev.Decode(&p); err != nil {
		return none, err
	}
	v, err := param(&p)
	if err != nil {
		return none, Permanent(err)
	}
	return v, nil
}
