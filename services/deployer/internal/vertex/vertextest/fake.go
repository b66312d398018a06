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
package vertextest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/aiplatform/apiv1/aiplatformpb"
	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
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
	ops          map[string]*op
	nextOp       int
	polls        int

	uploads   []*aiplatformpb.UploadModelRequest
	deploys   []*aiplatformpb.DeployModelRequest
	undeploys []*aiplatformpb.UndeployModelRequest
	predicts  []*aiplatformpb.PredictRequest
}

type op struct {
	pending int
	done    *longrunningpb.Operation
}

// New starts a fake serving containers built by c, stopped at test end.
func New(t testing.TB, c Container) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("vertextest: %v", err)
	}
	s := &Server{
		Addr: l.Addr().String(), grpc: grpc.NewServer(), container: c,
		models: map[string]*aiplatformpb.Model{}, endpoints: map[string]*aiplatformpb.Endpoint{},
		serving: map[string]http.Handler{}, ops: map[string]*op{},
	}
	aiplatformpb.RegisterModelServiceServer(s.grpc, modelService{s: s})
	aiplatformpb.RegisterEndpointServiceServer(s.grpc, endpointService{s: s})
	aiplatformpb.RegisterPredictionServiceServer(s.grpc, predictionService{s: s})
	longrunningpb.RegisterOperationsServer(s.grpc, operations{s: s})
	go func() { _ = s.grpc.Serve(l) }()
	t.Cleanup(s.grpc.Stop)
	return s
}

// ClientOptions point a client library at the fake, without credentials.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

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
func (s *Server) Uploads() []*aiplatformpb.UploadModelRequest     { return clones(s, &s.uploads) }
func (s *Server) Deploys() []*aiplatformpb.DeployModelRequest     { return clones(s, &s.deploys) }
func (s *Server) Undeploys() []*aiplatformpb.UndeployModelRequest { return clones(s, &s.undeploys) }
func (s *Server) Predicts() []*aiplatformpb.PredictRequest        { return clones(s, &s.predicts) }

// Polls is how many GetOperation/WaitOperation calls the fake answered.
func (s *Server) Polls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls
}

func clones[T proto.Message](s *Server, src *[]T) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]T, len(*src))
	for i, m := range *src {
		out[i] = proto.Clone(m).(T)
	}
	return out
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
	if err != nil {
		done.Result = &longrunningpb.Operation_Error{Error: status.Convert(err).Proto()}
	} else {
		a, aerr := anypb.New(resp)
		if aerr != nil {
			panic(aerr)
		}
		done.Result = &longrunningpb.Operation_Response{Response: a}
	}
	s.ops[name] = &op{pending: s.pendingPolls, done: done}
	if s.pendingPolls > 0 {
		return &longrunningpb.Operation{Name: name, Metadata: done.Metadata}
	}
	return proto.Clone(done).(*longrunningpb.Operation)
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
	s.uploads = append(s.uploads, proto.Clone(req).(*aiplatformpb.UploadModelRequest))
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
	if _, ok := s.models[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "model %s already exists", name)
	}
	stored := proto.Clone(md).(*aiplatformpb.Model)
	stored.Name, stored.VersionId = name, "1"
	s.models[name] = stored
	return s.newOp(req.GetParent(), &aiplatformpb.UploadModelOperationMetadata{},
		&aiplatformpb.UploadModelResponse{Model: name, ModelVersionId: "1"}, nil), nil
}

func (m modelService) GetModel(_ context.Context, req *aiplatformpb.GetModelRequest) (*aiplatformpb.Model, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
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
	if ep := e.s.Endpoint(req.GetName()); ep != nil {
		return ep, nil
	}
	return nil, status.Errorf(codes.NotFound, "endpoint %s not found", req.GetName())
}

func (e endpointService) DeployModel(_ context.Context, req *aiplatformpb.DeployModelRequest) (*longrunningpb.Operation, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deploys = append(s.deploys, proto.Clone(req).(*aiplatformpb.DeployModelRequest))
	ep, ok := s.endpoints[req.GetEndpoint()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "endpoint %s not found", req.GetEndpoint())
	}
	dm := proto.Clone(req.GetDeployedModel()).(*aiplatformpb.DeployedModel)
	md, ok := s.models[strings.SplitN(dm.GetModel(), "@", 2)[0]]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "model %s not found", dm.GetModel())
	}
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
	for _, old := range ep.GetDeployedModels() {
		if old.GetId() == dm.GetId() {
			return nil, status.Errorf(codes.AlreadyExists, "deployed model %s already exists on %s", dm.GetId(), ep.GetName())
		}
	}
	split := map[string]int32{}
	for k, v := range req.GetTrafficSplit() {
		if k == "0" {
			k = dm.GetId()
		} else if find(ep, k) == nil {
			return nil, status.Errorf(codes.InvalidArgument, "traffic_split names %s, not deployed on %s", k, ep.GetName())
		}
		split[k] = v
	}
	if len(req.GetTrafficSplit()) == 0 {
		if len(ep.GetDeployedModels()) > 0 {
			split = ep.GetTrafficSplit() // the new model gets none
		} else {
			split = map[string]int32{dm.GetId(): 100}
		}
	}
	if err := checkSplit(split); err != nil {
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
	dm.Model = md.GetName()
	ep.DeployedModels = append(ep.DeployedModels, dm)
	ep.TrafficSplit = split
	s.serving[dm.GetId()] = h
	return s.newOp(parentOf(ep.GetName()), &aiplatformpb.DeployModelOperationMetadata{},
		&aiplatformpb.DeployModelResponse{DeployedModel: proto.Clone(dm).(*aiplatformpb.DeployedModel)}, nil), nil
}

func (e endpointService) UndeployModel(_ context.Context, req *aiplatformpb.UndeployModelRequest) (*longrunningpb.Operation, error) {
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.undeploys = append(s.undeploys, proto.Clone(req).(*aiplatformpb.UndeployModelRequest))
	ep, ok := s.endpoints[req.GetEndpoint()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "endpoint %s not found", req.GetEndpoint())
	}
	id := req.GetDeployedModelId()
	if find(ep, id) == nil {
		return nil, status.Errorf(codes.NotFound, "deployed model %s not found on %s", id, ep.GetName())
	}
	split := ep.GetTrafficSplit()
	if len(req.GetTrafficSplit()) > 0 {
		split = req.GetTrafficSplit()
	}
	var rest []*aiplatformpb.DeployedModel
	for _, dm := range ep.GetDeployedModels() {
		if dm.GetId() != id {
			rest = append(rest, dm)
		}
	}
	if len(rest) == 0 {
		split = nil
	} else {
		if split[id] > 0 {
			return nil, status.Errorf(codes.FailedPrecondition, "deployed model %s still has %d%% of the traffic", id, split[id])
		}
		split = copySplit(split)
		delete(split, id)
		for k := range split {
			if find(ep, k) == nil {
				return nil, status.Errorf(codes.InvalidArgument, "traffic_split names %s, not deployed on %s", k, ep.GetName())
			}
		}
		if err := checkSplit(split); err != nil {
			return nil, err
		}
	}
	ep.DeployedModels, ep.TrafficSplit = rest, split
	delete(s.serving, id)
	return s.newOp(parentOf(ep.GetName()), &aiplatformpb.UndeployModelOperationMetadata{},
		&aiplatformpb.UndeployModelResponse{}, nil), nil
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

// Predict sends the instances to the deployed model with the largest share
// of the traffic, as the container's JSON request.
func (p predictionService) Predict(ctx context.Context, req *aiplatformpb.PredictRequest) (*aiplatformpb.PredictResponse, error) {
	s := p.s
	s.mu.Lock()
	s.predicts = append(s.predicts, proto.Clone(req).(*aiplatformpb.PredictRequest))
	ep, ok := s.endpoints[req.GetEndpoint()]
	var dm *aiplatformpb.DeployedModel
	var h http.Handler
	var md *aiplatformpb.Model
	if ok {
		best := int32(-1)
		for _, d := range ep.GetDeployedModels() {
			if t := ep.GetTrafficSplit()[d.GetId()]; t > best {
				best, dm = t, d
			}
		}
		if dm != nil && best > 0 {
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
	route := md.GetContainerSpec().GetPredictRoute()
	if route == "" {
		route = "/predict"
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodPost, route, &buf).WithContext(ctx))
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
	if op.pending > 0 {
		op.pending--
		return &longrunningpb.Operation{Name: op.done.GetName(), Metadata: op.done.GetMetadata()}, nil
	}
	return proto.Clone(op.done).(*longrunningpb.Operation), nil
}

func (o operations) WaitOperation(ctx context.Context, req *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	return o.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: req.GetName()})
}
