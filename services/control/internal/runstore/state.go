package runstore

import (
	"fmt"
	"slices"
	"strings"
)

// State is a run's state (runs.state) or a step's (steps.state).
type State string

// Run states.
const (
	Queued    State = "queued"
	Running   State = "running"
	Success   State = "success"
	Failed    State = "failed"
	Cancelled State = "cancelled"
	Skipped   State = "skipped" // also a step state
)

// Step states (besides Running, Success, Failed and Skipped).
const (
	Pending    State = "pending"
	UpForRetry State = "up_for_retry"
)

// RunStates are the states of a run, in the order they are listed.
var RunStates = []State{Queued, Running, Success, Failed, Cancelled, Skipped}

// StepStates are the states of a step, in the order they are listed.
var StepStates = []State{Pending, Running, UpForRetry, Success, Failed, Skipped}

// ValidRun reports whether s is a run state.
func (s State) ValidRun() bool { return slices.Contains(RunStates, s) }

// ValidStep reports whether s is a step state.
func (s State) ValidStep() bool { return slices.Contains(StepStates, s) }

// Active reports whether a run in state s has not ended (queued or
// running): it can be cancelled, not retried.
func (s State) Active() bool { return s == Queued || s == Running }

// ParseRunState reads a run state; the error lists the valid ones.
func ParseRunState(s string) (State, error) {
	if st := State(s); st.ValidRun() {
		return st, nil
	}
	return "", fmt.Errorf("%q is not one of %s", s, Join(RunStates))
}

// ParseStepState reads a step state; the error lists the valid ones.
func ParseStepState(s string) (State, error) {
	if st := State(s); st.ValidStep() {
		return st, nil
	}
	return "", fmt.Errorf("%q is not one of %s", s, Join(StepStates))
}

// Join lists states as "a, b, c".
func Join(states []State) string {
	ss := make([]string, len(states))
	for i, s := range states {
		ss[i] = string(s)
	}
	return strings.Join(ss, ", ")
}
