package steplogs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Files reads the local stack's log files: <Dir>/<service>.log, each
// service's raw JSON output (one line per record, as libs/logging writes
// them). A line is looked at only when it holds "run_id":"<the run>"; a
// line of another format, a line longer than MaxLineBytes and the last line
// while it has no newline yet are skipped.
type Files struct {
	Dir string
	// MaxScanBytes bounds the bytes read: the file's last MaxScanBytes
	// (Result.Partial when the file is larger). Default 64 MiB.
	MaxScanBytes int64
	// MaxLineBytes bounds one line. Default 64 KiB.
	MaxLineBytes int
}

// Backend is "files".
func (f Files) Backend() string { return "files" }

// Read scans the service's file for the run's lines.
func (f Files) Read(ctx context.Context, q Query) (Result, error) {
	if err := q.check(); err != nil {
		return Result{}, err
	}
	c := newCollector(q)
	file, err := os.Open(filepath.Join(f.Dir, q.Service+".log"))
	if errors.Is(err, os.ErrNotExist) {
		return c.result(), nil
	}
	if err != nil {
		return Result{}, err
	}
	defer file.Close()
	rd, partial, err := f.tail(file)
	if err != nil {
		return Result{}, err
	}
	c.res.Partial = partial
	needle := append([]byte(`"run_id":`), jsonString(q.RunID)...)
	for n := 0; ; n++ {
		line, err := readLine(rd)
		if errors.Is(err, io.EOF) {
			break // a last line without its newline is still being written
		}
		if n%4096 == 0 && ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		if err != nil || !bytes.Contains(line, needle) {
			continue
		}
		if l, ok := parseJSONLine(line); ok && !l.Time.Before(q.Since) {
			c.add(l)
			if c.done() {
				break
			}
		}
	}
	return c.result(), nil
}

// tail positions a reader on the first whole line of the file's last
// MaxScanBytes, bounded to the file's size now (lines written meanwhile are
// left for the next read).
func (f Files) tail(file *os.File) (*bufio.Reader, bool, error) {
	maxScan, maxLine := f.MaxScanBytes, f.MaxLineBytes
	if maxScan <= 0 {
		maxScan = 64 << 20
	}
	if maxLine <= 0 {
		maxLine = 64 << 10
	}
	fi, err := file.Stat()
	if err != nil {
		return nil, false, err
	}
	start := max(0, fi.Size()-maxScan)
	rd := bufio.NewReaderSize(io.NewSectionReader(file, start, fi.Size()-start), maxLine)
	if start > 0 {
		if _, err := readLine(rd); err != nil && !errors.Is(err, errLongLine) {
			return rd, true, nil // nothing whole in the window
		}
	}
	return rd, start > 0, nil
}

// errLongLine marks a line longer than the reader's buffer, skipped whole.
var errLongLine = errors.New("steplogs: line too long")

// readLine returns the next line with its newline; io.EOF for a last line
// without one; errLongLine (after skipping it) for one longer than the
// buffer.
func readLine(rd *bufio.Reader) ([]byte, error) {
	line, err := rd.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	for errors.Is(err, bufio.ErrBufferFull) {
		_, err = rd.ReadSlice('\n')
	}
	if err != nil {
		return nil, err
	}
	return nil, errLongLine
}

// parseJSONLine reads a libs/logging JSON line: time, severity (or slog's
// level), message (or msg), and the other fields as attributes (without the
// service, which the file names).
func parseJSONLine(b []byte) (Line, bool) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return Line{}, false
	}
	l := Line{Level: "INFO", Attrs: m}
	for _, k := range []string{"time", "severity", "level", "message", "msg", "service"} {
		v, ok := m[k].(string)
		if !ok {
			continue
		}
		delete(m, k)
		switch k {
		case "time":
			l.Time, _ = time.Parse(time.RFC3339Nano, v)
		case "severity", "level":
			l.Level = v
		case "message", "msg":
			l.Message = v
		}
	}
	if l.Level == "WARN" {
		l.Level = "WARNING"
	}
	return l, true
}

// jsonString is s as slog's JSON handler writes it (no HTML escaping).
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
