// Package objstoretest gives a test a bucket on an in-process GCS emulator
// (fake-gcs-server), the same emulator the local stack runs.
package objstoretest

import (
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/cmmsflow/cmmsflow/libs/objstore"
)

// Bucket is the test bucket's name.
const Bucket = "test-bucket"

// New returns a store on a fresh in-memory emulator, stopped at test end.
func New(t testing.TB) *objstore.Store {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Host: "127.0.0.1", Port: 0, Scheme: "http"})
	if err != nil {
		t.Fatalf("objstoretest: %v", err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: Bucket})
	return objstore.New(srv.Client(), Bucket)
}
