// Command sync makes the Cloud Scheduler jobs of GOOGLE_CLOUD_PROJECT and
// SCHEDULER_LOCATION match the cron table (scheduler/crontab.yaml): it
// creates the missing jobs, updates those that differ and deletes the
// cmmsflow- jobs the table no longer names, printing the plan first.
//
//	sync [--dry-run]
//
// --dry-run prints the plan and changes nothing. It runs with the
// application default credentials, which need permission to list, create,
// update and delete Cloud Scheduler jobs (roles/cloudscheduler.admin).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/logging"
	"github.com/cmmsflow/cmmsflow/libs/service"
	"github.com/cmmsflow/cmmsflow/scheduler"
	jobsync "github.com/cmmsflow/cmmsflow/scheduler/internal/sync"
)

func main() {
	service.Main(func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Stdout, os.Stderr) })
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "print the plan, change nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sync [--dry-run]\n\nMakes the Cloud Scheduler jobs match the cron table.\n"+
			"Environment: GOOGLE_CLOUD_PROJECT, SCHEDULER_LOCATION (required), CRON_TIME_ZONE, SCHEDULER_JOB_PREFIX [cmmsflow-].")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var cfg jobsync.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	log := logging.New(stderr, logging.Options{Format: cfg.LogFormat, Level: cfg.LogLevel, ProjectID: cfg.ProjectID}).
		With("command", "scheduler-sync")
	table, err := scheduler.Load()
	if err != nil {
		return err
	}
	if table, err = table.InZone(cfg.TimeZone); err != nil {
		return fmt.Errorf("CRON_TIME_ZONE: %w", err)
	}
	client, err := jobsync.NewClient(ctx, cfg.EmulatorHost)
	if err != nil {
		return err
	}
	defer client.Close()
	s := &jobsync.Syncer{
		Client: client, Log: log,
		Target: jobsync.Target{Project: cfg.ProjectID, Location: cfg.Location, Prefix: cfg.Prefix},
	}
	plan, err := s.Sync(ctx, table, *dryRun, stdout)
	if err != nil {
		return err
	}
	switch {
	case plan.InSync():
		fmt.Fprintln(stdout, "in sync: nothing to do")
	case *dryRun:
		fmt.Fprintln(stdout, "dry run: nothing changed")
	default:
		fmt.Fprintln(stdout, "applied")
	}
	return nil
}
