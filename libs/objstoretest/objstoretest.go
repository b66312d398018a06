// Package objstoretest gives a test a bucket on an in-process GCS emulator
// (fake-gcs-server), the same emulator the local stack runs.
package objstoretest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/cmmsflow/cmmsflow/libs/objstore"
)

// Bucket is the test bucket's name.
const Bucket = "test-bucket"

// New returns a store on a fresh in-memory emulator, stopped at test end.
// The emulator takes a resumable upload's chunks joined (joinChunks), as
// the one of Subprocess does; the client reaches it on loopback whatever
// host it asks for.
func New(t testing.TB) *objstore.Store {
	t.Helper()
	emu, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "https", NoListener: true})
	if err != nil {
		t.Fatalf("objstoretest: %v", err)
	}
	emu.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: Bucket})
	srv := httptest.NewTLSServer(newJoinChunks(emu.HTTPHandler(), t.TempDir()))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com" // httptest's certificate
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	client, err := storage.NewClient(context.Background(), option.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatalf("objstoretest: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return objstore.New(client, Bucket)
}
