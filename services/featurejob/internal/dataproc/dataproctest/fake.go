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
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/dataproc/v2/apiv1/dataprocpb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/google/uuid"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
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
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dataproctest: %w", err)
	}
	s := &Server{
		Addr:     lis.Addr().String(),
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
	go func() { _ = s.grpc.Serve(lis) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { s.grpc.Stop() }

// ClientOptions point a Dataproc client at the fake: its address, no
// credentials, plaintext gRPC.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// SetBehavior replaces the fake's behaviour.
func (s *Server) SetBehavior(b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behavior = b
}

func clone[M proto.Message](in []M) []M {
	out := make([]M, len(in))
	for i, m := range in {
		out[i] = proto.Clone(m).(M)
	}
	return out
}

// CreateBatchRequests returns the CreateBatch requests received, in order.
func (s *Server) CreateBatchRequests() []*dataprocpb.CreateBatchRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.createBatch)
}

// CreateClusterRequests returns the CreateCluster requests received.
func (s *Server) CreateClusterRequests() []*dataprocpb.CreateClusterRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.createCluster)
}

// DeleteClusterRequests returns the DeleteCluster requests received.
func (s *Server) DeleteClusterRequests() []*dataprocpb.DeleteClusterRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.deleteCluster)
}

// SubmitJobRequests returns the SubmitJob requests received.
func (s *Server) SubmitJobRequests() []*dataprocpb.SubmitJobRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.submitJob)
}

// CancelJobRequests returns the CancelJob requests received.
func (s *Server) CancelJobRequests() []*dataprocpb.CancelJobRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clone(s.cancelJob)
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
	var out []*dataprocpb.Cluster
	for _, c := range s.clusters {
		out = append(out, proto.Clone(c.pb).(*dataprocpb.Cluster))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClusterName < out[j].ClusterName })
	return out
}

// Jobs returns every job, sorted by id.
func (s *Server) Jobs() []*dataprocpb.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*dataprocpb.Job
	for _, j := range s.jobs {
		out = append(out, proto.Clone(j.pb).(*dataprocpb.Job))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Reference.JobId < out[j].Reference.JobId })
	return out
}

// Batches returns every batch, sorted by name.
func (s *Server) Batches() []*dataprocpb.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*dataprocpb.Batch
	for _, b := range s.batches {
		out = append(out, proto.Clone(b.pb).(*dataprocpb.Batch))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
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
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "operation %s not found", name)
	}
	if !op.pb.Done && op.advance != nil {
		op.advance()
	}
	return proto.Clone(op.pb).(*longrunningpb.Operation), nil
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
	resp := &longrunningpb.ListOperationsResponse{}
	for name, op := range s.ops {
		if strings.HasPrefix(name, r.GetName()) {
			resp.Operations = append(resp.Operations, proto.Clone(op.pb).(*longrunningpb.Operation))
		}
	}
	sort.Slice(resp.Operations, func(i, j int) bool { return resp.Operations[i].Name < resp.Operations[j].Name })
	return resp, nil
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
	op, ok := s.ops[r.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "operation %s not found", r.GetName())
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

func batchEnded(st dataprocpb.Batch_State) bool {
	return st == dataprocpb.Batch_SUCCEEDED || st == dataprocpb.Batch_FAILED || st == dataprocpb.Batch_CANCELLED
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
	if batchEnded(b.pb.State) {
		return
	}
	b.reads++
	switch {
	case b.pb.State == dataprocpb.Batch_PENDING:
		b.setState(dataprocpb.Batch_RUNNING, "")
	case s.behavior.Hang || b.reads <= s.behavior.RunReads+1:
	case s.behavior.FailJob != "":
		b.setState(dataprocpb.Batch_FAILED, s.behavior.FailJob)
	default:
		b.setState(dataprocpb.Batch_SUCCEEDED, "")
	}
}

func (bs batchServer) CreateBatch(_ context.Context, r *dataprocpb.CreateBatchRequest) (*longrunningpb.Operation, error) {
	s := bs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.createBatch = append(s.createBatch, proto.Clone(r).(*dataprocpb.CreateBatchRequest))
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
	s := bs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.batches[r.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "batch %s not found", r.GetName())
	}
	s.stepBatch(b)
	return proto.Clone(b.pb).(*dataprocpb.Batch), nil
}

func (bs batchServer) ListBatches(_ context.Context, r *dataprocpb.ListBatchesRequest) (*dataprocpb.ListBatchesResponse, error) {
	s := bs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &dataprocpb.ListBatchesResponse{}
	for name, b := range s.batches {
		if strings.HasPrefix(name, r.GetParent()+"/batches/") {
			resp.Batches = append(resp.Batches, proto.Clone(b.pb).(*dataprocpb.Batch))
		}
	}
	sort.Slice(resp.Batches, func(i, j int) bool { return resp.Batches[i].Name < resp.Batches[j].Name })
	return resp, nil
}

func (bs batchServer) DeleteBatch(_ context.Context, r *dataprocpb.DeleteBatchRequest) (*emptypb.Empty, error) {
	s := bs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.batches[r.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "batch %s not found", r.GetName())
	}
	if !batchEnded(b.pb.State) {
		return nil, status.Errorf(codes.FailedPrecondition, "batch %s is %s", r.GetName(), b.pb.State)
	}
	delete(s.batches, r.GetName())
	return &emptypb.Empty{}, nil
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
	s.createCluster = append(s.createCluster, proto.Clone(r).(*dataprocpb.CreateClusterRequest))
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
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clusters[key(r.GetProjectId(), r.GetRegion(), r.GetClusterName())]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "cluster %s not found", r.GetClusterName())
	}
	s.stepCluster(c)
	if _, still := s.clusters[c.key]; !still {
		return nil, status.Errorf(codes.NotFound, "cluster %s not found", r.GetClusterName())
	}
	return proto.Clone(c.pb).(*dataprocpb.Cluster), nil
}

func (cs clusterServer) ListClusters(_ context.Context, r *dataprocpb.ListClustersRequest) (*dataprocpb.ListClustersResponse, error) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &dataprocpb.ListClustersResponse{}
	for k, c := range s.clusters {
		if strings.HasPrefix(k, key(r.GetProjectId(), r.GetRegion(), "")) {
			resp.Clusters = append(resp.Clusters, proto.Clone(c.pb).(*dataprocpb.Cluster))
		}
	}
	sort.Slice(resp.Clusters, func(i, j int) bool { return resp.Clusters[i].ClusterName < resp.Clusters[j].ClusterName })
	return resp, nil
}

// DeleteCluster starts deleting; jobs still active on the cluster fail, as
// they do on Dataproc.
func (cs clusterServer) DeleteCluster(_ context.Context, r *dataprocpb.DeleteClusterRequest) (*longrunningpb.Operation, error) {
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteCluster = append(s.deleteCluster, proto.Clone(r).(*dataprocpb.DeleteClusterRequest))
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

func jobEnded(st dataprocpb.JobStatus_State) bool {
	return st == dataprocpb.JobStatus_DONE || st == dataprocpb.JobStatus_ERROR || st == dataprocpb.JobStatus_CANCELLED
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
	if jobEnded(j.pb.Status.GetState()) {
		return
	}
	j.reads++
	switch {
	case j.pb.Status.GetState() == dataprocpb.JobStatus_PENDING:
		j.setState(dataprocpb.JobStatus_RUNNING, "")
	case s.behavior.Hang || j.reads <= s.behavior.RunReads+1:
	case s.behavior.FailJob != "":
		j.setState(dataprocpb.JobStatus_ERROR, s.behavior.FailJob)
	default:
		j.setState(dataprocpb.JobStatus_DONE, "")
	}
}

func (js jobServer) SubmitJob(_ context.Context, r *dataprocpb.SubmitJobRequest) (*dataprocpb.Job, error) {
	s := js.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.submitJob = append(s.submitJob, proto.Clone(r).(*dataprocpb.SubmitJobRequest))
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
	s := js.s
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[key(r.GetProjectId(), r.GetRegion(), r.GetJobId())]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "job %s not found", r.GetJobId())
	}
	s.stepJob(j)
	return proto.Clone(j.pb).(*dataprocpb.Job), nil
}

func (js jobServer) ListJobs(_ context.Context, r *dataprocpb.ListJobsRequest) (*dataprocpb.ListJobsResponse, error) {
	s := js.s
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &dataprocpb.ListJobsResponse{}
	for k, j := range s.jobs {
		if strings.HasPrefix(k, key(r.GetProjectId(), r.GetRegion(), "")) &&
			(r.GetClusterName() == "" || j.pb.Placement.GetClusterName() == r.GetClusterName()) {
			resp.Jobs = append(resp.Jobs, proto.Clone(j.pb).(*dataprocpb.Job))
		}
	}
	sort.Slice(resp.Jobs, func(a, b int) bool { return resp.Jobs[a].Reference.JobId < resp.Jobs[b].Reference.JobId })
	return resp, nil
}

func (js jobServer) CancelJob(_ context.Context, r *dataprocpb.CancelJobRequest) (*dataprocpb.Job, error) {
	s := js.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancelJob = append(s.cancelJob, proto.Clone(r).(*dataprocpb.CancelJobRequest))
	j, ok := s.jobs[key(r.GetProjectId(), r.GetRegion(), r.GetJobId())]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "job %s not found", r.GetJobId())
	}
	if jobEnded(j.pb.Status.GetState()) {
		return nil, status.Errorf(codes.FailedPrecondition, "job %s is %s", r.GetJobId(), j.pb.Status.GetState())
	}
	j.setState(dataprocpb.JobStatus_CANCELLED, "Job cancelled by request")
	return proto.Clone(j.pb).(*dataprocpb.Job), nil
}

func (js jobServer) DeleteJob(_ context.Context, r *dataprocpb.DeleteJobRequest) (*emptypb.Empty, error) {
	s := js.s
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(r.GetProjectId(), r.GetRegion(), r.GetJobId())
	j, ok := s.jobs[k]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "job %s not found", r.GetJobId())
	}
	if !jobEnded(j.pb.Status.GetState()) {
		return nil, status.Errorf(codes.FailedPrecondition, "job %s is %s", r.GetJobId(), j.pb.Status.GetState())
	}
	delete(s.jobs, k)
	return &emptypb.Empty{}, nil
}
