package email_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
)

// part is a leaf of a parsed MIME tree.
type part struct {
	contentType string
	params      map[string]string
	disposition string
	dispParams  map[string]string
	contentID   string
	body        []byte
}

// walk parses a MIME entity into its leaves, checking the structure: path
// records the media types from the root.
func walk(t *testing.T, header mail.Header, body io.Reader, path *[]string) []part {
	t.Helper()
	mt, params, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("content type %q: %v", header.Get("Content-Type"), err)
	}
	*path = append(*path, mt)
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		var leaves []part
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, walk(t, mail.Header(p.Header), p, path)...)
		}
		return leaves
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	switch enc := header.Get("Content-Transfer-Encoding"); enc {
	case "quoted-printable":
		if raw, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(raw))); err != nil {
			t.Fatal(err)
		}
	case "base64":
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\r\n") {
			if len(line) > 76 {
				t.Fatalf("base64 line of %d characters", len(line))
			}
		}
		if raw, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(string(raw), "\r\n", "")); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("transfer encoding %q", enc)
	}
	p := part{contentType: mt, params: params, body: raw, contentID: header.Get("Content-ID")}
	if d := header.Get("Content-Disposition"); d != "" {
		p.disposition, p.dispParams, _ = mime.ParseMediaType(d)
	}
	return []part{p}
}

func readEML(t *testing.T, path string) (*mail.Message, []part, []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line %d is %d characters long (RFC 5322 limit 998)", i, len(line))
		}
	}
	if strings.Contains(strings.ReplaceAll(string(raw), "\r\n", ""), "\n") {
		t.Fatal("bare LF in the message: lines must end in CRLF")
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var path2 []string
	leaves := walk(t, msg.Header, msg.Body, &path2)
	return msg, leaves, path2
}

func TestOutboxWritesRFC5322Messages(t *testing.T) {
	dir := t.TempDir()
	out, err := email.NewOutbox(filepath.Join(dir, "outbox"))
	if err != nil {
		t.Fatal(err)
	}
	m := message()
	m.Date = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	if err := out.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	msg, leaves, structure := readEML(t, out.Path(m.Key))

	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Errorf("subject %q (%v), want %q", subject, err, m.Subject)
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "cmmsflow@fleet.test" {
		t.Errorf("from %v %v", from, err)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "ann@fleet.test" || to[0].Name != "Ann Lee" || to[1].Address != "ops@fleet.test" {
		t.Errorf("to %v %v", to, err)
	}
	if d, err := msg.Header.Date(); err != nil || !d.Equal(m.Date) {
		t.Errorf("date %v %v", d, err)
	}
	if !regexp.MustCompile(`^<[0-9a-f]{32}@cmmsflow>$`).MatchString(msg.Header.Get("Message-Id")) || msg.Header.Get("Mime-Version") != "1.0" {
		t.Errorf("headers %v", msg.Header)
	}
	want := "multipart/mixed multipart/alternative text/plain text/html application/pdf image/png"
	if got := strings.Join(structure, " "); got != want {
		t.Fatalf("structure %q, want %q", got, want)
	}
	if string(leaves[0].body) != strings.ReplaceAll(m.Text, "\n", "\r\n") || leaves[0].params["charset"] != "utf-8" {
		t.Errorf("text part %q", leaves[0].body)
	}
	if string(leaves[1].body) != m.HTML {
		t.Errorf("html part %q", leaves[1].body)
	}
	for i, a := range m.Attachments {
		l := leaves[2+i]
		if !bytes.Equal(l.body, a.Content) || l.dispParams["filename"] != a.Filename || l.params["name"] != a.Filename {
			t.Errorf("attachment %d: %q %v %v", i, l.body, l.dispParams, l.params)
		}
	}
	if leaves[2].disposition != "attachment" || leaves[3].disposition != "inline" || leaves[3].contentID != "<chart1>" {
		t.Errorf("dispositions %q %q %q", leaves[2].disposition, leaves[3].disposition, leaves[3].contentID)
	}
}

func TestOutboxWithoutAttachmentsIsAlternative(t *testing.T) {
	out, err := email.NewOutbox(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := message()
	m.Attachments = nil
	if err := out.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	_, leaves, structure := readEML(t, out.Path(m.Key))
	if got := strings.Join(structure, " "); got != "multipart/alternative text/plain text/html" || len(leaves) != 2 {
		t.Fatalf("structure %q", got)
	}
	m.HTML = ""
	m.Key += "-text"
	if err := out.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	_, leaves, structure = readEML(t, out.Path(m.Key))
	if got := strings.Join(structure, " "); got != "text/plain" || !strings.Contains(string(leaves[0].body), "WO-1 brake inspection") {
		t.Fatalf("structure %q, body %q", got, leaves[0].body)
	}
}

func TestOutboxRedeliveryOverwrites(t *testing.T) {
	dir := t.TempDir()
	out, err := email.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := message()
	for i := range 3 {
		m.Text = strings.Repeat("again ", i+1)
		if err := out.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	other := message()
	other.Key = "run-1:email:technician-8:wo_digest"
	if err := out.Send(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 {
		t.Fatalf("files %v, want one per key and no temporary files", names)
	}
	_, leaves, _ := readEML(t, out.Path(m.Key))
	if string(leaves[0].body) != "again again again " {
		t.Fatalf("file holds %q, want the last send", leaves[0].body)
	}
}

func TestFileName(t *testing.T) {
	a := email.FileName("manual__2026-11-27T06:00:00+00:00:email:technician-3:wo_digest")
	if a != email.FileName("manual__2026-11-27T06:00:00+00:00:email:technician-3:wo_digest") {
		t.Fatal("file name is not deterministic")
	}
	if !regexp.MustCompile(`^manual__2026-11-27T06_00_00_00_00_email_technician-3_wo_digest-[0-9a-f]{12}\.eml$`).MatchString(a) {
		t.Fatalf("file name %q", a)
	}
	if email.FileName("a:b") == email.FileName("a/b") {
		t.Fatal("keys that differ only in unsafe characters share a file")
	}
	for _, k := range []string{"../../etc/passwd", strings.Repeat("x", 500), "alert:run/1", ".hidden"} {
		n := email.FileName(k)
		if strings.ContainsAny(n, `/\`) || strings.HasPrefix(n, ".") || len(n) > 140 {
			t.Fatalf("unsafe file name %q for key %q", n, k)
		}
	}
}

func TestOutboxRefusesWhatSendGridWould(t *testing.T) {
	dir := t.TempDir()
	out, err := email.NewOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := message()
	m.Attachments = []email.Attachment{{Filename: "big.pdf", Content: make([]byte, 23<<20)}}
	if err := out.Send(context.Background(), m); !errors.Is(err, email.ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	m = message()
	m.To = nil
	if err := out.Send(context.Background(), m); !errors.Is(err, email.ErrInvalid) {
		t.Fatalf("error %v, want ErrInvalid", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("refused messages left files: %v", entries)
	}
}
