// Package vertextest is an in-process fake of the Vertex AI v1 gRPC API for
// the deployer's tests, on a 127.0.0.1 listener: the ModelService (UploadModel,
// GetModel), the EndpointService (GetEndpoint, DeployModel, UndeployModel),
// the PredictionService (Predict) and the google.longrunning Operations
// service the clients poll. It keeps models and endpoints in memory,
// validates ids, traffic splits and container specs as Vertex AI does,
// and records every request.
//
// Deploying starts the model's "container": Container builds an http.Handler
// from the uploaded model (its container spec and artifact URI), the fake
// checks its health route answers 200 (Vertex AI's readiness check), and
// Predict posts {"instances": [...]} to its predict route, as Vertex AI
// forwards requests to a custom container.
//
// SetFaults makes the fake fail at random, from a seed (see Faults): RPC
// errors, requests rejected, responses lost after the change was made,
// operations that finish with an error and operations that stay pending
// until Advance — the operations a caller gave up waiting for, which go on
// and finish (or fail) meanwhile.
package vertextest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/cmmsflow/cmmsflow/libs/grpcfake"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Container starts a model's serving container: the handler Vertex AI would
// reach on the container's port, given the uploaded model (its
// ContainerSpec and ArtifactUri, which Vertex AI passes as AIP_STORAGE_URI)
// and the deployed model id (AIP_DEPLOYED_MODEL_ID).
type Container func(m *aiplatformpb.Model, deployedModelID string) (http.Handler, error)

// Server is a running fake.
type Server struct {
	Addr string

	grpc      *grpc.Server
	container Container

	mu           sync.Mutex
	pendingPolls int
	models       map[string]*aiplatformpb.Model
	endpoints    map[string]*aiplatformpb.Endpoint
	serving      map[string]http.Handler // deployed model id → container
	credit       map[string]int          // deployed model id → its weighted round-robin credit (Predict)
	ops          map[string]*op
	nextOp       int
	polls        int

	faults   *Faults
	rng      *rand.Rand
	injected Injected
	seen     map[string]bool // mutating requests already answered (by key)
	inflight map[string]bool // resources an operation pending until Advance is changing
	stuck    []string        // those operations, oldest first
	failNext map[string][]error

	uploads   []*aiplatformpb.UploadModelRequest
	deploys   []*aiplatformpb.DeployModelRequest
	undeploys []*aiplatformpb.UndeployModelRequest
	predicts  []*aiplatformpb.PredictRequest
}

type op struct {
	pending int
	done    *longrunningpb.Operation
	// finish, for an operation pending until Advance, makes its change (or
	// fails) and returns the operation's result.
	finish func() (proto.Message, error)
}

// Faults are the probabilities of the faults the fake injects. Each RPC of
// the ModelService and EndpointService draws them in turn; Predict and the
// Operations service are never failed, so the sequence of draws, hence the
// faults, depend only on the seed and the requests made.
type Faults struct {
	Seed uint64
	// RPC: the call fails before doing anything, UNAVAILABLE or INTERNAL.
	RPC float64
	// Rejected: a mutating request (upload, deploy, undeploy) the fake sees
	// for the first time is rejected, INVALID_ARGUMENT or
	// FAILED_PRECONDITION, either as the RPC's error or as its operation's.
	// Only the first time: Vertex AI does not reject a request it accepted
	// before, and a rejected request sent again is drawn again.
	Rejected float64
	// LostResponse: a mutating call makes its change, then answers
	// UNAVAILABLE (the response lost on the way back).
	LostResponse float64
	// OpError: the call's operation finishes with INTERNAL, having changed
	// nothing.
	OpError float64
	// Stuck: the call's operation stays pending — polls answer "not done" —
	// until Advance, which makes its change then (or fails it, when the
	// state no longer allows it). Meanwhile the resource is busy: the model
	// id or deployed model id is taken (ALREADY_EXISTS) but not visible
	// yet, and undeploying it again is FAILED_PRECONDITION.
	Stuck float64
	// Cleanup is added to RPC and to OpError for UndeployModel, the only
	// cleanup call the engine makes.
	Cleanup float64
}

// Injected counts the faults injected since SetFaults.
type Injected struct {
	RPC, Rejected, LostResponse, OpError, Stuck int
}

// Total is the number of faults.
func (i Injected) Total() int { return i.RPC + i.Rejected + i.LostResponse + i.OpError + i.Stuck }

// SetFaults injects f's faults from now on (a zero Faults: none). Pending
// operations stay pending until Advance.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Faults{}) {
		s.faults, s.rng = nil, nil
		return
	}
	s.faults, s.rng, s.injected = &f, rand.New(rand.NewPCG(f.Seed, f.Seed^0x5eed)), Injected{}
}

// FailNext makes the next calls of method (UploadModel, GetModel,
// GetEndpoint, DeployModel, UndeployModel) answer errs in turn, before doing
// anything; a nil error lets that call through. For deterministic tests;
// counted in Injected as RPC errors.
func (s *Server) FailNext(method string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext[method] = append(s.failNext[method], errs...)
}

// Injected returns the faults injected since SetFaults.
func (s *Server) Injected() Injected {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.injected
}

// Advance lets time pass: every operation pending until Advance finishes,
// oldest first, making its change or failing.
func (s *Server) Advance() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range s.stuck {
		o := s.ops[name]
		resp, err := o.finish()
		o.finish, o.pending = nil, 0
		setResult(o.done, resp, err)
	}
	s.stuck = nil
}

// Pending is the number of operations pending until Advance.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stuck)
}

// Models returns copies of the registry's models, by name.
func (s *Server) Models() map[string]*aiplatformpb.Model {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*aiplatformpb.Model, len(s.models))
	for k, m := range s.models {
		out[k] = proto.Clone(m).(*aiplatformpb.Model)
	}
	return out
}

var (
	transientCodes = []codes.Code{codes.Unavailable, codes.Internal}
	rejectedCodes  = []codes.Code{codes.InvalidArgument, codes.FailedPrecondition}
)

// inject draws the faults of a call before it does anything: an error to
// return, or (mutating calls) the error its operation is to finish with.
// Call with s.mu.
func (s *Server) inject(method string, req proto.Message, mutating bool) (opErr, err error) {
	if q := s.failNext[method]; len(q) > 0 {
		s.failNext[method] = q[1:]
		if q[0] != nil {
			s.injected.RPC++
			return nil, q[0]
		}
	}
	f := s.faults
	if f == nil {
		return nil, nil
	}
	p := f.RPC
	if method == "UndeployModel" {
		p += f.Cleanup
	}
	if s.rng.Float64() < p {
		s.injected.RPC++
		return nil, status.Errorf(transientCodes[s.rng.IntN(2)], "vertextest: injected %s failure", method)
	}
	if !mutating {
		return nil, nil
	}
	b, merr := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if merr != nil {
		panic(merr)
	}
	key := method + "\x00" + string(b)
	first := !s.seen[key]
	s.seen[key] = true
	if first && s.rng.Float64() < f.Rejected {
		s.injected.Rejected++
		err := status.Errorf(rejectedCodes[s.rng.IntN(2)], "vertextest: injected rejection of %s", method)
		if s.rng.IntN(2) == 0 {
			return nil, err
		}
		return err, nil
	}
	p = f.OpError
	if method == "UndeployModel" {
		p += f.Cleanup
	}
	if s.rng.Float64() < p {
		s.injected.OpError++
		return status.Errorf(codes.Internal, "vertextest: injected %s operation failure", method), nil
	}
	return nil, nil
}

// change ends a mutating call whose request is valid: its operation fails
// with opErr (nothing changed), or stays pending until Advance (busy marks
// the resource meanwhile; check and apply run then), or the change is made
// now — and, drawn last, its response may be lost. Call with s.mu.
func (s *Server) change(parent string, meta proto.Message, opErr error, busy string,
	check func() error, apply func() proto.Message,
) (*longrunningpb.Operation, error) {
	if opErr != nil {
		return s.newOp(parent, meta, nil, opErr), nil
	}
	if f := s.faults; f != nil && s.rng.Float64() < f.Stuck {
		s.injected.Stuck++
		s.inflight[busy] = true
		o := s.newOp(parent, meta, &aiplatformpb.UndeployModelResponse{}, nil) // result set by Advance
		pending := s.ops[o.GetName()]
		pending.pending = -1
		pending.finish = func() (proto.Message, error) {
			delete(s.inflight, busy)
			if err := check(); err != nil {
				return nil, err
			}
			return apply(), nil
		}
		s.stuck = append(s.stuck, o.GetName())
		return &longrunningpb.Operation{Name: o.GetName(), Metadata: o.GetMetadata()}, nil
	}
	resp := apply()
	if f := s.faults; f != nil && s.rng.Float64() < f.LostResponse {
		s.injected.LostResponse++
		return nil, status.Error(codes.Unavailable, "vertextest: injected loss of the response (the change was made)")
	}
	return s.newOp(parent, meta, resp, nil), nil
}

// New starts a fake serving containers built by c, stopped at test end.
func New(t testing.TB, c Container) *Server {
	t.Helper()
	s := &Server{
		grpc: grpc.NewServer(), container: c,
		models: map[string]*aiplatformpb.Model{}, endpoints: map[string]*aiplatformpb.Endpoint{},
		serving: map[string]http.Handler{}, credit: map[string]int{}, ops: map[string]*op{},
		seen: map[string]bool{}, inflight: map[string]bool{}, failNext: map[string][]error{},
	}
	aiplatformpb.RegisterModelServiceServer(s.grpc, modelService{s: s})
	aiplatformpb.RegisterEndpointServiceServer(s.grpc, endpointService{s: s})
	aiplatformpb.RegisterPredictionServiceServer(s.grpc, predictionService{s: s})
	longrunningpb.RegisterOperationsServer(s.grpc, operations{s: s})
	addr, err := grpcfake.Serve(s.grpc)
	if err != nil {
		t.Fatalf("vertextest: %v", err)
	}
	s.Addr = addr
	t.Cleanup(s.grpc.Stop)
	return s
}

// ClientOptions point a client library at the fake, without credentials.
func (s *Server) ClientOptions() []option.ClientOption { return grpcfake.ClientOptions(s.Addr) }

// SetPendingPolls makes every new operation answer "not done" to that many
// polls before it completes (0: done at once).
func (s *Server) SetPendingPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pendingPolls = n
}

// AddEndpoint creates an empty endpoint named
// projects/<p>/locations/<l>/endpoints/<id> and returns the name.
func (s *Server) AddEndpoint(project, location, id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := fmt.Sprintf("projects/%s/locations/%s/endpoints/%s", project, location, id)
	s.endpoints[name] = &aiplatformpb.Endpoint{Name: name, DisplayName: id}
	return name
}

// Endpoint returns a copy of the named endpoint, or nil.
func (s *Server) Endpoint(name string) *aiplatformpb.Endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ep, ok := s.endpoints[name]; ok {
		return proto.Clone(ep).(*aiplatformpb.Endpoint)
	}
	return nil
}

// Recorded requests, copies in arrival order.
func (s *Server) Uploads() []*aiplatformpb.UploadModelRequest {
	return grpcfake.Clones(&s.mu, &s.uploads)
}
func (s *Server) Deploys() []*aiplatformpb.DeployModelRequest {
	return grpcfake.Clones(&s.mu, &s.deploys)
}
func (s *Server) Undeploys() []*aiplatformpb.UndeployModelRequest {
	return grpcfake.Clones(&s.mu, &s.undeploys)
}
func (s *Server) Predicts() []*aiplatformpb.PredictRequest {
	return grpcfake.Clones(&s.mu, &s.predicts)
}

// Polls is how many GetOperation/WaitOperation calls the fake answered.
func (s *Server) Polls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls
}

var (
	parentRe   = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+$`)
	modelIDRe  = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	deployIDRe = regexp.MustCompile(`^[0-9]{1,10}$`)
)

// newOp records an operation whose result is resp (or err). Call with s.mu.
func (s *Server) newOp(parent string, meta, resp proto.Message, err error) *longrunningpb.Operation {
	s.nextOp++
	name := fmt.Sprintf("%s/operations/%d", parent, s.nextOp)
	done := &longrunningpb.Operation{Name: name, Done: true}
	if m, aerr := anypb.New(meta); aerr == nil {
		done.Metadata = m
	}
	setResult(done, resp, err)
	s.ops[name] = &op{pending: s.pendingPolls, done: done}
	if s.pendingPolls > 0 {
		return &longrunningpb.Operation{Name: name, Metadata: done.Metadata}
	}
	return proto.Clone(done).(*longrunningpb.Operation)
}

func setResult(done *longrunningpb.Operation, resp proto.Message, err error) {
	if err != nil {
		done.Result = &longrunningpb.Operation_Error{Error: status.Convert(err).Proto()}
		return
	}
	a, aerr := anypb.New(resp)
	if aerr != nil {
		panic(aerr)
	}
	done.Result = &longrunningpb.Operation_Response{Response: a}
}

func parentOf(name string) string {
	p := strings.Split(name, "/")
	if len(p) < 4 {
		return name
	}
	return strings.Join(p[:4], "/")
}

type modelService struct {
	aiplatformpb.UnimplementedModelServiceServer
	s *Server
}

func (m modelService) UploadModel(_ context.Context, req *aiplatformpb.UploadModelRequest) (*longrunningpb.Operation, error) {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	grpcfake.Record(&s.uploads, req)
	opErr, err := s.inject("UploadModel", req, true)
	if err != nil {
		return nil, err
	}
	if !parentRe.MatchString(req.GetParent()) {
		return nil, status.Errorf(codes.InvalidArgument, "parent %q: want projects/*/locations/*", req.GetParent())
	}
	md := req.GetModel()
	if md.GetDisplayName() == "" {
		return nil, status.Error(codes.InvalidArgument, "model.display_name is required")
	}
	cs := md.GetContainerSpec()
	if cs.GetImageUri() == "" {
		return nil, status.Error(codes.InvalidArgument, "model.container_spec.image_uri is required for a custom container")
	}
	if r := cs.GetPredictRoute(); r != "" && !strings.HasPrefix(r, "/") {
		return nil, status.Errorf(codes.InvalidArgument, "predict_route %q must start with /", r)
	}
	if !strings.HasPrefix(md.GetArtifactUri(), "gs://") {
		return nil, status.Errorf(codes.InvalidArgument, "artifact_uri %q: want a gs:// folder", md.GetArtifactUri())
	}
	id := req.GetModelId()
	if id == "" {
		id = fmt.Sprint(len(s.models) + 1000)
	} else if !modelIDRe.MatchString(id) {
		return nil, status.Errorf(codes.InvalidArgument, "model_id %q: want [a-z][a-z0-9_-]{0,62}", id)
	}
	name := req.GetParent() + "/models/" + id
	busy := "model:" + name
	check := func() error {
		if _, ok := s.models[name]; ok || s.inflight[busy] {
			return status.Errorf(codes.AlreadyExists, "model %s already exists", name)
		}
		return nil
	}
	if err := check(); err != nil {
		return nil, err
	}
	return s.change(req.GetParent(), &aiplatformpb.UploadModelOperationMetadata{}, opErr, busy, check, func() proto.Message {
		stored := proto.Clone(md).(*aiplatformpb.Model)
		stored.Name, stored.VersionId = name, "1"
		s.models[name] = stored
		return &aiplatformpb.UploadModelResponse{Model: name, ModelVersionId: "1"}
	})
}

func (m modelService) GetModel(_ context.Context, req *aiplatformpb.GetModelRequest) (*aiplatformpb.Model, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if _, err := m.s.inject("GetModel", req, false); err != nil {
		return nil, err
	}
	md, ok := m.s.models[strings.SplitN(req.GetName(), "@", 2)[0]]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "model %s not found", req.GetName())
	}
	return proto.Clone(md).(*aiplatformpb.Model), nil
}

type endpointService struct {
	aiplatformpb.UnimplementedEndpointServiceServer
	s *Server
}

func (e endpointService) GetEndpoint(_ context.Context, req *aiplatformpb.GetEndpointRequest) (*aiplatformpb.Endpoint, error) {
	e.s.mu.Lock()
	_, err := e.s.inject("GetEndpoint", req, false)
	e.s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if ep := e.s.Endpoint(req.GetName()); ep != nil {
		return ep, nil
	}
	return nil, status.Errorf(codes.NotFound, "endpoint %s not found", req.GetName())
}

func (e endpointService) DeployModel(_ context.Context, req *aiplatformpb.DeployModelRequest) (*longrunningpb.Operation, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	grpcfake.Record(&s.deploys, req)
	opErr, err := s.inject("DeployModel", req, true)
	if err != nil {
		return nil, err
	}
	dm := proto.Clone(req.GetDeployedModel()).(*aiplatformpb.DeployedModel)
	if dm.GetDedicatedResources().GetMachineSpec().GetMachineType() == "" {
		return nil, status.Error(codes.InvalidArgument, "a custom-container model needs dedicated_resources.machine_spec.machine_type")
	}
	if r := dm.GetDedicatedResources(); r.GetMinReplicaCount() < 1 || r.GetMaxReplicaCount() < r.GetMinReplicaCount() {
		return nil, status.Error(codes.InvalidArgument, "replica counts: want 1 ≤ min ≤ max")
	}
	if dm.GetId() == "" {
		dm.Id = fmt.Sprint(9_000_000_000 + len(s.deploys))
	} else if !deployIDRe.MatchString(dm.GetId()) {
		return nil, status.Errorf(codes.InvalidArgument, "deployed_model.id %q: want 1-10 digits", dm.GetId())
	}
	busy := "deploy:" + req.GetEndpoint() + "/" + dm.GetId()
	var (
		ep    *aiplatformpb.Endpoint
		md    *aiplatformpb.Model
		split map[string]int32
	)
	// check validates the request against the state, now and (an operation
	// pending until Advance) when it finishes.
	check := func() error {
		var ok bool
		if ep, ok = s.endpoints[req.GetEndpoint()]; !ok {
			return status.Errorf(codes.NotFound, "endpoint %s not found", req.GetEndpoint())
		}
		if md, ok = s.models[strings.SplitN(dm.GetModel(), "@", 2)[0]]; !ok {
			return status.Errorf(codes.NotFound, "model %s not found", dm.GetModel())
		}
		if find(ep, dm.GetId()) != nil || s.inflight[busy] {
			return status.Errorf(codes.AlreadyExists, "deployed model %s already exists on %s", dm.GetId(), ep.GetName())
		}
		split = map[string]int32{}
		for k, v := range req.GetTrafficSplit() {
			if k == "0" {
				k = dm.GetId()
			} else if find(ep, k) == nil {
				return status.Errorf(codes.InvalidArgument, "traffic_split names %s, not deployed on %s", k, ep.GetName())
			}
			split[k] = v
		}
		if len(req.GetTrafficSplit()) == 0 {
			if len(ep.GetDeployedModels()) > 0 {
				split = copySplit(ep.GetTrafficSplit()) // the new model gets none
			} else {
				split = map[string]int32{dm.GetId(): 100}
			}
		}
		return checkSplit(split)
	}
	if err := check(); err != nil {
		return nil, err
	}
	h, err := s.container(md, dm.GetId())
	if err != nil {
		return s.newOp(parentOf(ep.GetName()), &aiplatformpb.DeployModelOperationMetadata{}, nil,
			status.Errorf(codes.FailedPrecondition, "container failed to start: %v", err)), nil
	}
	if err := health(h, md.GetContainerSpec().GetHealthRoute()); err != nil {
		return s.newOp(parentOf(ep.GetName()), &aiplatformpb.DeployModelOperationMetadata{}, nil,
			status.Errorf(codes.FailedPrecondition, "container not ready: %v", err)), nil
	}
	return s.change(parentOf(ep.GetName()), &aiplatformpb.DeployModelOperationMetadata{}, opErr, busy, check, func() proto.Message {
		dm.Model = md.GetName()
		ep.DeployedModels = append(ep.DeployedModels, dm)
		ep.TrafficSplit = split
		s.serving[dm.GetId()] = h
		return &aiplatformpb.DeployModelResponse{DeployedModel: proto.Clone(dm).(*aiplatformpb.DeployedModel)}
	})
}

func (e endpointService) UndeployModel(_ context.Context, req *aiplatformpb.UndeployModelRequest) (*longrunningpb.Operation, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	grpcfake.Record(&s.undeploys, req)
	opErr, err := s.inject("UndeployModel", req, true)
	if err != nil {
		return nil, err
	}
	id := req.GetDeployedModelId()
	busy := "undeploy:" + req.GetEndpoint() + "/" + id
	var (
		ep    *aiplatformpb.Endpoint
		rest  []*aiplatformpb.DeployedModel
		split map[string]int32
	)
	check := func() error {
		var ok bool
		if ep, ok = s.endpoints[req.GetEndpoint()]; !ok {
			return status.Errorf(codes.NotFound, "endpoint %s not found", req.GetEndpoint())
		}
		if find(ep, id) == nil {
			return status.Errorf(codes.NotFound, "deployed model %s not found on %s", id, ep.GetName())
		}
		if s.inflight[busy] {
			return status.Errorf(codes.FailedPrecondition, "deployed model %s is being undeployed", id)
		}
		split = ep.GetTrafficSplit()
		if len(req.GetTrafficSplit()) > 0 {
			split = req.GetTrafficSplit()
		}
		rest = nil
		for _, dm := range ep.GetDeployedModels() {
			if dm.GetId() != id {
				rest = append(rest, dm)
			}
		}
		if len(rest) == 0 {
			split = nil
			return nil
		}
		if split[id] > 0 {
			return status.Errorf(codes.FailedPrecondition, "deployed model %s still has %d%% of the traffic", id, split[id])
		}
		split = copySplit(split)
		delete(split, id)
		for k := range split {
			if find(ep, k) == nil {
				return status.Errorf(codes.InvalidArgument, "traffic_split names %s, not deployed on %s", k, ep.GetName())
			}
		}
		return checkSplit(split)
	}
	if err := check(); err != nil {
		return nil, err
	}
	return s.change(parentOf(ep.GetName()), &aiplatformpb.UndeployModelOperationMetadata{}, opErr, busy, check, func() proto.Message {
		ep.DeployedModels, ep.TrafficSplit = rest, split
		delete(s.serving, id)
		return &aiplatformpb.UndeployModelResponse{}
	})
}

func find(ep *aiplatformpb.Endpoint, id string) *aiplatformpb.DeployedModel {
	for _, dm := range ep.GetDeployedModels() {
		if dm.GetId() == id {
			return dm
		}
	}
	return nil
}

func copySplit(m map[string]int32) map[string]int32 {
	out := make(map[string]int32, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func checkSplit(split map[string]int32) error {
	var sum int32
	for k, v := range split {
		if v < 0 {
			return status.Errorf(codes.InvalidArgument, "traffic_split[%s] = %d is negative", k, v)
		}
		sum += v
	}
	if sum != 100 {
		return status.Errorf(codes.InvalidArgument, "traffic_split adds up to %d, want 100", sum)
	}
	return nil
}

func health(h http.Handler, route string) error {
	if route == "" {
		route = "/health"
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, route, nil))
	if rec.Code != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", route, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return nil
}

type predictionService struct {
	aiplatformpb.UnimplementedPredictionServiceServer
	s *Server
}

// Predict sends the instances to a deployed model with traffic, picked in
// proportion to the traffic split (smooth weighted round robin, so a model
// with 10% answers every tenth request), as the container's JSON request.
func (p predictionService) Predict(ctx context.Context, req *aiplatformpb.PredictRequest) (*aiplatformpb.PredictResponse, error) {
	s := p.s
	s.mu.Lock()
	grpcfake.Record(&s.predicts, req)
	ep, ok := s.endpoints[req.GetEndpoint()]
	var dm *aiplatformpb.DeployedModel
	var h http.Handler
	var md *aiplatformpb.Model
	if ok {
		if dm = s.route(ep); dm != nil {
			h, md = s.serving[dm.GetId()], s.models[dm.GetModel()]
		}
	}
	s.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "endpoint %s not found", req.GetEndpoint())
	}
	if h == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "endpoint %s has no deployed model with traffic", req.GetEndpoint())
	}
	body, err := containerRequest(req)
	if err != nil {
		return nil, err
	}
	route := md.GetContainerSpec().GetPredictRoute()
	if route == "" {
		route = "/predict"
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodPost, route, body).WithContext(ctx))
	if rec.Code != http.StatusOK {
		code := codes.Internal
		if rec.Code >= 400 && rec.Code < 500 {
			code = codes.InvalidArgument
		}
		return nil, status.Errorf(code, "container answered %d: %s", rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	var out struct {
		Predictions []json.RawMessage `json:"predictions"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		return nil, status.Errorf(codes.Internal, "container response: %v", err)
	}
	resp := &aiplatformpb.PredictResponse{
		DeployedModelId: dm.GetId(), Model: md.GetName(), ModelVersionId: md.GetVersionId(), ModelDisplayName: md.GetDisplayName(),
	}
	for _, raw := range out.Predictions {
		v := &structpb.Value{}
		if err := protojson.Unmarshal(raw, v); err != nil {
			return nil, status.Errorf(codes.Internal, "container prediction: %v", err)
		}
		resp.Predictions = append(resp.Predictions, v)
	}
	return resp, nil
}

// route picks the deployed model of ep that answers the next request: each
// model with traffic earns its share, the one with the most credit answers
// and pays the total back. nil when no model has traffic.
func (s *Server) route(ep *aiplatformpb.Endpoint) *aiplatformpb.DeployedModel {
	var best *aiplatformpb.DeployedModel
	total := 0
	for _, d := range ep.GetDeployedModels() {
		t := int(ep.GetTrafficSplit()[d.GetId()])
		if t <= 0 {
			continue
		}
		total += t
		s.credit[d.GetId()] += t
		if best == nil || s.credit[d.GetId()] > s.credit[best.GetId()] {
			best = d
		}
	}
	if best != nil {
		s.credit[best.GetId()] -= total
	}
	return best
}

// containerRequest is the JSON body Predict posts to the container:
// {"instances": [...], "parameters": ...}.
func containerRequest(req *aiplatformpb.PredictRequest) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"instances":[`)
	for i, v := range req.GetInstances() {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := protojson.Marshal(v)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "instance %d: %v", i, err)
		}
		buf.Write(b)
	}
	buf.WriteByte(']')
	if req.GetParameters() != nil {
		b, err := protojson.Marshal(req.GetParameters())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "parameters: %v", err)
		}
		buf.WriteString(`,"parameters":`)
		buf.Write(b)
	}
	buf.WriteByte('}')
	return &buf, nil
}

type operations struct {
	longrunningpb.UnimplementedOperationsServer
	s *Server
}

func (o operations) GetOperation(_ context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	s := o.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	op, ok := s.ops[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "operation %s not found", req.GetName())
	}
	if op.pending != 0 {
		if op.pending > 0 {
			op.pending--
		}
		return &longrunningpb.Operation{Name: op.done.GetName(), Metadata: op.done.GetMetadata()}, nil
	}
	return proto.Clone(op.done).(*longrunningpb.Operation), nil
}

func (o operations) WaitOperation(ctx context.Context, req *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	return o.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: req.GetName()})
}
