// Package cron is the local cron publisher: on every tick of the cron table
// it publishes the pipeline's kick to Pub/Sub (the emulator), as Cloud
// Scheduler does on GCP.
package cron

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	robfig "github.com/robfig/cron/v3"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/scheduler"
)

// Cron kicks the pipelines of a cron table on their ticks.
type Cron struct {
	loc            *time.Location
	entries        []scheduler.Entry
	pub            eventing.Publisher
	log            *slog.Logger
	publishTimeout time.Duration

	// now is the clock the tick of a kick is read from.
	now func() time.Time
	// schedule is what the runner follows for an entry: the entry itself
	// (tests substitute a faster one).
	schedule func(scheduler.Entry) robfig.Schedule
}

// NewCron kicks table's pipelines, or only those named in only, through pub.
func NewCron(table scheduler.Table, only []string, pub eventing.Publisher, log *slog.Logger, publishTimeout time.Duration) (*Cron, error) {
	entries, err := selectEntries(table, only)
	if err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, fmt.Errorf("cron: no publisher")
	}
	if publishTimeout <= 0 {
		publishTimeout = 30 * time.Second
	}
	return &Cron{
		loc: table.Location(), entries: entries, pub: pub, log: log, publishTimeout: publishTimeout,
		now:      time.Now,
		schedule: func(e scheduler.Entry) robfig.Schedule { return e },
	}, nil
}

// selectEntries returns the table's entries named in only, in table order;
// all of them when only names none.
func selectEntries(table scheduler.Table, only []string) ([]scheduler.Entry, error) {
	var want []string
	for _, id := range only {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if _, ok := table.Lookup(id); !ok {
			var known []string
			for _, p := range events.Pipelines {
				known = append(known, p.ID)
			}
			return nil, fmt.Errorf("cron: CRON_ONLY: unknown pipeline %q (known: %s)", id, strings.Join(known, ", "))
		}
		want = append(want, id)
	}
	if len(table.Entries) == 0 {
		return nil, fmt.Errorf("cron: empty cron table")
	}
	if len(want) == 0 {
		return slices.Clone(table.Entries), nil
	}
	var out []scheduler.Entry
	for _, e := range table.Entries {
		if slices.Contains(want, e.Pipeline) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Entries are the entries this cron kicks.
func (c *Cron) Entries() []scheduler.Entry { return slices.Clone(c.entries) }

// Kick publishes the kick of e's pipeline for tick and logs it with the next
// tick.
func (c *Cron) Kick(ctx context.Context, e scheduler.Entry, tick time.Time) error {
	topic := scheduler.KickTopic()
	if err := c.pub.Publish(ctx, topic, scheduler.KickMessage(e.Pipeline)); err != nil {
		c.log.Error("kick failed", "pipeline", e.Pipeline, "tick", tick, "topic", topic, "error", err)
		return fmt.Errorf("cron: kick %s: %w", e.Pipeline, err)
	}
	c.log.Info("kicked", "pipeline", e.Pipeline, "tick", tick, "topic", topic, "next", e.Next(c.now()))
	return nil
}

// fire is a runner job: the kick for the tick that just came.
func (c *Cron) fire(ctx context.Context, e scheduler.Entry) {
	// A kick under way at shutdown still completes, within publishTimeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.publishTimeout)
	defer cancel()
	_ = c.Kick(ctx, e, e.Prev(c.now()))
}

// Run kicks on every tick until ctx is cancelled, then waits for kicks under
// way. Missed ticks (a stopped or suspended process) are not made up.
func (c *Cron) Run(ctx context.Context) error {
	r := robfig.New(robfig.WithLocation(c.loc), robfig.WithLogger(runnerLogger{c.log}))
	for _, e := range c.entries {
		r.Schedule(c.schedule(e), robfig.FuncJob(func() { c.fire(ctx, e) }))
		c.log.Info("scheduled", "pipeline", e.Pipeline, "schedule", e.Schedule,
			"time_zone", e.Location().String(), "next", e.Next(c.now()))
	}
	r.Start()
	<-ctx.Done()
	<-r.Stop().Done()
	return nil
}

// runnerLogger sends robfig/cron's own logging to slog, its routine
// messages at debug level.
type runnerLogger struct{ log *slog.Logger }

func (l runnerLogger) Info(msg string, kv ...any) { l.log.Debug("cron runner: "+msg, kv...) }
func (l runnerLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron runner: "+msg, append(kv, "error", err)...)
}
