// Package gateway is what control's HTTP/JSON gateway (grpc-gateway) runs
// on besides the generated handlers: InprocConn, which calls the API in
// process through the gRPC server's interceptors, and JSONMarshaler, the
// gateway's JSON encoding.
package gateway

import (
	"context"
	"reflect"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// InprocConn is a grpc.ClientConnInterface that runs a service's unary
// methods in this process, through the same interceptor chain the gRPC
// server runs them with. The HTTP gateway calls the API through it: one
// policy (auth, rate limit, error mapping) for HTTP and gRPC callers, without
// an HTTP/2 round trip and a second protobuf encoding per HTTP request (the
// bufconn hop this replaced cost about a sixth of control's CPU under load).
//
// What a call sees is what a gRPC call sees: the caller's outgoing metadata
// as incoming metadata, its deadline, and grpc.SetHeader/SetTrailer, whose
// values reach the grpc.Header/grpc.Trailer call options the gateway passes.
type InprocConn struct {
	srv       any
	methods   map[string]grpc.MethodDesc // by full method name, "/pkg.Service/Method"
	intercept grpc.UnaryServerInterceptor
}

// NewInprocConn serves desc's unary methods, implemented by srv, in
// process. Calls run through intercept in grpc.ChainUnaryInterceptor's order
// (the first outermost): pass the gRPC server's own interceptors.
func NewInprocConn(desc *grpc.ServiceDesc, srv any, intercept ...grpc.UnaryServerInterceptor) *InprocConn {
	c := &InprocConn{srv: srv, methods: make(map[string]grpc.MethodDesc, len(desc.Methods)), intercept: chainUnary(intercept...)}
	for _, m := range desc.Methods {
		c.methods["/"+desc.ServiceName+"/"+m.MethodName] = m
	}
	return c
}

// chainUnary is grpc.ChainUnaryInterceptor's order as one interceptor: the
// first runs outermost.
func chainUnary(ics ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		h := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, next := ics[i], h
			h = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, next) }
		}
		return h(ctx, req)
	}
}

// Invoke runs method with a copy of args and copies its response into reply.
func (c *InprocConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	m, ok := c.methods[method]
	if !ok {
		return status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	in, ok := args.(proto.Message)
	out, ok2 := reply.(proto.Message)
	if !ok || !ok2 {
		return status.Errorf(codes.Internal, "%s: arguments are not protobuf messages", method)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	ctx = metadata.NewIncomingContext(metadata.NewOutgoingContext(ctx, nil), md)
	st := &inprocStream{method: method}
	ctx = grpc.NewContextWithServerTransportStream(ctx, st)

	resp, err := m.Handler(c.srv, ctx, func(v any) error {
		proto.Merge(v.(proto.Message), in)
		return nil
	}, c.intercept)
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = st.header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = st.trailer
		}
	}
	if err != nil {
		return toStatus(err)
	}
	r, ok := resp.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "%s: response %T is not a protobuf message", method, resp)
	}
	move(out, r)
	return nil
}

// move sets *dst to *src, a response nothing else holds: a shallow copy of
// the struct is a move (a deep proto.Merge of a page of runs cost 5% of
// control's CPU under load). Messages of different types are merged.
func move(dst, src proto.Message) {
	d, s := reflect.ValueOf(dst), reflect.ValueOf(src)
	if d.Type() != s.Type() || d.Kind() != reflect.Pointer || d.IsNil() || s.IsNil() {
		proto.Reset(dst)
		proto.Merge(dst, src)
		return
	}
	d.Elem().Set(s.Elem())
}

// NewStream is not supported: the gateway maps only unary methods.
func (c *InprocConn) NewStream(_ context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Errorf(codes.Unimplemented, "%s: streaming is not served in process", method)
}

// toStatus makes err what a gRPC client would receive, as the gRPC server
// converts it: a status error as it is, a context error as Canceled or
// DeadlineExceeded, anything else as Unknown.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.FromContextError(err).Err()
}

// inprocStream is the grpc.ServerTransportStream of an in-process call: it
// keeps the headers and trailers the handler sets.
type inprocStream struct {
	method          string
	header, trailer metadata.MD
}

func (s *inprocStream) Method() string { return s.method }

func (s *inprocStream) SetHeader(md metadata.MD) error {
	s.header = metadata.Join(s.header, md)
	return nil
}

func (s *inprocStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }

func (s *inprocStream) SetTrailer(md metadata.MD) error {
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

var _ grpc.ClientConnInterface = (*InprocConn)(nil)
