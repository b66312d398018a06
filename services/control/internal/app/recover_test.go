package app

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// panicService is a gRPC service whose one unary and one streaming method
// panic.
var panicService = grpc.ServiceDesc{
	ServiceName: "test.Panic",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Unary",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(emptypb.Empty)); err != nil {
				return nil, err
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.Panic/Unary"}
			return intercept(ctx, nil, info, func(context.Context, any) (any, error) { panic("secret /src/app.go:12") })
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Stream",
		ServerStreams: true,
		Handler:       func(any, grpc.ServerStream) error { panic("stream boom") },
	}},
}

// A panicking call answers Internal "internal error"; the stack trace is
// logged, and the server (grpc-go runs handlers on their own goroutines, where
// a panic would end the process) keeps serving.
func TestPanicsBecomeInternalErrors(t *testing.T) {
	var sink lockedBuffer
	log := slog.New(slog.NewJSONHandler(&sink, nil))
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(recoverUnary(log)), grpc.ChainStreamInterceptor(recoverStream(log)))
	gs.RegisterService(&panicService, struct{}{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx := context.Background()
	for i := range 2 { // the second call proves the server survived the first
		err := conn.Invoke(ctx, "/test.Panic/Unary", &emptypb.Empty{}, new(emptypb.Empty))
		if s, _ := status.FromError(err); s.Code() != codes.Internal || s.Message() != "internal error" {
			t.Fatalf("unary call %d: %v, want Internal \"internal error\"", i, err)
		}
	}
	stream, err := conn.NewStream(ctx, &panicService.Streams[0], "/test.Panic/Stream")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	err = stream.RecvMsg(new(emptypb.Empty))
	if s, _ := status.FromError(err); s.Code() != codes.Internal || s.Message() != "internal error" {
		t.Fatalf("stream: %v, want Internal \"internal error\"", err)
	}
	logged := sink.String()
	for _, want := range []string{`"panic":"secret /src/app.go:12"`, `"panic":"stream boom"`, "recover_test.go:", `"method":"/test.Panic/Unary"`} {
		if !strings.Contains(logged, want) {
			t.Fatalf("log %s: want %s", logged, want)
		}
	}
}
