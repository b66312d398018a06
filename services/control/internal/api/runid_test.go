package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

func TestValidateRunID(t *testing.T) {
	for id, want := range map[string]string{
		"scheduled__2026-12-02T06:00:00+00:00": "",
		"manual__x.1~2":                        "",
		"..x":                                  "",
		strings.Repeat("é", 250):               "",
		"":                                     "required",
		".":                                    `"." is not a run id: a URL path cannot name it`,
		"..":                                   `".." is not a run id: a URL path cannot name it`,
		"a/b":                                  `must not contain "/"`,
		"../etc":                               `must not contain "/"`,
		"a\x00b":                               "must not contain control characters",
		"a\nb":                                 "must not contain control characters",
		"a\x7fb":                               "must not contain control characters",
		"a\u0085b":                             "must not contain control characters",
		"a\xffb":                               "not valid UTF-8",
		strings.Repeat("x", 251):               "251 characters, more than 250",
	} {
		err := ValidateRunID(id)
		if (err == nil) != (want == "") || (err != nil && err.Error() != want) {
			t.Errorf("ValidateRunID(%q) = %v, want %q", id, err, want)
		}
	}
}

// Every method that takes a run id answers InvalidArgument for one
// ValidateRunID refuses, naming the field and the reason.
func TestRunIDsValidated(t *testing.T) {
	pool := pgtest.New(t)
	table, err := scheduler.Load()
	if err != nil {
		t.Fatal(err)
	}
	s := New(pool, table, &nudges{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	calls := map[string]func(id string) error{
		"GetRun": func(id string) error {
			_, err := s.GetRun(ctx, &controlv1.GetRunRequest{RunId: id})
			return err
		},
		"CancelRun": func(id string) error {
			_, err := s.CancelRun(ctx, &controlv1.CancelRunRequest{RunId: id})
			return err
		},
		"RetryRun": func(id string) error {
			_, err := s.RetryRun(ctx, &controlv1.RetryRunRequest{RunId: id})
			return err
		},
		"SetRunState": func(id string) error {
			_, err := s.SetRunState(ctx, &controlv1.SetRunStateRequest{RunId: id, State: "failed"})
			return err
		},
		"SetStepState": func(id string) error {
			_, err := s.SetStepState(ctx, &controlv1.SetStepStateRequest{RunId: id, Step: "pmgen", State: "success"})
			return err
		},
	}
	for name, call := range calls {
		for id, want := range map[string]string{
			"..":                     `run_id: ".." is not a run id: a URL path cannot name it`,
			"a/b":                    `run_id: must not contain "/"`,
			"a\x00b":                 "run_id: must not contain control characters",
			strings.Repeat("r", 251): "run_id: 251 characters, more than 250",
			"":                       "run_id: required",
		} {
			err := call(id)
			var ae *apiError
			if !errors.As(err, &ae) || ae.code != codes.InvalidArgument || ae.msg != want {
				t.Errorf("%s(%q): %v, want InvalidArgument %q", name, id, err, want)
			}
		}
		var ae *apiError
		if err := call("nope"); !errors.As(err, &ae) || ae.code != codes.NotFound {
			t.Errorf("%s of an unknown run: %v, want NotFound", name, err)
		}
	}
}
