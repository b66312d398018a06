package objstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cmmsflow/cmmsflow/libs/objstore"
	"github.com/cmmsflow/cmmsflow/libs/objstoretest"
)

func TestPutGetOverwriteList(t *testing.T) {
	ctx := context.Background()
	s := objstoretest.New(t)
	if err := s.Put(ctx, "runs/r1/raw/assets.parquet", "application/octet-stream", []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "runs/r1/raw/assets.parquet", "application/octet-stream", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "runs/r2/raw/assets.parquet", "application/octet-stream", []byte("x")); err != nil {
		t.Fatal(err)
	}
	b, err := s.Get(ctx, "runs/r1/raw/assets.parquet")
	if err != nil || string(b) != "two" {
		t.Fatalf("got %q %v, want the overwritten content", b, err)
	}
	objs, err := s.List(ctx, "runs/r1/")
	if err != nil || len(objs) != 1 || objs[0].Size != 3 || objs[0].Generation == 0 || objs[0].Updated.IsZero() {
		t.Fatalf("list %+v %v: want one object, rewritten not duplicated, with its generation and time", objs, err)
	}
	if err := s.Put(ctx, "runs/r1/raw/assets.parquet", "application/octet-stream", []byte("two")); err != nil {
		t.Fatal(err)
	}
	if again, err := s.List(ctx, "runs/r1/"); err != nil || again[0].Generation == objs[0].Generation {
		t.Fatalf("list after a rewrite %+v %v: want a new generation", again, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("missing object: %v", err)
	}
	if s.URI("a/b") != "gs://test-bucket/a/b" {
		t.Fatal(s.URI("a/b"))
	}
}
