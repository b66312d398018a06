// Package grpcfake serves in-process fakes of Google Cloud gRPC APIs for
// tests and the local stack, and points the Google client libraries at them.
package grpcfake

import (
	"net"
	"sync"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// Serve serves srv, its services registered, on a free 127.0.0.1 port in the
// background and returns the address (host:port). The caller stops srv.
func Serve(srv *grpc.Server) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), nil
}

// ClientOptions point a Google Cloud client library at a fake at addr: its
// address, no credentials, plaintext gRPC.
func ClientOptions(addr string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// Record appends a clone of m (a request a fake received) to *in; the caller
// holds the lock that guards *in.
func Record[M proto.Message](in *[]M, m M) {
	*in = append(*in, proto.Clone(m).(M))
}

// Clones returns clones of the messages in *in (a fake's recorded requests),
// read holding mu (the lock that guards *in).
func Clones[M proto.Message](mu sync.Locker, in *[]M) []M {
	mu.Lock()
	defer mu.Unlock()
	out := make([]M, len(*in))
	for i, m := range *in {
		out[i] = proto.Clone(m).(M)
	}
	return out
}
