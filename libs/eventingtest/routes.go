package eventingtest

import (
	"fmt"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
)

// CheckRoutes checks a service's router against the registry (libs/events):
// each step route consumes the service's input in a pipeline and declares
// the step's output there ("" for a last step); each other route consumes a
// type the service is subscribed to; and every subscription of the service
// has a route.
func CheckRoutes(t testing.TB, r *eventing.Router, service string) {
	t.Helper()
	for _, p := range RouteProblems(r, service) {
		t.Error(p)
	}
}

// RouteProblems lists what CheckRoutes reports.
func RouteProblems(r *eventing.Router, service string) []string {
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	routed := map[string]bool{}
	for _, rt := range r.Routes() {
		routed[rt.In] = true
		if !rt.Step {
			if !subscribed(rt.In, service) {
				errorf("%s handles %s, which no subscription of it pushes", service, rt.In)
			}
			continue
		}
		matched := false
		for _, p := range events.Pipelines {
			if p.StepIndex(service) < 0 || p.Input(service) != rt.In {
				continue
			}
			matched = true
			if out := p.Output(service); rt.Out != out {
				errorf("%s: %s's step on %s declares output %q, the registry %q", p.ID, service, rt.In, rt.Out, out)
			}
		}
		if !matched {
			errorf("%s's step consumes %s, the input of none of its pipelines' steps", service, rt.In)
		}
	}
	for _, s := range events.Subscriptions() {
		if s.Service == service && !routed[s.EventType] {
			errorf("%s is subscribed to %s (%s) but has no route for it", service, s.EventType, s.ID)
		}
	}
	return problems
}

func subscribed(eventType, service string) bool {
	for _, s := range events.Subscriptions() {
		if s.EventType == eventType && s.Service == service {
			return true
		}
	}
	return false
}
