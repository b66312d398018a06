package objstoretest

import (
	"context"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	ServeIfChild()
	os.Exit(m.Run())
}

// An object written to the emulator in the child process reads back.
func TestSubprocess(t *testing.T) {
	store := Subprocess(t)
	ctx := context.Background()
	if err := store.Put(ctx, "a/b.txt", "text/plain", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(ctx, "a/b.txt")
	if err != nil || string(got) != "hello" {
		t.Fatalf("Get: %q, %v", got, err)
	}
}
