package stack

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Service logs. Every service logs JSON (LOG_FORMAT=json, the lines Cloud
// Run hands to Cloud Logging); the stack appends each service's raw output to
// <StateDir>/logs/<service>.log, where control reads a step's own lines
// (LOG_DIR), and prints a short text rendering of each line on the console.

// maxLogFile is the size over which a service's log file is set aside (as
// <service>.log.1, replacing the previous one) when the stack starts, so the
// files do not grow from start to start without end.
const maxLogFile = 64 << 20

// openLogFile opens dir/<name>.log for appending, setting a file over
// maxLogFile aside first.
func openLogFile(dir, name string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name+".log")
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLogFile {
		if err := os.Rename(path, path+".1"); err != nil {
			return nil, err
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// renderLine turns a JSON log line into a short text line for the console:
// "15:04:05.000 INFO message key=value …", without the service (the prefix
// names it) and with the trace as trace_id and span_id. Anything else (a
// panic, a line of another format) is printed as it is.
func renderLine(line []byte) []byte {
	if len(line) == 0 || line[0] != '{' {
		return line
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return line
	}
	var at, level, msg string
	var attrs []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return line
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return line
		}
		switch key {
		case "time":
			at = shortTime(v)
		case "severity", "level":
			level = textValue(v)
		case "message", "msg":
			msg = textValue(v)
		case "service", "logging.googleapis.com/trace_sampled":
		case "logging.googleapis.com/trace":
			s := textValue(v)
			attrs = append(attrs, "trace_id="+s[strings.LastIndexByte(s, '/')+1:])
		case "logging.googleapis.com/spanId":
			attrs = append(attrs, "span_id="+textValue(v))
		default:
			attrs = append(attrs, key+"="+quoted(v))
		}
	}
	out := strings.Join(append([]string{at, level, msg}, attrs...), " ")
	return []byte(strings.TrimSpace(out))
}

func shortTime(v json.RawMessage) string {
	t, err := time.Parse(time.RFC3339Nano, textValue(v))
	if err != nil {
		return textValue(v)
	}
	return t.Local().Format("15:04:05.000")
}

// textValue is a JSON string's text, or the raw JSON of another value.
func textValue(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// quoted is textValue, quoted when it would not read as one word.
func quoted(v json.RawMessage) string {
	s := textValue(v)
	if s == "" || strings.ContainsAny(s, " =\"\t\n\\") {
		return strconv.Quote(s)
	}
	return s
}
