// Package synctest is an in-process fake of the Cloud Scheduler API
// (google.cloud.scheduler.v1.CloudScheduler) on loopback: jobs are kept in
// memory and checked the way the service checks them (names under their
// parent, a schedule, a known time zone, a Pub/Sub topic name, update masks).
package synctest

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/scheduler/apiv1/schedulerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultPageSize is the fake's page size when a ListJobs asks for none:
// small on purpose, so that clients are exercised across pages.
const DefaultPageSize = 2

// Server is the fake.
type Server struct {
	schedulerpb.UnimplementedCloudSchedulerServer
	// Addr is the plaintext gRPC endpoint, 127.0.0.1:port.
	Addr string

	mu    sync.Mutex
	jobs  map[string]*schedulerpb.Job
	calls map[string]int
}

// New starts a fake, stopped at test end.
func New(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: l.Addr().String(), jobs: map[string]*schedulerpb.Job{}, calls: map[string]int{}}
	g := grpc.NewServer()
	schedulerpb.RegisterCloudSchedulerServer(g, s)
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	return s
}

// Put stores job as it is, as if made by someone else.
func (s *Server) Put(job *schedulerpb.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[job.GetName()] = proto.Clone(job).(*schedulerpb.Job)
}

// Jobs returns copies of the stored jobs by name.
func (s *Server) Jobs() map[string]*schedulerpb.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*schedulerpb.Job, len(s.jobs))
	for n, j := range s.jobs {
		out[n] = proto.Clone(j).(*schedulerpb.Job)
	}
	return out
}

// Calls returns how many times method (e.g. "CreateJob") was called.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Writes returns the number of CreateJob, UpdateJob and DeleteJob calls.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls["CreateJob"] + s.calls["UpdateJob"] + s.calls["DeleteJob"]
}

var (
	parentRE = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+$`)
	jobRE    = regexp.MustCompile(`^(projects/[^/]+/locations/[^/]+)/jobs/[A-Za-z0-9_-]{1,500}$`)
	topicRE  = regexp.MustCompile(`^projects/[^/]+/topics/[A-Za-z][A-Za-z0-9._~%+-]{2,254}$`)
)

func (s *Server) called(method string) {
	s.calls[method]++
}

// ListJobs implements schedulerpb.CloudSchedulerServer.
func (s *Server) ListJobs(_ context.Context, req *schedulerpb.ListJobsRequest) (*schedulerpb.ListJobsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("ListJobs")
	if !parentRE.MatchString(req.GetParent()) {
		return nil, status.Errorf(codes.InvalidArgument, "bad parent %q", req.GetParent())
	}
	var names []string
	for n := range s.jobs {
		if strings.HasPrefix(n, req.GetParent()+"/jobs/") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	start := 0
	if tok := req.GetPageToken(); tok != "" {
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i > len(names) {
			return nil, status.Errorf(codes.InvalidArgument, "bad page token %q", tok)
		}
		start = i
	}
	size := int(req.GetPageSize())
	if size <= 0 {
		size = DefaultPageSize
	}
	end := min(start+size, len(names))
	resp := &schedulerpb.ListJobsResponse{}
	for _, n := range names[start:end] {
		resp.Jobs = append(resp.Jobs, proto.Clone(s.jobs[n]).(*schedulerpb.Job))
	}
	if end < len(names) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

// GetJob implements schedulerpb.CloudSchedulerServer.
func (s *Server) GetJob(_ context.Context, req *schedulerpb.GetJobRequest) (*schedulerpb.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("GetJob")
	j, ok := s.jobs[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "job %s not found", req.GetName())
	}
	return proto.Clone(j).(*schedulerpb.Job), nil
}

// CreateJob implements schedulerpb.CloudSchedulerServer.
func (s *Server) CreateJob(_ context.Context, req *schedulerpb.CreateJobRequest) (*schedulerpb.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("CreateJob")
	job := proto.Clone(req.GetJob()).(*schedulerpb.Job)
	m := jobRE.FindStringSubmatch(job.GetName())
	if !parentRE.MatchString(req.GetParent()) || m == nil || m[1] != req.GetParent() {
		return nil, status.Errorf(codes.InvalidArgument, "job name %q not under parent %q", job.GetName(), req.GetParent())
	}
	if _, ok := s.jobs[job.GetName()]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "job %s already exists", job.GetName())
	}
	if job.TimeZone == "" {
		job.TimeZone = "Etc/UTC"
	}
	if err := validate(job); err != nil {
		return nil, err
	}
	job.State = schedulerpb.Job_ENABLED
	job.UserUpdateTime = timestamppb.New(time.Now())
	s.jobs[job.GetName()] = job
	return proto.Clone(job).(*schedulerpb.Job), nil
}

// UpdateJob implements schedulerpb.CloudSchedulerServer.
func (s *Server) UpdateJob(_ context.Context, req *schedulerpb.UpdateJobRequest) (*schedulerpb.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("UpdateJob")
	in := req.GetJob()
	cur, ok := s.jobs[in.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "job %s not found", in.GetName())
	}
	next := proto.Clone(cur).(*schedulerpb.Job)
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		paths = []string{"description", "schedule", "time_zone", "target"}
	}
	for _, p := range paths {
		switch p {
		case "description":
			next.Description = in.GetDescription()
		case "schedule":
			next.Schedule = in.GetSchedule()
		case "time_zone":
			next.TimeZone = in.GetTimeZone()
		case "pubsub_target", "http_target", "app_engine_http_target", "target":
			next.Target = proto.Clone(in).(*schedulerpb.Job).Target
		case "retry_config":
			next.RetryConfig = in.GetRetryConfig()
		case "attempt_deadline":
			next.AttemptDeadline = in.GetAttemptDeadline()
		default:
			return nil, status.Errorf(codes.InvalidArgument, "update mask: unknown field %q", p)
		}
	}
	if err := validate(next); err != nil {
		return nil, err
	}
	next.UserUpdateTime = timestamppb.New(time.Now())
	s.jobs[next.GetName()] = next
	return proto.Clone(next).(*schedulerpb.Job), nil
}

// DeleteJob implements schedulerpb.CloudSchedulerServer.
func (s *Server) DeleteJob(_ context.Context, req *schedulerpb.DeleteJobRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.called("DeleteJob")
	if _, ok := s.jobs[req.GetName()]; !ok {
		return nil, status.Errorf(codes.NotFound, "job %s not found", req.GetName())
	}
	delete(s.jobs, req.GetName())
	return &emptypb.Empty{}, nil
}

func validate(job *schedulerpb.Job) error {
	if len(strings.Fields(job.GetSchedule())) != 5 {
		return status.Errorf(codes.InvalidArgument, "schedule %q: want 5 fields", job.GetSchedule())
	}
	if _, err := time.LoadLocation(job.GetTimeZone()); err != nil || job.GetTimeZone() == "Local" {
		return status.Errorf(codes.InvalidArgument, "time zone %q: %v", job.GetTimeZone(), err)
	}
	if len(job.GetDescription()) > 500 {
		return status.Errorf(codes.InvalidArgument, "description longer than 500 characters")
	}
	switch t := job.GetTarget().(type) {
	case *schedulerpb.Job_PubsubTarget:
		if !topicRE.MatchString(t.PubsubTarget.GetTopicName()) {
			return status.Errorf(codes.InvalidArgument, "topic name %q", t.PubsubTarget.GetTopicName())
		}
		if len(t.PubsubTarget.GetData()) == 0 && len(t.PubsubTarget.GetAttributes()) == 0 {
			return status.Errorf(codes.InvalidArgument, "pubsub target needs data or attributes")
		}
	case *schedulerpb.Job_HttpTarget:
		if t.HttpTarget.GetUri() == "" {
			return status.Errorf(codes.InvalidArgument, "http target needs a uri")
		}
	case nil:
		return status.Errorf(codes.InvalidArgument, "job has no target")
	default:
		return status.Errorf(codes.InvalidArgument, "unsupported target %s", fmt.Sprintf("%T", t))
	}
	return nil
}
