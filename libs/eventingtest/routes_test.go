package eventingtest_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/eventingtest"
	"github.com/cmmsflow/cmmsflow/libs/events"
)

func TestRouteProblems(t *testing.T) {
	newRouter := func() *eventing.Router {
		return eventing.NewRouter(eventing.RouterConfig{Service: events.Trainer, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	step := func(context.Context, eventing.Event) (eventing.StepResult, error) { return eventing.StepResult{}, nil }
	good := newRouter()
	good.HandleStep(events.FeaturesBuilt, events.ModelTrained, step)
	if p := eventingtest.RouteProblems(good, events.Trainer); len(p) != 0 {
		t.Fatalf("the trainer's real edges: %v", p)
	}
	wrongOut := newRouter()
	wrongOut.HandleStep(events.FeaturesBuilt, events.ModelDeployed, step)
	missing := newRouter()
	stray := newRouter()
	stray.HandleStep(events.FeaturesBuilt, events.ModelTrained, step)
	stray.Handle(events.StepFailed, func(context.Context, pgx.Tx, eventing.Event) error { return nil })
	for _, tt := range []struct {
		name string
		r    *eventing.Router
		want string
	}{
		{"wrong output", wrongOut, `declares output "cmmsflow.model.deployed.v1", the registry "cmmsflow.model.trained.v1"`},
		{"no route", missing, "no route for it"},
		{"unsubscribed", stray, "which no subscription of it pushes"},
	} {
		p := eventingtest.RouteProblems(tt.r, events.Trainer)
		if len(p) != 1 || !strings.Contains(p[0], tt.want) {
			t.Errorf("%s: %v, want one problem with %q", tt.name, p, tt.want)
		}
	}
}
