package stack

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/password"
)

// Each start gets an admin user with a random password, like its token.
func TestDefaultAdminUser(t *testing.T) {
	a, b := Options{Root: "/x"}, Options{Root: "/x"}
	if err := a.defaults(); err != nil {
		t.Fatal(err)
	}
	if err := b.defaults(); err != nil {
		t.Fatal(err)
	}
	if a.AdminUser != "admin" || !regexp.MustCompile(`^[A-Za-z0-9_-]{24}$`).MatchString(a.AdminPassword) {
		t.Fatalf("admin user %q, password %q", a.AdminUser, a.AdminPassword)
	}
	if a.AdminPassword == b.AdminPassword {
		t.Fatal("two starts have the same password")
	}
	c := Options{Root: "/x", AdminUser: "me", AdminPassword: "pw"}
	if err := c.defaults(); err != nil || c.AdminUser != "me" || c.AdminPassword != "pw" {
		t.Fatalf("given user and password not kept: %+v %v", c, err)
	}
}

func TestUserEntry(t *testing.T) {
	entry, err := userEntry("admin", "s3cret", "admin")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(entry, ":")
	if len(f) != 3 || f[0] != "admin" || f[2] != "admin" {
		t.Fatalf("entry %q, want admin:<hash>:admin", entry)
	}
	if ok, err := password.Verify(f[1], "s3cret"); !ok || err != nil {
		t.Fatalf("the hash does not verify the password: %v %v", ok, err)
	}
}

// A service's writer keeps its raw lines in its log file and prints them
// rendered on the console; a line is written once complete.
func TestServiceWriterKeepsRawLinesAndRendersConsole(t *testing.T) {
	var console bytes.Buffer
	s := &Stack{Options: Options{Out: &console}, LogDir: t.TempDir()}
	w, err := s.serviceWriter("pmgen")
	if err != nil {
		t.Fatal(err)
	}
	defer s.logFiles[0].Close()
	line := `{"time":"2026-12-02T07:50:01.5Z","severity":"INFO","message":"work orders generated","service":"pmgen",` +
		`"run_id":"manual__x","created":3,"note":"two words","logging.googleapis.com/trace":"projects/p/traces/abc",` +
		`"logging.googleapis.com/spanId":"def","logging.googleapis.com/trace_sampled":true}`
	for _, part := range []string{line[:40], line[40:] + "\npanic: boom\n", "partial"} {
		if _, err := w.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(s.LogDir, "pmgen.log"))
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != line+"\npanic: boom\n" {
		t.Fatalf("log file %q", raw)
	}
	at := time.Date(2026, 12, 2, 7, 50, 1, 5e8, time.UTC).Local().Format("15:04:05.000")
	want := "pmgen      | " + at + ` INFO work orders generated run_id=manual__x created=3 note="two words" trace_id=abc span_id=def` +
		"\npmgen      | panic: boom\n"
	if console.String() != want {
		t.Fatalf("console\n%q\nwant\n%q", console.String(), want)
	}
}

// A log file over maxLogFile is set aside when the stack starts.
func TestOpenLogFileSetsALargeFileAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "control.log")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), maxLogFile+1), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openLogFile(dir, "control")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("new file: %v %v", fi, err)
	}
	if fi, err := os.Stat(path + ".1"); err != nil || fi.Size() != maxLogFile+1 {
		t.Fatalf("old file: %v %v", fi, err)
	}
}
