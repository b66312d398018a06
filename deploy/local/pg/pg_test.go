package pg

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A clone under a private folder (mode 0700, as /root or any `mktemp -d`)
// must get a working cluster. As root the server runs as the postgres user,
// who cannot enter that folder: the data then lives in its home and the
// folder asked for links there. As another user the folder is used as it is.
func TestClusterInPrivateFolder(t *testing.T) {
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: filepath.Join(private, "clone", ".local", "test-pg"), Fast: true}
	ctx := context.Background()
	started, err := c.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if started {
			if err := c.Stop(context.Background()); err != nil {
				t.Error(err)
			}
		}
		if err := c.Remove(); err != nil {
			t.Error(err)
		}
		if _, err := os.Lstat(c.data); !os.IsNotExist(err) {
			t.Errorf("Remove left %s (%v)", c.data, err)
		}
	})
	if !started {
		t.Fatal("Start found a server running on a new folder")
	}
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %d, %v", one, err)
	}
	conn.Close(ctx)

	fi, err := os.Lstat(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	linked := fi.Mode()&os.ModeSymlink != 0
	if root := os.Geteuid() == 0; linked != root {
		t.Fatalf("as root=%v the data folder is a link=%v (data in %s)", root, linked, c.data)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "PG_VERSION")); err != nil {
		t.Fatalf("the data is not reachable through %s: %v", c.Dir, err)
	}

	// A second start (make up after make up) finds the same data through the
	// link and the running server.
	again := &Cluster{Dir: c.Dir}
	if st, err := again.Start(ctx); err != nil || st {
		t.Fatalf("second Start: started=%v, %v", st, err)
	}
	if again.data != c.data || again.Port != c.Port {
		t.Fatalf("second Start: data %s port %d, want %s %d", again.data, again.Port, c.data, c.Port)
	}
}
