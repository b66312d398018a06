// Package dataproctest is an in-process fake of the Dataproc v1 gRPC API for
// tests: the BatchController, ClusterController and JobController services
// and the google.longrunning Operations service their clients poll, on a
// 127.0.0.1 listener. It keeps resources in memory, validates ids and names
// the way Dataproc does, records every mutating request, and can be told
// (Behavior) to fail jobs, hang them, or fail the create/delete operations.
//
// Time does not pass on its own: a resource advances one step each time it
// is read (Get of the resource, or Get/Wait of its operation), so tests are
// deterministic whatever the poll interval.
package dataproctest

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/dataproc/v2/apiv1/dataprocpb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/cmmsflow/cmmsflow/libs/grpcfake"
	"github.com/google/uuid"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Behavior steers the fake. It is read at every step, so a test may change
// it while an engine waits (SetBehavior).
type Behavior struct {
	// ClusterCreateReads is how many reads a new cluster stays CREATING.
	ClusterCreateReads int
	// RunReads is how many reads a job or batch stays RUNNING (after one
	// read as PENDING) before it ends.
	RunReads int
	// Hang keeps jobs and batches RUNNING for ever.
	Hang bool
	// FailJob, if set, ends jobs (ERROR) and batches (FAILED) with this
	// message instead of succeeding.
	FailJob string
	// FailClusterCreate, if set, fails the create operation with this
	// message and leaves the cluster in ERROR, as Dataproc does.
	FailClusterCreate string
	// DeleteReads is how many reads a deleting cluster (or its delete
	// operation) stays DELETING before it is gone.
	DeleteReads int
	// FailDeleteOp, if set, fails the delete operation with this message;
	// the cluster stays (in ERROR).
	FailDeleteOp string
	// DeleteError, if set, is returned by the DeleteCluster call itself.
	DeleteError error
}

// Server is a running fake.
type Server struct {
	Addr string // host:port on 127.0.0.1

	grpc *grpc.Server

	mu       sync.Mutex
	behavior Behavior
	batches  map[string]*batch   // by full name
	clusters map[string]*cluster // by project/region/name
	jobs     map[string]*job     // by project/region/id
	ops      map[string]*op      // by name

	createBatch   []*dataprocpb.CreateBatchRequest
	createCluster []*dataprocpb.CreateClusterRequest
	deleteCluster []*dataprocpb.DeleteClusterRequest
	submitJob     []*dataprocpb.SubmitJobRequest
	cancelJob     []*dataprocpb.CancelJobRequest
	cancelOp      []string
}

type batch struct {
	pb    *dataprocpb.Batch
	op    *op
	reads int
}

type cluster struct {
	pb       *dataprocpb.Cluster
	key      string
	createOp *op
	deleteOp *op
	reads    int // while CREATING or DELETING
}

type job struct {
	pb    *dataprocpb.Job
	reads int
}

type op struct {
	pb      *longrunningpb.Operation
	advance func() // one step of the resource the operation is about
}

// Start starts a fake on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a fake on a free 127.0.0.1 port.
func NewServer() (*Server, error) {
	s := &Server{
		grpc:     grpc.NewServer(),
		batches:  map[string]*batch{},
		clusters: map[string]*cluster{},
		jobs:     map[string]*job{},
		ops:      map[string]*op{},
	}
	dataprocpb.RegisterBatchControllerServer(s.grpc, batchServer{s: s})
	dataprocpb.RegisterClusterControllerServer(s.grpc, clusterServer{s: s})
	dataprocpb.RegisterJobControllerServer(s.grpc, jobServer{s: s})
	longrunningpb.RegisterOperationsServer(s.grpc, opsServer{s: s})
	addr, err := grpcfake.Serve(s.grpc)
	if err != nil {
		return nil, fmt.Errorf("dataproctest: %w", err)
	}
	s.Addr = addr
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.grpc.Stop() }

// ClientOptions point a Dataproc client at the fake: its address, no
// credentials, plaintext gRPC.
func (s *Server) ClientOptions() []option.ClientOption { return grpcfake.ClientOptions(s.Addr) }

// SetBehavior replaces the fake's behaviour.
func (s *Server) SetBehavior(b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behavior = b
}

// sortedClones returns clones of pb(v) for each entry of m that keep accepts
// (all of them when keep is nil), sorted by less. The caller holds s.mu.
func sortedClones[V any, M proto.Message](m map[string]V, keep func(k string, v V) bool, pb func(V) M, less func(a, b M) bool) []M {
	var out []M
	for k, v := range m {
		if keep == nil || keep(k, v) {
			out = append(out, proto.Clone(pb(v)).(M))
		}
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i], out[j]) })
	return out
}

func batchPB(b *batch) *dataprocpb.Batch       { return b.pb }
func clusterPB(c *cluster) *dataprocpb.Cluster { return c.pb }
func jobPB(j *job) *dataprocpb.Job             { return j.pb }
func opPB(o *op) *longrunningpb.Operation      { return o.pb }

func byBatchName(a, b *dataprocpb.Batch) bool     { return a.Name < b.Name }
func byClusterName(a, b *dataprocpb.Cluster) bool { return a.ClusterName < b.ClusterName }
func byJobID(a, b *dataprocpb.Job) bool           { return a.Reference.JobId < b.Reference.JobId }
func byOpName(a, b *longrunningpb.Operation) bool { return a.Name < b.Name }

// CreateBatchRequests returns the CreateBatch requests received, in order.
func (s *Server) CreateBatchRequests() []*dataprocpb.CreateBatchRequest {
	return grpcfake.Clones(&s.mu, &s.createBatch)
}

// CreateClusterRequests returns the CreateCluster requests received.
func (s *Server) CreateClusterRequests() []*dataprocpb.CreateClusterRequest {
	return grpcfake.Clones(&s.mu, &s.createCluster)
}

// DeleteClusterRequests returns the DeleteCluster requests received.
func (s *Server) DeleteClusterRequests() []*dataprocpb.DeleteClusterRequest {
	return grpcfake.Clones(&s.mu, &s.deleteCluster)
}

// SubmitJobRequests returns the SubmitJob requests received.
func (s *Server) SubmitJobRequests() []*dataprocpb.SubmitJobRequest {
	return grpcfake.Clones(&s.mu, &s.submitJob)
}

// CancelJobRequests returns the CancelJob requests received.
func (s *Server) CancelJobRequests() []*dataprocpb.CancelJobRequest {
	return grpcfake.Clones(&s.mu, &s.cancelJob)
}

// CancelledOperations returns the names passed to CancelOperation.
func (s *Server) CancelledOperations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cancelOp...)
}

// Clusters returns the clusters that exist (in any state, DELETING
// included), sorted by name.
func (s *Server) Clusters() []*dataprocpb.Cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedClones(s.clusters, nil, clusterPB, byClusterName)
}

// Jobs returns every job, sorted by id.
func (s *Server) Jobs() []*dataprocpb.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedClones(s.jobs, nil, jobPB, byJobID)
}

// Batches returns every batch, sorted by name.
func (s *Server) Batches() []*dataprocpb.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedClones(s.batches, nil, batchPB, byBatchName)
}

// ---- validation, as Dataproc documents it

var (
	batchIDRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{2,61}[a-z0-9]$`)
	clusterNameRe = regexp.MustCompile(`^[a-z](?:[-a-z0-9]{0,49}[a-z0-9])?$`)
	jobIDRe       = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,100}$`)
	labelKeyRe    = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelValueRe  = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
	locParentRe   = regexp.MustCompile(`^projects/([^/]+)/locations/([^/]+)$`)
)

// lookup returns m[k], or NotFound for the what named name.
func lookup[V any](m map[string]V, k, what, name string) (V, error) {
	v, ok := m[k]
	if !ok {
		return v, status.Errorf(codes.NotFound, "%s %s not found", what, name)
	}
	return v, nil
}

// stepped advances m[k] by one read and returns a clone of it: NotFound
// when it is missing, or when the step removed it. It takes s.mu.
func stepped[V any, M proto.Message](s *Server, m map[string]V, k, what, name string, step func(V), pb func(V) M) (M, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := lookup(m, k, what, name)
	if err == nil {
		step(v)
		_, err = lookup(m, k, what, name)
	}
	if err != nil {
		var none M
		return none, err
	}
	return proto.Clone(pb(v)).(M), nil
}

// removeEnded deletes m[k] once it has ended: NotFound when it is missing,
// FailedPrecondition while it has not ended. It takes s.mu.
func removeEnded[V any](s *Server, m map[string]V, k, what, name string, state func(V) (st fmt.Stringer, ended bool)) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := lookup(m, k, what, name)
	if err != nil {
		return nil, err
	}
	if st, ended := state(v); !ended {
		return nil, status.Errorf(codes.FailedPrecondition, "%s %s is %s", what, name, st)
	}
	delete(m, k)
	return &emptypb.Empty{}, nil
}

func batchState(b *batch) (fmt.Stringer, bool) { return b.pb.State, batchEnded(b.pb.State) }
func jobState(j *job) (fmt.Stringer, bool) {
	return j.pb.Status.GetState(), jobEnded(j.pb.Status.GetState())
}

func invalid(format string, a ...any) error {
	return status.Errorf(codes.InvalidArgument, format, a...)
}

func checkLabels(labels map[string]string) error {
	for k, v := range labels {
		if !labelKeyRe.MatchString(k) || !labelValueRe.MatchString(v) {
			return invalid("invalid label %q=%q", k, v)
		}
	}
	return nil
}

func checkGCS(what, uri string) error {
	if !strings.HasPrefix(uri, "gs://") || len(uri) <= len("gs://") {
		return invalid("%s %q is not a gs:// URI", what, uri)
	}
	return nil
}

// ---- operations

func (s *Server) newOp(region string, meta proto.Message, advance func()) *op {
	o := &op{pb: &longrunningpb.Operation{
		Name: "projects/fake/regions/" + region + "/operations/" + uuid.NewString(),
	}, advance: advance}
	if meta != nil {
		o.pb.Metadata, _ = anypb.New(meta)
	}
	s.ops[o.pb.Name] = o
	return o
}

func (o *op) succeed(resp proto.Message) {
	o.pb.Done = true
	if resp == nil {
		resp = &emptypb.Empty{}
	}
	a, _ := anypb.New(resp)
	o.pb.Result = &longrunningpb.Operation_Response{Response: a}
}

func (o *op) failWith(c codes.Code, msg string) {
	o.pb.Done = true
	o.pb.Result = &longrunningpb.Operation_Error{Error: status.New(c, msg).Proto()}
}

func now() *timestamppb.Timestamp { return timestamppb.Now() }

type opsServer struct {
	longrunningpb.UnimplementedOperationsServer
	s *Server
}

func (o opsServer) get(name string) (*longrunningpb.Operation, error) {
	return stepped(o.s, o.s.ops, name, "operation", name, stepOp, opPB)
}

func stepOp(op *op) {
	if !op.pb.Done && op.advance != nil {
		op.advance()
	}
}

func (o opsServer) GetOperation(_ context.Context, r *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	return o.get(r.GetName())
}

func (o opsServer) WaitOperation(_ context.Context, r *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	return o.get(r.GetName())
}

func (o opsServer) ListOperations(_ context.Context, r *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	inName := func(name string, _ *op) bool { return strings.HasPrefix(name, r.GetName()) }
	return &longrunningpb.ListOperationsResponse{Operations: sortedClones(s.ops, inName, opPB, byOpName)}, nil
}

func (o opsServer) DeleteOperation(_ context.Context, r *longrunningpb.DeleteOperationRequest) (*emptypb.Empty, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ops[r.GetName()]; !ok {
		return nil, status.Errorf(codes.NotFound, "operation %s not found", r.GetName())
	}
	delete(s.ops, r.GetName())
	return &emptypb.Empty{}, nil
}

// CancelOperation cancels a batch through its operation (the way Dataproc
// cancels batches); other operations cannot be cancelled here.
func (o opsServer) CancelOperation(_ context.Context, r *longrunningpb.CancelOperationRequest) (*emptypb.Empty, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancelOp = append(s.cancelOp, r.GetName())
	op, err := lookup(s.ops, r.GetName(), "operation", r.GetName())
	if err != nil {
		return nil, err
	}
	for _, b := range s.batches {
		if b.op == op {
			if !batchEnded(b.pb.State) {
				b.setState(dataprocpb.Batch_CANCELLED, "cancelled by request")
			}
			return &emptypb.Empty{}, nil
		}
	}
	return nil, status.Errorf(codes.FailedPrecondition, "operation %s cannot be cancelled", r.GetName())
}

// ---- batches

type batchServer struct {
	dataprocpb.UnimplementedBatchControllerServer
	s *Server
}

func (b *batch) setState(st dataprocpb.Batch_State, msg string) {
	if b.pb.State != dataprocpb.Batch_STATE_UNSPECIFIED {
		b.pb.StateHistory = append(b.pb.StateHistory, &dataprocpb.Batch_StateHistory{
			State: b.pb.State, StateMessage: b.pb.StateMessage, StateStartTime: b.pb.StateTime})
	}
	b.pb.State, b.pb.StateMessage, b.pb.StateTime = st, msg, now()
	switch st {
	case dataprocpb.Batch_SUCCEEDED:
		b.op.succeed(b.pb)
	case dataprocpb.Batch_FAILED:
		b.op.failWith(codes.Internal, msg)
	case dataprocpb.Batch_CANCELLED:
		b.op.failWith(codes.Canceled, msg)
	}
}

// step advances a batch by one read: PENDING → RUNNING → (RunReads reads) →
// SUCCEEDED or FAILED.
func (s *Server) stepBatch(b *batch) {
	stepRun(s, batchRun, b.pb.State, batchEnded(b.pb.State), &b.reads, b.setState)
}

// runStates are the states a batch or a job runs through.
type runStates[S comparable] struct{ pending, running, failed, succeeded, cancelled S }

// ended reports whether st is a final state.
func (r runStates[S]) ended(st S) bool {
	return st == r.succeeded || st == r.failed || st == r.cancelled
}

func batchEnded(st dataprocpb.Batch_State) bool   { return batchRun.ended(st) }
func jobEnded(st dataprocpb.JobStatus_State) bool { return jobRun.ended(st) }

var (
	batchRun = runStates[dataprocpb.Batch_State]{dataprocpb.Batch_PENDING, dataprocpb.Batch_RUNNING,
		dataprocpb.Batch_FAILED, dataprocpb.Batch_SUCCEEDED, dataprocpb.Batch_CANCELLED}
	jobRun = runStates[dataprocpb.JobStatus_State]{dataprocpb.JobStatus_PENDING, dataprocpb.JobStatus_RUNNING,
		dataprocpb.JobStatus_ERROR, dataprocpb.JobStatus_DONE, dataprocpb.JobStatus_CANCELLED}
)

// stepRun advances a batch or a job, in state cur, by one read: pending →
// running → (RunReads reads) → succeeded, or failed with Behavior.FailJob.
func stepRun[S comparable](s *Server, st runStates[S], cur S, ended bool, reads *int, set func(S, string)) {
	if ended {
		return
	}
	*reads++
	switch {
	case cur == st.pending:
		set(st.running, "")
	case s.behavior.Hang || *reads <= s.behavior.RunReads+1:
	case s.behavior.FailJob != "":
		set(st.failed, s.behavior.FailJob)
	default:
		set(st.succeeded, "")
	}
}

func (bs batchServer) CreateBatch(_ context.Context, r *dataprocpb.CreateBatchRequest) (*longrunningpb.Operation, error) {
	s := bs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	grpcfake.Record(&s.createBatch, r)
	m := locParentRe.FindStringSubmatch(r.GetParent())
	if m == nil {
		return nil, invalid("parent %q: want projects/*/locations/*", r.GetParent())
	}
	if !batchIDRe.MatchString(r.GetBatchId()) {
		return nil, invalid("batch id %q does not match %s", r.GetBatchId(), batchIDRe)
	}
	py := r.GetBatch().GetPysparkBatch()
	if py == nil {
		return nil, invalid("only PySpark batches are faked")
	}
	if err := checkGCS("main_python_file_uri", py.GetMainPythonFileUri()); err != nil {
		return nil, err
	}
	if err := checkLabels(r.GetBatch().GetLabels()); err != nil {
		return nil, err
	}
	name := r.GetParent() + "/batches/" + r.GetBatchId()
	if _, ok := s.batches[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "batch %s already exists", name)
	}
	pb := proto.Clone(r.GetBatch()).(*dataprocpb.Batch)
	pb.Name, pb.Uuid, pb.CreateTime, pb.Creator = name, uuid.NewString(), now(), "fake@example.com"
	b := &batch{pb: pb}
	b.op = s.newOp(m[2], &dataprocpb.BatchOperationMetadata{Batch: name, BatchUuid: pb.Uuid, CreateTime: pb.CreateTime,
		OperationType: dataprocpb.BatchOperationMetadata_BATCH, Labels: pb.Labels}, func() { s.stepBatch(b) })
	pb.Operation = b.op.pb.Name
	b.setState(dataprocpb.Batch_PENDING, "")
	s.batches[name] = b
	return proto.Clone(b.op.pb).(*longrunningpb.Operation), nil
}

func (bs batchServer) GetBatch(_ context.Context, r *dataprocpb.GetBatchRequest) (*dataprocpb.Batch, error) {
	return stepped(bs.s, bs.s.batches, r.GetName(), "batch", r.GetName(), bs.s.stepBatch, batchPB)
}

func (bs batchServer) ListBatches(_ context.Context, r *dataprocpb.ListBatchesRequest) (*dataprocpb.ListBatchesResponse, error) {
	s := bs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	inParent := func(name string, _ *batch) bool { return strings.HasPrefix(name, r.GetParent()+"/batches/") }
	return &dataprocpb.ListBatchesResponse{Batches: sortedClones(s.batches, inParent, batchPB, byBatchName)}, nil
}

func (bs batchServer) DeleteBatch(_ context.Context, r *dataprocpb.DeleteBatchRequest) (*emptypb.Empty, error) {
	return removeEnded(bs.s, bs.s.batches, r.GetName(), "batch", r.GetName(), batchState)
}

// ---- clusters

type clusterServer struct {
	dataprocpb.UnimplementedClusterControllerServer
	s *Server
}

func key(project, region, name string) string { return project + "/" + region + "/" + name }

func (c *cluster) setState(st dataprocpb.ClusterStatus_State, detail string) {
	if c.pb.Status != nil {
		c.pb.StatusHistory = append(c.pb.StatusHistory, c.pb.Status)
	}
	c.pb.Status = &dataprocpb.ClusterStatus{State: st, Detail: detail, StateStartTime: now()}
	c.reads = 0
}

// stepCluster advances a cluster by one read: CREATING → RUNNING (or ERROR),
// DELETING → gone (or ERROR).
func (s *Server) stepCluster(c *cluster) {
	switch c.pb.Status.GetState() {
	case dataprocpb.ClusterStatus_CREATING:
		c.reads++
		if c.reads <= s.behavior.ClusterCreateReads {
			return
		}
		if msg := s.behavior.FailClusterCreate; msg != "" {
			c.setState(dataprocpb.ClusterStatus_ERROR, msg)
			c.createOp.failWith(codes.ResourceExhausted, msg)
			return
		}
		c.setState(dataprocpb.ClusterStatus_RUNNING, "")
		c.createOp.succeed(c.pb)
	case dataprocpb.ClusterStatus_DELETING:
		c.reads++
		if c.reads <= s.behavior.DeleteReads {
			return
		}
		if msg := s.behavior.FailDeleteOp; msg != "" {
			c.setState(dataprocpb.ClusterStatus_ERROR, msg)
			c.deleteOp.failWith(codes.Internal, msg)
			return
		}
		delete(s.clusters, c.key)
		c.deleteOp.succeed(nil)
	}
}

func (cs clusterServer) CreateCluster(_ context.Context, r *dataprocpb.CreateClusterRequest) (*longrunningpb.Operation, error) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	grpcfake.Record(&s.createCluster, r)
	name := r.GetCluster().GetClusterName()
	switch {
	case r.GetProjectId() == "" || r.GetRegion() == "":
		return nil, invalid("project_id and region are required")
	case r.GetCluster().GetProjectId() != r.GetProjectId():
		return nil, invalid("cluster project %q differs from request project %q", r.GetCluster().GetProjectId(), r.GetProjectId())
	case !clusterNameRe.MatchString(name):
		return nil, invalid("cluster name %q does not match %s", name, clusterNameRe)
	}
	if err := checkLabels(r.GetCluster().GetLabels()); err != nil {
		return nil, err
	}
	k := key(r.GetProjectId(), r.GetRegion(), name)
	if _, ok := s.clusters[k]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "cluster %s already exists", k)
	}
	pb := proto.Clone(r.GetCluster()).(*dataprocpb.Cluster)
	pb.ClusterUuid = uuid.NewString()
	c := &cluster{pb: pb, key: k}
	c.setState(dataprocpb.ClusterStatus_CREATING, "")
	c.createOp = s.newOp(r.GetRegion(), &dataprocpb.ClusterOperationMetadata{ClusterName: name, ClusterUuid: pb.ClusterUuid,
		OperationType: "CREATE", Labels: pb.Labels}, func() { s.stepCluster(c) })
	s.clusters[k] = c
	return proto.Clone(c.createOp.pb).(*longrunningpb.Operation), nil
}

func (cs clusterServer) GetCluster(_ context.Context, r *dataprocpb.GetClusterRequest) (*dataprocpb.Cluster, error) {
	k := key(r.GetProjectId(), r.GetRegion(), r.GetClusterName())
	return stepped(cs.s, cs.s.clusters, k, "cluster", r.GetClusterName(), cs.s.stepCluster, clusterPB)
}

func (cs clusterServer) ListClusters(_ context.Context, r *dataprocpb.ListClustersRequest) (*dataprocpb.ListClustersResponse, error) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	inRegion := func(k string, _ *cluster) bool { return strings.HasPrefix(k, key(r.GetProjectId(), r.GetRegion(), "")) }
	return &dataprocpb.ListClustersResponse{Clusters: sortedClones(s.clusters, inRegion, clusterPB, byClusterName)}, nil
}

// DeleteCluster starts deleting; jobs still active on the cluster fail, as
// they do on Dataproc.
func (cs clusterServer) DeleteCluster(_ context.Context, r *dataprocpb.DeleteClusterRequest) (*longrunningpb.Operation, error) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	grpcfake.Record(&s.deleteCluster, r)
	if s.behavior.DeleteError != nil {
		return nil, s.behavior.DeleteError
	}
	c, ok := s.clusters[key(r.GetProjectId(), r.GetRegion(), r.GetClusterName())]
	switch {
	case !ok:
		return nil, status.Errorf(codes.NotFound, "cluster %s not found", r.GetClusterName())
	case r.GetClusterUuid() != "" && r.GetClusterUuid() != c.pb.ClusterUuid:
		return nil, status.Errorf(codes.NotFound, "cluster %s with uuid %s not found", r.GetClusterName(), r.GetClusterUuid())
	case c.pb.Status.GetState() == dataprocpb.ClusterStatus_DELETING:
		return nil, status.Errorf(codes.FailedPrecondition, "cluster %s is already being deleted", r.GetClusterName())
	}
	if c.pb.Status.GetState() == dataprocpb.ClusterStatus_CREATING {
		c.createOp.failWith(codes.Aborted, "cluster deleted while creating")
	}
	c.setState(dataprocpb.ClusterStatus_DELETING, "")
	c.deleteOp = s.newOp(r.GetRegion(), &dataprocpb.ClusterOperationMetadata{ClusterName: c.pb.ClusterName,
		ClusterUuid: c.pb.ClusterUuid, OperationType: "DELETE"}, func() { s.stepCluster(c) })
	for _, j := range s.jobs {
		if j.pb.Placement.GetClusterUuid() == c.pb.ClusterUuid && !jobEnded(j.pb.Status.GetState()) {
			j.setState(dataprocpb.JobStatus_ERROR, "Job failed: cluster "+c.pb.ClusterName+" was deleted")
		}
	}
	return proto.Clone(c.deleteOp.pb).(*longrunningpb.Operation), nil
}

// ---- jobs

type jobServer struct {
	dataprocpb.UnimplementedJobControllerServer
	s *Server
}

func (j *job) setState(st dataprocpb.JobStatus_State, details string) {
	if j.pb.Status != nil {
		j.pb.StatusHistory = append(j.pb.StatusHistory, j.pb.Status)
	}
	j.pb.Status = &dataprocpb.JobStatus{State: st, Details: details, StateStartTime: now()}
	j.pb.Done = jobEnded(st)
}

// stepJob advances a job by one read: PENDING → RUNNING → (RunReads reads)
// → DONE or ERROR.
func (s *Server) stepJob(j *job) {
	st := j.pb.Status.GetState()
	stepRun(s, jobRun, st, jobEnded(st), &j.reads, j.setState)
}

func (js jobServer) SubmitJob(_ context.Context, r *dataprocpb.SubmitJobRequest) (*dataprocpb.Job, error) {
	s := js.s
	s.mu.Lock()
	defer s.mu.Unlock()
	grpcfake.Record(&s.submitJob, r)
	id := r.GetJob().GetReference().GetJobId()
	switch {
	case r.GetProjectId() == "" || r.GetRegion() == "":
		return nil, invalid("project_id and region are required")
	case !jobIDRe.MatchString(id):
		return nil, invalid("job id %q does not match %s", id, jobIDRe)
	case r.GetJob().GetPysparkJob() == nil:
		return nil, invalid("only PySpark jobs are faked")
	}
	if err := checkGCS("main_python_file_uri", r.GetJob().GetPysparkJob().GetMainPythonFileUri()); err != nil {
		return nil, err
	}
	if err := checkLabels(r.GetJob().GetLabels()); err != nil {
		return nil, err
	}
	k := key(r.GetProjectId(), r.GetRegion(), id)
	if _, ok := s.jobs[k]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "job %s already exists", id)
	}
	pl := r.GetJob().GetPlacement()
	c, ok := s.clusters[key(r.GetProjectId(), r.GetRegion(), pl.GetClusterName())]
	switch {
	case !ok:
		return nil, status.Errorf(codes.NotFound, "cluster %s not found", pl.GetClusterName())
	case pl.GetClusterUuid() != "" && pl.GetClusterUuid() != c.pb.ClusterUuid:
		return nil, status.Errorf(codes.NotFound, "cluster %s with uuid %s not found", pl.GetClusterName(), pl.GetClusterUuid())
	case c.pb.Status.GetState() != dataprocpb.ClusterStatus_RUNNING:
		return nil, status.Errorf(codes.FailedPrecondition, "cluster %s is %s", pl.GetClusterName(), c.pb.Status.GetState())
	}
	pb := proto.Clone(r.GetJob()).(*dataprocpb.Job)
	pb.Placement.ClusterUuid = c.pb.ClusterUuid
	pb.JobUuid = uuid.NewString()
	pb.DriverOutputResourceUri = "gs://dataproc-staging-fake/google-cloud-dataproc-metainfo/" + c.pb.ClusterUuid + "/jobs/" + id + "/driveroutput"
	j := &job{pb: pb}
	j.setState(dataprocpb.JobStatus_PENDING, "")
	s.jobs[k] = j
	return proto.Clone(pb).(*dataprocpb.Job), nil
}

func (js jobServer) GetJob(_ context.Context, r *dataprocpb.GetJobRequest) (*dataprocpb.Job, error) {
	k := key(r.GetProjectId(), r.GetRegion(), r.GetJobId())
	return stepped(js.s, js.s.jobs, k, "job", r.GetJobId(), js.s.stepJob, jobPB)
}

func (js jobServer) ListJobs(_ context.Context, r *dataprocpb.ListJobsRequest) (*dataprocpb.ListJobsResponse, error) {
	s := js.s
	s.mu.Lock()
	defer s.mu.Unlock()
	matches := func(k string, j *job) bool {
		return strings.HasPrefix(k, key(r.GetProjectId(), r.GetRegion(), "")) &&
			(r.GetClusterName() == "" || j.pb.Placement.GetClusterName() == r.GetClusterName())
	}
	return &dataprocpb.ListJobsResponse{Jobs: sortedClones(s.jobs, matches, jobPB, byJobID)}, nil
}

func (js jobServer) CancelJob(_ context.Context, r *dataprocpb.CancelJobRequest) (*dataprocpb.Job, error) {
	s := js.s
	s.mu.Lock()
	defer s.mu.Unlock()
	grpcfake.Record(&s.cancelJob, r)
	j, err := lookup(s.jobs, key(r.GetProjectId(), r.GetRegion(), r.GetJobId()), "job", r.GetJobId())
	if err != nil {
		return nil, err
	}
	if jobEnded(j.pb.Status.GetState()) {
		return nil, status.Errorf(codes.FailedPrecondition, "job %s is %s", r.GetJobId(), j.pb.Status.GetState())
	}
	j.setState(dataprocpb.JobStatus_CANCELLED, "Job cancelled by request")
	return proto.Clone(j.pb).(*dataprocpb.Job), nil
}

func (js jobServer) DeleteJob(_ context.Context, r *dataprocpb.DeleteJobRequest) (*emptypb.Empty, error) {
	return removeEnded(js.s, js.s.jobs, key(r.GetProjectId(), r.GetRegion(), r.GetJobId()), "job", r.GetJobId(), jobState)
}
