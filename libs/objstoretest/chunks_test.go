package objstoretest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// joined serves an emulator behind joinChunks and counts the requests of
// uploads' content that reach the emulator.
func joined(t *testing.T) (srv *httptest.Server, contentRequests *atomic.Int64) {
	t.Helper()
	srv = httptest.NewUnstartedServer(nil)
	// PublicHost: the emulator serves downloads to requests for that host.
	emu, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", NoListener: true,
		PublicHost: srv.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	emu.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: Bucket})
	contentRequests = new(atomic.Int64)
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("upload_id") != "" {
			contentRequests.Add(1)
		}
		emu.HTTPHandler().ServeHTTP(w, r)
	})
	srv.Config.Handler = newJoinChunks(count, t.TempDir())
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, contentRequests
}

// An object written in 256 KiB chunks reads back whole, and the emulator
// takes it in one request: sizes that end inside a chunk and on a chunk's
// end (the client's last request is empty).
func TestJoinChunksClient(t *testing.T) {
	const chunk = 256 << 10
	srv, contentRequests := joined(t)
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL, "http://"))
	ctx := context.Background()
	client, err := storage.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for _, size := range []int{3*chunk + chunk/2, 3 * chunk} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(rand.IntN(256))
			}
			before := contentRequests.Load()
			obj := client.Bucket(Bucket).Object(fmt.Sprintf("o%d", size))
			w := obj.NewWriter(ctx)
			w.ChunkSize = chunk
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if n := contentRequests.Load() - before; n != 1 {
				t.Errorf("the emulator took %d requests of content, want 1", n)
			}
			r, err := obj.NewReader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, size)
			}
		})
	}
}

// A chunk sent again replaces what it sent; a chunk after a gap is refused.
func TestJoinChunksResentAndGap(t *testing.T) {
	srv, _ := joined(t)
	upload := func(name string) string {
		resp, err := http.Post(srv.URL+"/upload/storage/v1/b/"+Bucket+"/o?uploadType=resumable&name="+name, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || loc.Query().Get("upload_id") == "" {
			t.Fatalf("start upload: %s, Location %q", resp.Status, resp.Header.Get("Location"))
		}
		return srv.URL + loc.RequestURI()
	}
	put := func(to, rng, body string) *http.Response {
		req, _ := http.NewRequest(http.MethodPut, to, strings.NewReader(body))
		req.Header.Set("Content-Range", rng)
		req.Header.Set("X-GUploader-No-308", "yes")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	to := upload("resent")
	for _, c := range []struct{ rng, body, wantRange string }{
		{"bytes 0-4/*", "hello", "bytes=0-4"},
		{"bytes 5-9/*", "XXXXX", "bytes=0-9"},
		{"bytes 5-9/*", " worl", "bytes=0-9"},
	} {
		resp := put(to, c.rng, c.body)
		if resp.Header.Get("X-Http-Status-Code-Override") != "308" || resp.Header.Get("Range") != c.wantRange {
			t.Fatalf("%s: %s, Range %q, want resume incomplete with %q", c.rng, resp.Status, resp.Header.Get("Range"), c.wantRange)
		}
	}
	if resp := put(to, "bytes 10-10/11", "d"); resp.StatusCode != http.StatusOK {
		t.Fatalf("last chunk: %s", resp.Status)
	}
	resp, err := http.Get(srv.URL + "/storage/v1/b/" + Bucket + "/o/resent?alt=media")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "hello world" {
		t.Fatalf("object %q, want %q", got, "hello world")
	}

	to = upload("gap")
	put(to, "bytes 0-4/*", "hello")
	if resp := put(to, "bytes 7-9/*", "abc"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("chunk after a gap: %s, want 400", resp.Status)
	}
}

func TestParseChunkRange(t *testing.T) {
	for _, c := range []struct {
		h    string
		want chunkRange
		ok   bool
	}{
		{"bytes 0-9/*", chunkRange{first: 0, last: 9}, true},
		{"bytes 10-19/20", chunkRange{first: 10, last: 19, final: true}, true},
		{"bytes */20", chunkRange{final: true, empty: true}, true},
		{"bytes */*", chunkRange{}, false},
		{"bytes 9-0/*", chunkRange{}, false},
		{"bytes x-9/*", chunkRange{}, false},
		{"bytes 0-9", chunkRange{}, false},
		{"", chunkRange{}, false},
	} {
		got, ok := parseChunkRange(c.h)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("parseChunkRange(%q) = %+v, %v; want %+v, %v", c.h, got, ok, c.want, c.ok)
		}
	}
}
