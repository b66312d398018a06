package gateway

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestInprocConn: a call through InprocConn sees what a gRPC call sees —
// the caller's metadata as incoming, the interceptors in order, headers and
// trailers set by the server returned to the caller, errors as statuses.
func TestInprocConn(t *testing.T) {
	hs := health.NewServer()
	hs.SetServingStatus("up", healthpb.HealthCheckResponse_SERVING)
	var order []string
	var fail error
	record := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			order = append(order, name+":"+info.FullMethod)
			if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) != 1 || v[0] != "Bearer x" {
				t.Errorf("%s: incoming authorization %v", name, v)
			}
			if md, _ := metadata.FromOutgoingContext(ctx); md.Len() > 0 {
				t.Errorf("%s: the caller's outgoing metadata leaked into the server's context", name)
			}
			if err := grpc.SetHeader(ctx, metadata.Pairs("x-"+name, "h")); err != nil {
				t.Errorf("SetHeader: %v", err)
			}
			if err := grpc.SetTrailer(ctx, metadata.Pairs("x-"+name+"-t", "t")); err != nil {
				t.Errorf("SetTrailer: %v", err)
			}
			if fail != nil {
				return nil, fail
			}
			return h(ctx, req)
		}
	}
	conn := NewInprocConn(&healthpb.Health_ServiceDesc, hs, record("outer"), record("inner"))
	client := healthpb.NewHealthClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer x")

	var header, trailer metadata.MD
	req := &healthpb.HealthCheckRequest{Service: "up"}
	resp, err := client.Check(ctx, req, grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status %v", resp.GetStatus())
	}
	want := []string{"outer:/grpc.health.v1.Health/Check", "inner:/grpc.health.v1.Health/Check"}
	if len(order) != 2 || order[0] != want[0] || order[1] != want[1] {
		t.Fatalf("interceptors ran %v, want %v", order, want)
	}
	if header.Get("x-outer")[0] != "h" || len(header.Get("x-inner")) != 1 || len(trailer.Get("x-inner-t")) != 1 {
		t.Fatalf("header %v trailer %v", header, trailer)
	}
	if req.GetService() != "up" {
		t.Fatal("the caller's request was changed")
	}

	// The server's own status, an interceptor's status, a plain error and a
	// context error, as a gRPC client would get them.
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown service: %v", err)
	}
	for in, want := range map[error]codes.Code{
		status.Error(codes.PermissionDenied, "no"): codes.PermissionDenied,
		errors.New("boom"):                         codes.Unknown,
		context.Canceled:                           codes.Canceled,
		context.DeadlineExceeded:                   codes.DeadlineExceeded,
	} {
		fail = in
		if _, err := client.Check(ctx, req); status.Code(err) != want {
			t.Errorf("%v: got %v, want code %v", in, err, want)
		}
	}
	if err := conn.Invoke(ctx, "/grpc.health.v1.Health/Nope", req, &healthpb.HealthCheckResponse{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v", err)
	}
	if _, err := client.Watch(ctx, req); status.Code(err) != codes.Unimplemented {
		t.Fatalf("stream: %v", err)
	}
}
