package grpcfake

import (
	"context"
	"sync"
	"testing"

	gtransport "google.golang.org/api/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// A client dialled with ClientOptions, as the Google client libraries dial,
// reaches the server Serve started, without credentials.
func TestServeAndClientOptions(t *testing.T) {
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	addr, err := Serve(srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)

	ctx := context.Background()
	conn, err := gtransport.Dial(ctx, ClientOptions(addr)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status %v, want SERVING", resp.GetStatus())
	}
}

// Clones copies the messages: changing a clone leaves the recorded one.
func TestClones(t *testing.T) {
	var mu sync.Mutex
	in := []*healthpb.HealthCheckRequest{{Service: "a"}, {Service: "b"}}
	out := Clones(&mu, &in)
	if len(out) != 2 || out[0].GetService() != "a" || out[1].GetService() != "b" {
		t.Fatalf("Clones = %v", out)
	}
	out[0].Service = "changed"
	if in[0].GetService() != "a" {
		t.Fatal("Clones shares messages with its input")
	}
}

// Record keeps a clone: changing the request afterwards leaves the record.
func TestRecord(t *testing.T) {
	var got []*healthpb.HealthCheckRequest
	req := &healthpb.HealthCheckRequest{Service: "a"}
	Record(&got, req)
	req.Service = "changed"
	if len(got) != 1 || got[0].GetService() != "a" {
		t.Fatalf("recorded %v, want one request for service a", got)
	}
}
