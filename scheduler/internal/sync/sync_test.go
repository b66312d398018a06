package sync_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/protobuf/proto"

	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/scheduler"
	jobsync "github.com/cmmsflow/cmmsflow/scheduler/internal/sync"
	"github.com/cmmsflow/cmmsflow/scheduler/internal/sync/synctest"
)

var target = jobsync.Target{Project: "proj-1", Location: "europe-west1"}

func setup(t *testing.T) (*synctest.Server, *jobsync.Syncer, scheduler.Table) {
	t.Helper()
	fake := synctest.New(t)
	client, err := jobsync.NewClient(context.Background(), fake.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	table, err := scheduler.Load()
	if err != nil {
		t.Fatal(err)
	}
	return fake, &jobsync.Syncer{Client: client, Target: target}, table
}

func sync(t *testing.T, s *jobsync.Syncer, table scheduler.Table, dryRun bool) (jobsync.Plan, string) {
	t.Helper()
	var out bytes.Buffer
	plan, err := s.Sync(context.Background(), table, dryRun, &out)
	if err != nil {
		t.Fatalf("Sync: %v\n%s", err, &out)
	}
	return plan, out.String()
}

// checkMatches asserts the fake holds exactly one job per table entry, each
// publishing that pipeline's kick, plus the given foreign jobs.
func checkMatches(t *testing.T, fake *synctest.Server, table scheduler.Table, foreign ...string) {
	t.Helper()
	jobs := fake.Jobs()
	if len(jobs) != len(table.Entries)+len(foreign) {
		t.Errorf("%d jobs, want %d", len(jobs), len(table.Entries)+len(foreign))
	}
	for _, e := range table.Entries {
		name := "projects/proj-1/locations/europe-west1/jobs/cmmsflow-" + e.Pipeline
		j, ok := jobs[name]
		if !ok {
			t.Errorf("no job %s", name)
			continue
		}
		kick := scheduler.KickMessage(e.Pipeline)
		ps := j.GetPubsubTarget()
		if j.GetSchedule() != e.Schedule || j.GetTimeZone() != table.TimeZone || j.GetDescription() != e.Description ||
			ps.GetTopicName() != "projects/proj-1/topics/"+events.TopicOf(events.PipelineTriggered) ||
			!bytes.Equal(ps.GetData(), kick.Data) || ps.GetAttributes()[eventing.AttrPipeline] != e.Pipeline ||
			len(ps.GetAttributes()) != len(kick.Attributes) {
			t.Errorf("job %s = %v", name, j)
		}
	}
	for _, f := range foreign {
		if _, ok := jobs[f]; !ok {
			t.Errorf("foreign job %s was removed", f)
		}
	}
}

func TestCreatesAllOnEmpty(t *testing.T) {
	fake, s, table := setup(t)
	plan, out := sync(t, s, table, false)
	if plan.Count(jobsync.Create) != len(table.Entries) || plan.Count(jobsync.Update)+plan.Count(jobsync.Delete) != 0 {
		t.Fatalf("plan:\n%s", out)
	}
	if got := fake.Calls("CreateJob"); got != len(table.Entries) {
		t.Errorf("CreateJob calls = %d", got)
	}
	checkMatches(t, fake, table)
	for _, e := range table.Entries {
		if !strings.Contains(out, "create    cmmsflow-"+e.Pipeline+"  \""+e.Schedule+"\" UTC → projects/proj-1/topics/pipeline-triggered") {
			t.Errorf("plan lacks the create of %s:\n%s", e.Pipeline, out)
		}
	}
}

func TestNoOpWhenInSync(t *testing.T) {
	fake, s, table := setup(t)
	sync(t, s, table, false)
	writes := fake.Writes()
	plan, out := sync(t, s, table, false)
	if !plan.InSync() || plan.Count(jobsync.Unchanged) != len(table.Entries) {
		t.Fatalf("second sync not a no-op:\n%s", out)
	}
	if fake.Writes() != writes {
		t.Errorf("in-sync run wrote %d times", fake.Writes()-writes)
	}
	if !strings.Contains(out, "0 to create, 0 to update, 0 to delete, 3 unchanged") {
		t.Errorf("summary:\n%s", out)
	}
}

// A job that drifted (schedule, time zone, data, attributes, target kind)
// is updated back; a paused job stays paused.
func TestUpdatesChangedJobs(t *testing.T) {
	fake, s, table := setup(t)
	sync(t, s, table, false)
	jobs := fake.Jobs()
	name := func(p string) string { return target.JobName(p) }

	j := jobs[name("etl_ml_training")]
	j.Schedule = "0 3 * * 0"
	j.TimeZone = "Europe/Berlin"
	j.State = schedulerpb.Job_PAUSED
	fake.Put(j)

	j = jobs[name("preventive_maintenance")]
	j.GetPubsubTarget().Data = []byte(`{"source":"manual"}`)
	j.GetPubsubTarget().Attributes["ce-source"] = "//elsewhere"
	j.GetPubsubTarget().Attributes["extra"] = "x"
	fake.Put(j)

	j = jobs[name("weekly_kpi_report")]
	j.Target = &schedulerpb.Job_HttpTarget{HttpTarget: &schedulerpb.HttpTarget{Uri: "https://example.com/kick"}}
	j.Description = "old"
	fake.Put(j)

	plan, out := sync(t, s, table, false)
	if plan.Count(jobsync.Update) != 3 || plan.Count(jobsync.Create)+plan.Count(jobsync.Delete) != 0 {
		t.Fatalf("plan:\n%s", out)
	}
	for _, want := range []string{
		`update    cmmsflow-etl_ml_training  schedule: "0 3 * * 0" → "0 2 * * 0"; time_zone: "Europe/Berlin" → "UTC"`,
		`update    cmmsflow-preventive_maintenance  data: {"source":"manual"} → {"source":"scheduled"}; attributes: ce-source="//elsewhere" → "//cmmsflow/scheduler", -extra`,
		`update    cmmsflow-weekly_kpi_report  description changed; target: http → pubsub`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	checkMatches(t, fake, table)
	if st := fake.Jobs()[name("etl_ml_training")].GetState(); st != schedulerpb.Job_PAUSED {
		t.Errorf("paused job's state became %v", st)
	}
	if p, _ := sync(t, s, table, false); !p.InSync() {
		t.Error("not in sync after the update")
	}
}

// CRON_TIME_ZONE moves every job to the override zone.
func TestTimeZoneOverride(t *testing.T) {
	fake, s, table := setup(t)
	sync(t, s, table, false)
	berlin, err := table.InZone("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	plan, out := sync(t, s, berlin, false)
	if plan.Count(jobsync.Update) != len(table.Entries) {
		t.Fatalf("plan:\n%s", out)
	}
	checkMatches(t, fake, berlin)
}

// Jobs under the prefix that the table does not name are deleted; jobs of
// other owners — other prefixes, other locations — are left alone.
func TestDeletesStaleLeavesForeign(t *testing.T) {
	fake, s, table := setup(t)
	kick := scheduler.KickMessage("etl_ml_training")
	mk := func(name string) *schedulerpb.Job {
		return &schedulerpb.Job{Name: name, Schedule: "*/5 * * * *", TimeZone: "UTC",
			Target: &schedulerpb.Job_PubsubTarget{PubsubTarget: &schedulerpb.PubsubTarget{
				TopicName: "projects/proj-1/topics/pipeline-triggered", Data: kick.Data}}}
	}
	stale := target.Parent() + "/jobs/cmmsflow-retired_pipeline"
	foreign := []string{
		target.Parent() + "/jobs/billing-export",
		target.Parent() + "/jobs/cmmsflowx-other",      // not the prefix "cmmsflow-"
		target.Parent() + "/jobs/cmmsflow-Manual-Test", // prefix, but no pipeline id after it
		"projects/proj-1/locations/us-central1/jobs/cmmsflow-etl_ml_training",
	}
	fake.Put(mk(stale))
	for _, f := range foreign {
		fake.Put(mk(f))
	}
	plan, out := sync(t, s, table, false)
	if plan.Count(jobsync.Delete) != 1 || plan.Count(jobsync.Create) != len(table.Entries) {
		t.Fatalf("plan:\n%s", out)
	}
	if !strings.Contains(out, `delete    cmmsflow-retired_pipeline  "*/5 * * * *" UTC`) {
		t.Errorf("plan lacks the delete:\n%s", out)
	}
	if _, ok := fake.Jobs()[stale]; ok {
		t.Error("stale job kept")
	}
	checkMatches(t, fake, table, foreign...)
}

// A dry run prints the plan and changes nothing.
func TestDryRun(t *testing.T) {
	fake, s, table := setup(t)
	stale := proto.Clone(s.Target.Desired(table)[0]).(*schedulerpb.Job)
	stale.Name = target.Parent() + "/jobs/cmmsflow-gone"
	fake.Put(stale)
	plan, out := sync(t, s, table, true)
	if plan.Count(jobsync.Create) != len(table.Entries) || plan.Count(jobsync.Delete) != 1 {
		t.Fatalf("plan:\n%s", out)
	}
	if fake.Writes() != 0 || len(fake.Jobs()) != 1 {
		t.Fatalf("dry run wrote: %d writes, %d jobs", fake.Writes(), len(fake.Jobs()))
	}
	if !strings.Contains(out, "plan for projects/proj-1/locations/europe-west1: 3 to create, 0 to update, 1 to delete, 0 unchanged") {
		t.Errorf("summary:\n%s", out)
	}
}

// Another prefix manages a separate set of jobs (e.g. a staging deployment
// in the same project and location).
func TestPrefix(t *testing.T) {
	fake, s, table := setup(t)
	sync(t, s, table, false)
	staging := *s
	staging.Target.Prefix = "cmmsflow-staging-"
	plan, out := sync(t, &staging, table, false)
	if plan.Count(jobsync.Create) != len(table.Entries) || plan.Count(jobsync.Delete) != 0 {
		t.Fatalf("plan:\n%s", out)
	}
	if len(fake.Jobs()) != 2*len(table.Entries) {
		t.Errorf("%d jobs", len(fake.Jobs()))
	}
	// cmmsflow- does not claim cmmsflow-staging-'s jobs.
	if plan, out := sync(t, s, table, false); !plan.InSync() {
		t.Errorf("default prefix after staging sync:\n%s", out)
	}
	if len(fake.Jobs()) != 2*len(table.Entries) {
		t.Errorf("%d jobs", len(fake.Jobs()))
	}
}

func TestInvalidTarget(t *testing.T) {
	_, s, table := setup(t)
	for name, tgt := range map[string]jobsync.Target{
		"no project":  {Location: "europe-west1"},
		"no location": {Project: "p"},
		"bad prefix":  {Project: "p", Location: "l", Prefix: "cmms flow/"},
	} {
		bad := *s
		bad.Target = tgt
		if _, err := bad.Plan(context.Background(), table); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
