package eventing

import (
	"context"
	"fmt"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// EmulatorClient returns a Pub/Sub client for an emulator at host
// (host:port): plain-text gRPC, no credentials, never a Google endpoint,
// whatever the environment says. The caller closes it.
func EmulatorClient(ctx context.Context, host, project string) (*pubsub.Client, error) {
	c, err := pubsub.NewClient(ctx, project,
		option.WithEndpoint(host),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
		option.WithTelemetryDisabled())
	if err != nil {
		return nil, fmt.Errorf("pubsub client for emulator %s: %w", host, err)
	}
	return c, nil
}
