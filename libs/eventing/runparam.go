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
