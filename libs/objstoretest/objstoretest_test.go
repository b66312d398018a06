package objstoretest

import (
	"bytes"
	"context"
	"testing"
)

// An object of three of the client's 16 MiB chunks, which goes up as a
// resumable upload joined on the way (joinChunks), reads back whole and is
// listed at its size.
func TestNewChunkedObject(t *testing.T) {
	store := New(t)
	ctx := context.Background()
	data := make([]byte, 40<<20)
	for i := range data {
		data[i] = byte(i * 7919 >> 5)
	}
	if err := store.Put(ctx, "big/object", "application/octet-stream", data); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(ctx, "big/object")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(data))
	}
	objs, err := store.List(ctx, "big/")
	if err != nil || len(objs) != 1 || objs[0].Size != int64(len(data)) {
		t.Fatalf("List: %+v (%v), want one object of %d bytes", objs, err, len(data))
	}
}
