// Package sync makes the Cloud Scheduler jobs of one project and location
// match the cron table: one job per pipeline, with id <prefix><pipeline id>
// (cmmsflow-etl_ml_training), publishing the pipeline's kick
// (scheduler.KickMessage) to the kick topic on the entry's schedule in the
// table's time zone. Jobs with an id of that form whose pipeline the table
// does not name are deleted; no other job is ever touched. A job's paused or
// enabled state is left as it is.
package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"

	schedulerapi "cloud.google.com/go/scheduler/apiv1"
	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/cmmsflow/cmmsflow/scheduler"
)

// DefaultPrefix starts the name of every job this package manages.
const DefaultPrefix = "cmmsflow-"

// Config is the sync command's configuration, from the environment.
type Config struct {
	ProjectID string `env:"GOOGLE_CLOUD_PROJECT, required"`
	// Location is the Cloud Scheduler region, e.g. europe-west1.
	Location string `env:"SCHEDULER_LOCATION, required"`
	// TimeZone overrides the cron table's time zone (an IANA name).
	TimeZone string `env:"CRON_TIME_ZONE"`
	// Prefix starts every managed job id: jobs with it that the table does
	// not name are deleted.
	Prefix string `env:"SCHEDULER_JOB_PREFIX, default=cmmsflow-"`
	// EmulatorHost, when set, is a plaintext Cloud Scheduler endpoint
	// (host:port) used without credentials: tests and fakes only.
	EmulatorHost string `env:"SCHEDULER_EMULATOR_HOST"`
	LogFormat    string `env:"LOG_FORMAT, default=text"`
	LogLevel     string `env:"LOG_LEVEL, default=info"`
}

// jobID is what Cloud Scheduler allows as a job id.
var jobID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,500}$`)

// pipelineID is what follows the prefix in a managed job's id: a pipeline
// id (snake case, no hyphen). So prefix cmmsflow- does not claim the jobs of
// prefix cmmsflow-staging-.
var pipelineID = regexp.MustCompile(`^[a-z0-9_]+$`)

// Target is where the jobs live and what they are called.
type Target struct {
	Project  string
	Location string
	Prefix   string // "" means DefaultPrefix
}

func (t Target) prefix() string {
	if t.Prefix == "" {
		return DefaultPrefix
	}
	return t.Prefix
}

// Parent is the jobs' parent resource, projects/P/locations/L.
func (t Target) Parent() string { return "projects/" + t.Project + "/locations/" + t.Location }

// JobName is the full resource name of pipeline's job.
func (t Target) JobName(pipeline string) string { return t.Parent() + "/jobs/" + t.prefix() + pipeline }

// Topic is the full name of the kick topic.
func (t Target) Topic() string { return "projects/" + t.Project + "/topics/" + scheduler.KickTopic() }

func (t Target) validate() error {
	var errs []error
	if t.Project == "" {
		errs = append(errs, errors.New("no project (GOOGLE_CLOUD_PROJECT)"))
	}
	if t.Location == "" {
		errs = append(errs, errors.New("no location (SCHEDULER_LOCATION)"))
	}
	if !jobID.MatchString(t.prefix()) {
		errs = append(errs, fmt.Errorf("job prefix (SCHEDULER_JOB_PREFIX) %q: want letters, digits, - and _", t.prefix()))
	}
	if len(errs) > 0 {
		return fmt.Errorf("sync: %w", errors.Join(errs...))
	}
	return nil
}

// Desired returns the job of every entry of table, in table order.
func (t Target) Desired(table scheduler.Table) []*schedulerpb.Job {
	jobs := make([]*schedulerpb.Job, 0, len(table.Entries))
	for _, e := range table.Entries {
		kick := scheduler.KickMessage(e.Pipeline)
		jobs = append(jobs, &schedulerpb.Job{
			Name:        t.JobName(e.Pipeline),
			Description: e.Description,
			Schedule:    e.Schedule,
			TimeZone:    table.TimeZone,
			Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{
				TopicName: t.Topic(), Data: kick.Data, Attributes: kick.Attributes,
			}},
		})
	}
	return jobs
}

// Op is what a sync does to one job.
type Op string

const (
	Create    Op = "create"
	Update    Op = "update"
	Delete    Op = "delete"
	Unchanged Op = "unchanged"
)

// Step is one job's part of a plan.
type Step struct {
	Op  Op
	Job *schedulerpb.Job // the wanted job; for Delete, the existing one
	// Diff names what an Update changes, one "field: old → new" each.
	Diff []string
}

// ID is the job's id, the last part of its name.
func (s Step) ID() string { return s.Job.GetName()[strings.LastIndex(s.Job.GetName(), "/")+1:] }

// Plan is what a sync does: creates, updates and deletes, then the jobs
// already in sync.
type Plan struct {
	Parent string
	Steps  []Step
}

// Count returns how many steps do op.
func (p Plan) Count(op Op) int {
	n := 0
	for _, s := range p.Steps {
		if s.Op == op {
			n++
		}
	}
	return n
}

// InSync reports whether the plan changes nothing.
func (p Plan) InSync() bool { return p.Count(Unchanged) == len(p.Steps) }

// Write prints the plan, one line a job and a summary.
func (p Plan) Write(w io.Writer) error {
	var b strings.Builder
	for _, s := range p.Steps {
		switch s.Op {
		case Create:
			fmt.Fprintf(&b, "create    %s  %q %s → %s\n", s.ID(), s.Job.GetSchedule(), s.Job.GetTimeZone(),
				s.Job.GetPubsubTarget().GetTopicName())
		case Update:
			fmt.Fprintf(&b, "update    %s  %s\n", s.ID(), strings.Join(s.Diff, "; "))
		case Delete:
			fmt.Fprintf(&b, "delete    %s  %q %s\n", s.ID(), s.Job.GetSchedule(), s.Job.GetTimeZone())
		case Unchanged:
			fmt.Fprintf(&b, "unchanged %s\n", s.ID())
		}
	}
	fmt.Fprintf(&b, "plan for %s: %d to create, %d to update, %d to delete, %d unchanged\n", p.Parent,
		p.Count(Create), p.Count(Update), p.Count(Delete), p.Count(Unchanged))
	_, err := io.WriteString(w, b.String())
	return err
}

// Syncer plans and applies syncs through a Cloud Scheduler client.
type Syncer struct {
	Client *schedulerapi.CloudSchedulerClient
	Target Target
	Log    *slog.Logger // nil discards
}

func (s *Syncer) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Manages reports whether the job named name is one of the target's: under
// its parent, its id the prefix and a pipeline id (known or not).
func (t Target) Manages(name string) bool {
	id, ok := strings.CutPrefix(name, t.Parent()+"/jobs/"+t.prefix())
	return ok && pipelineID.MatchString(id)
}

// List returns the existing jobs the target manages, by name.
func (s *Syncer) List(ctx context.Context) (map[string]*schedulerpb.Job, error) {
	out := map[string]*schedulerpb.Job{}
	it := s.Client.ListJobs(ctx, &schedulerpb.ListJobsRequest{Parent: s.Target.Parent()})
	for {
		job, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sync: list jobs in %s: %w", s.Target.Parent(), err)
		}
		if s.Target.Manages(job.GetName()) {
			out[job.GetName()] = job
		}
	}
}

// Plan compares the table's jobs with the existing ones.
func (s *Syncer) Plan(ctx context.Context, table scheduler.Table) (Plan, error) {
	if err := s.Target.validate(); err != nil {
		return Plan{}, err
	}
	existing, err := s.List(ctx)
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{Parent: s.Target.Parent()}
	var unchanged []Step
	for _, want := range s.Target.Desired(table) {
		have, ok := existing[want.GetName()]
		delete(existing, want.GetName())
		switch diff := Diff(have, want); {
		case !ok:
			plan.Steps = append(plan.Steps, Step{Op: Create, Job: want})
		case len(diff) > 0:
			plan.Steps = append(plan.Steps, Step{Op: Update, Job: want, Diff: diff})
		default:
			unchanged = append(unchanged, Step{Op: Unchanged, Job: want})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(existing)) {
		plan.Steps = append(plan.Steps, Step{Op: Delete, Job: existing[name]})
	}
	plan.Steps = append(plan.Steps, unchanged...)
	return plan, nil
}

// updateMask is every field a sync manages.
var updateMask = []string{"description", "schedule", "time_zone", "pubsub_target"}

// Apply carries out plan's creates, updates and deletes in order, stopping
// at the first failure.
func (s *Syncer) Apply(ctx context.Context, plan Plan) error {
	for _, st := range plan.Steps {
		var err error
		switch st.Op {
		case Create:
			_, err = s.Client.CreateJob(ctx, &schedulerpb.CreateJobRequest{Parent: plan.Parent, Job: st.Job})
		case Update:
			_, err = s.Client.UpdateJob(ctx, &schedulerpb.UpdateJobRequest{
				Job: st.Job, UpdateMask: &fieldmaskpb.FieldMask{Paths: updateMask},
			})
		case Delete:
			err = s.Client.DeleteJob(ctx, &schedulerpb.DeleteJobRequest{Name: st.Job.GetName()})
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("sync: %s %s: %w", st.Op, st.Job.GetName(), err)
		}
		s.log().Info("job "+string(st.Op)+"d", "job", st.Job.GetName(), "diff", st.Diff)
	}
	return nil
}

// Sync plans, writes the plan to out and, unless dryRun, applies it.
func (s *Syncer) Sync(ctx context.Context, table scheduler.Table, dryRun bool, out io.Writer) (Plan, error) {
	plan, err := s.Plan(ctx, table)
	if err != nil {
		return Plan{}, err
	}
	if err := plan.Write(out); err != nil {
		return plan, err
	}
	if dryRun || plan.InSync() {
		return plan, nil
	}
	return plan, s.Apply(ctx, plan)
}

// Diff lists how have differs from want in the fields a sync manages; nil
// when they match (or have is nil).
func Diff(have, want *schedulerpb.Job) []string {
	if have == nil {
		return nil
	}
	var d []string
	str := func(field, a, b string) {
		if a != b {
			d = append(d, fmt.Sprintf("%s: %q → %q", field, a, b))
		}
	}
	str("schedule", have.GetSchedule(), want.GetSchedule())
	str("time_zone", have.GetTimeZone(), want.GetTimeZone())
	if have.GetDescription() != want.GetDescription() {
		d = append(d, "description changed")
	}
	hp, wp := have.GetPubsubTarget(), want.GetPubsubTarget()
	switch {
	case hp == nil:
		d = append(d, fmt.Sprintf("target: %s → pubsub", targetKind(have)))
	default:
		str("topic", hp.GetTopicName(), wp.GetTopicName())
		if string(hp.GetData()) != string(wp.GetData()) {
			d = append(d, fmt.Sprintf("data: %s → %s", hp.GetData(), wp.GetData()))
		}
		if !maps.Equal(hp.GetAttributes(), wp.GetAttributes()) {
			d = append(d, "attributes: "+attrDiff(hp.GetAttributes(), wp.GetAttributes()))
		}
	}
	return d
}

func targetKind(j *schedulerpb.Job) string {
	switch j.GetTarget().(type) {
	case *schedulerpb.Job_HttpTarget:
		return "http"
	case *schedulerpb.Job_AppEngineHttpTarget:
		return "app engine"
	default:
		return "none"
	}
}

func attrDiff(have, want map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if hv, ok := have[k]; !ok {
			parts = append(parts, fmt.Sprintf("+%s=%q", k, want[k]))
		} else if hv != want[k] {
			parts = append(parts, fmt.Sprintf("%s=%q → %q", k, hv, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[k]; !ok {
			parts = append(parts, "-"+k)
		}
	}
	return strings.Join(parts, ", ")
}

// NewClient connects to Cloud Scheduler with the application default
// credentials, or, when emulatorHost is set, to that plaintext endpoint
// without credentials.
func NewClient(ctx context.Context, emulatorHost string, opts ...option.ClientOption) (*schedulerapi.CloudSchedulerClient, error) {
	if emulatorHost != "" {
		opts = append([]option.ClientOption{
			option.WithEndpoint(emulatorHost), option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		}, opts...)
	}
	c, err := schedulerapi.NewCloudSchedulerClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("sync: cloud scheduler client: %w", err)
	}
	return c, nil
}
