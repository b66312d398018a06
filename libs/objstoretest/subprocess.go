package objstoretest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/cmmsflow/cmmsflow/libs/objstore"
)

// subprocessRootEnv, set, makes a test binary that calls ServeIfChild a
// bucket emulator over that directory.
const subprocessRootEnv = "OBJSTORETEST_EMULATOR_ROOT"

// Subprocess returns a store on a bucket emulator in a child process (this
// test binary started again) with its objects on disk, stopped at test end:
// neither the objects nor the emulator's buffering of uploads are in the
// test's heap or RSS, which a benchmark of memory (libs/benchmem) needs.
// The test binary's TestMain must call ServeIfChild first. It sets
// STORAGE_EMULATOR_HOST for the test (tb.Setenv: not in parallel tests).
func Subprocess(tb testing.TB) *objstore.Store {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), subprocessRootEnv+"="+tb.TempDir())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	host, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("objstoretest: bucket emulator (does TestMain call objstoretest.ServeIfChild?): %v", err)
	}
	tb.Setenv("STORAGE_EMULATOR_HOST", strings.TrimSpace(host))
	store, closeStore, err := objstore.Connect(context.Background(), Bucket)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = closeStore() })
	return store
}

// ServeIfChild, in a test binary that Subprocess started, serves the bucket
// emulator on loopback until its standard input closes, then exits; else it
// returns at once. A resumable upload's chunks reach the emulator joined
// (joinChunks), so an upload takes time linear in its size. Call it first
// in TestMain:
//
//	func TestMain(m *testing.M) {
//		objstoretest.ServeIfChild()
//		os.Exit(m.Run())
//	}
func ServeIfChild() {
	if root := os.Getenv(subprocessRootEnv); root != "" {
		os.Exit(serve(root))
	}
}

// serve prints the emulator's host:port and serves it over root until
// standard input closes.
func serve(root string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// PublicHost: the emulator serves downloads to requests for that host.
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", StorageRoot: root,
		PublicHost: ln.Addr().String(), NoListener: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: Bucket})
	parts, err := os.MkdirTemp("", "objstoretest-uploads-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(parts)
	go func() { _ = http.Serve(ln, newJoinChunks(srv.HTTPHandler(), parts)) }()
	fmt.Println(ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}
