package fleet

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError is one problem found in an import: a file, the CSV line (1 is
// the header; 0 means the file as a whole), the column ("" for the whole row
// or file) and what is wrong.
type FieldError struct {
	File    string
	Line    int
	Column  string
	Message string

	pos int // column position, to order a row's errors
}

// String renders the error as "file:line: column: message".
func (e FieldError) String() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Column != "" {
		b.WriteString(": " + e.Column)
	}
	b.WriteString(": " + e.Message)
	return b.String()
}

// MaxReportedErrors caps ImportError.Errors.
const MaxReportedErrors = 100

// ImportError lists what is wrong with the files of a failed Import. Nothing
// was written.
type ImportError struct {
	// Errors holds the first MaxReportedErrors problems, in file, line and
	// column order.
	Errors []FieldError
	// Total counts all problems found.
	Total int
}

func (e *ImportError) Error() string {
	var b strings.Builder
	noun := "errors"
	if e.Total == 1 {
		noun = "error"
	}
	fmt.Fprintf(&b, "fleet: import failed with %d %s; nothing was written", e.Total, noun)
	for _, fe := range e.Errors {
		b.WriteString("\n" + fe.String())
	}
	if more := e.Total - len(e.Errors); more > 0 {
		fmt.Fprintf(&b, "\nand %d more", more)
	}
	return b.String()
}

type errorList struct {
	list  []FieldError
	total int
}

func (l *errorList) add(e FieldError) {
	l.total++
	if len(l.list) < MaxReportedErrors {
		l.list = append(l.list, e)
	}
}

func (l *errorList) err() error {
	if l.total == 0 {
		return nil
	}
	return &ImportError{Errors: l.list, Total: l.total}
}

// fileSpec describes one CSV file: its columns in documentation order and
// which of them must be present.
type fileSpec struct {
	name     string
	columns  []string
	required []string
}

// stem is the file's name without ".csv", as a column-alias file names it.
func (s fileSpec) stem() string { return strings.TrimSuffix(s.name, ".csv") }

type csvFile struct {
	spec   fileSpec
	zone   *time.Location // of timestamps without one; nil: they are errors
	pos    map[string]int // column name → field index
	width  int
	rows   []*row
	header []FieldError
	broken bool // a required column is missing: rows are not validated
}

// row is one data line, with the accessors that parse and validate its
// fields and collect what is wrong.
type row struct {
	f      *csvFile
	line   int
	fields []string
	errs   []FieldError
	bad    map[string]bool // columns already reported as unreadable
}

// readCSV reads the file at path; aliases maps header names (lower case) to
// the spec's columns they stand for.
func readCSV(path string, spec fileSpec, aliases map[string]string) (*csvFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	defer fh.Close()
	f := &csvFile{spec: spec, pos: map[string]int{}}
	r := csv.NewReader(fh)
	r.FieldsPerRecord = -1 // counted here, to report the line
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		f.header = append(f.header, FieldError{File: spec.name, Line: 1, Message: "empty file: a header row is required"})
		f.broken = true
		return f, nil
	}
	if err != nil {
		f.header = append(f.header, parseError(spec.name, err))
		f.broken = true
		return f, nil
	}
	f.width = len(header)
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		h = strings.ToLower(strings.TrimSpace(h))
		if c, ok := aliases[h]; ok {
			h = c
		}
		switch {
		case h == "":
			f.header = append(f.header, FieldError{File: spec.name, Line: 1, Message: fmt.Sprintf("column %d has no name", i+1), pos: i})
		case !slices.Contains(spec.columns, h):
			f.header = append(f.header, FieldError{File: spec.name, Line: 1, Column: h,
				Message: "unknown column (known: " + strings.Join(spec.columns, ", ") + ")", pos: i})
		default:
			if _, dup := f.pos[h]; dup {
				f.header = append(f.header, FieldError{File: spec.name, Line: 1, Column: h, Message: "duplicate column", pos: i})
				continue
			}
			f.pos[h] = i
		}
	}
	for _, c := range spec.required {
		if _, ok := f.pos[c]; !ok {
			f.header = append(f.header, FieldError{File: spec.name, Line: 1, Column: c, Message: "missing required column", pos: len(header)})
			f.broken = true
		}
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.rows = append(f.rows, &row{f: f, errs: []FieldError{parseError(spec.name, err)}})
			break
		}
		line, _ := r.FieldPos(0)
		rw := &row{f: f, line: line, fields: rec}
		if len(rec) != f.width {
			rw.errs = append(rw.errs, FieldError{File: spec.name, Line: line,
				Message: fmt.Sprintf("has %d fields, the header has %d", len(rec), f.width)})
			rw.fields = nil
		}
		f.rows = append(f.rows, rw)
	}
	return f, nil
}

func parseError(file string, err error) FieldError {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return FieldError{File: file, Line: pe.Line, Message: pe.Err.Error() + " (the rest of the file was not read)"}
	}
	return FieldError{File: file, Message: err.Error()}
}

// valid reports whether the row's fields can be read (right field count, no
// parse error).
func (r *row) valid() bool { return r.fields != nil }

func (r *row) fail(col, format string, args ...any) {
	pos, ok := r.f.pos[col]
	if !ok {
		pos = r.f.width
	}
	r.errs = append(r.errs, FieldError{File: r.f.spec.name, Line: r.line, Column: col, Message: fmt.Sprintf(format, args...), pos: pos})
}

// raw is the trimmed value of col, "" when the column is absent.
func (r *row) raw(col string) string {
	i, ok := r.f.pos[col]
	if !ok || r.fields == nil {
		return ""
	}
	return strings.TrimSpace(r.fields[i])
}

// empty reports whether col has no value.
func (r *row) empty(col string) bool { return r.raw(col) == "" }

// get is the value of col, "" when the column is absent or its value is not
// text PostgreSQL accepts (reported once).
func (r *row) get(col string) string {
	v := r.raw(col)
	if r.bad[col] {
		return ""
	}
	switch {
	case !utf8.ValidString(v):
		r.fail(col, "is not valid UTF-8")
	case strings.ContainsRune(v, 0):
		r.fail(col, "contains a NUL character")
	default:
		return v
	}
	if r.bad == nil {
		r.bad = map[string]bool{}
	}
	r.bad[col] = true
	return ""
}

func (r *row) required(col string) string {
	v := r.get(col)
	if r.empty(col) {
		r.fail(col, "required")
	}
	return v
}

func (r *row) enum(col, def string, allowed []string) string {
	v := r.get(col)
	if v == "" {
		return def
	}
	if !slices.Contains(allowed, v) {
		r.fail(col, "invalid value %q: want one of %s", v, strings.Join(allowed, ", "))
		return def
	}
	return v
}

// optEnum is enum for a column without a default: nil when empty.
func (r *row) optEnum(col string, allowed []string) *string {
	v := r.enum(col, "", allowed)
	if v == "" {
		return nil
	}
	return &v
}

func (r *row) date(col string) *time.Time {
	v := r.get(col)
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		r.fail(col, "invalid date %q: want YYYY-MM-DD", v)
		return nil
	}
	return &t
}

// zoneless are the layouts of a timestamp without a zone, read as wall
// clock time in the file's zone (ImportOptions.Location).
var zoneless = []string{time.DateTime, "2006-01-02T15:04:05"}

func zonelessLayout(v string) string {
	for _, l := range zoneless {
		if _, err := time.Parse(l, v); err == nil {
			return l
		}
	}
	return ""
}

func (r *row) timestamp(col string) *time.Time {
	v := r.get(col)
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if layout := zonelessLayout(v); err != nil && layout != "" {
		if r.f.zone == nil {
			r.fail(col, "timestamp %q has no time zone: pass --timezone with the export's zone "+
				"(an IANA name, e.g. Europe/Paris), or write RFC 3339, e.g. 2024-05-01T08:30:00Z", v)
			return nil
		}
		t, err = time.ParseInLocation(layout, v, r.f.zone)
	}
	if err != nil {
		want := "RFC 3339, e.g. 2024-05-01T08:30:00Z"
		if r.f.zone != nil {
			want += ", or YYYY-MM-DD HH:MM:SS (in " + r.f.zone.String() + ")"
		}
		r.fail(col, "invalid timestamp %q: want %s", v, want)
		return nil
	}
	t = t.UTC()
	return &t
}

func (r *row) boolean(col string, def bool) bool {
	switch v := strings.ToLower(r.get(col)); v {
	case "":
		return def
	case "true", "yes", "1":
		return true
	case "false", "no", "0":
		return false
	default:
		r.fail(col, "invalid boolean %q: want true or false", v)
		return def
	}
}

// optInt parses an integer in [lo, hi]; nil when empty or invalid.
func (r *row) optInt(col string, lo, hi int64) *int32 {
	v := r.get(col)
	if v == "" {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.fail(col, "invalid integer %q", v)
		return nil
	}
	if n < lo || n > hi {
		r.fail(col, "%s", rangeMessage(float64(lo), float64(hi), false))
		return nil
	}
	n32 := int32(n)
	return &n32
}

func (r *row) integer(col string, def int32, lo, hi int64) int32 {
	if p := r.optInt(col, lo, hi); p != nil {
		return *p
	}
	return def
}

// numeric limits of the schema's numeric(p, s) columns.
type numeric struct {
	scale int
	max   float64
}

var (
	numeric12_1 = numeric{1, 99_999_999_999.9}
	numeric10_1 = numeric{1, 999_999_999.9}
	numeric6_2  = numeric{2, 9_999.99}
	numeric8_2  = numeric{2, 999_999.99}
	numeric12_2 = numeric{2, 9_999_999_999.99}
)

// optNumber parses a decimal number, rounds it to the column's scale as
// PostgreSQL would and checks it lies in [lo, max] (or (lo, max] when
// positive); nil when empty or invalid.
func (r *row) optNumber(col string, n numeric, positive bool) *float64 {
	v := r.get(col)
	if v == "" {
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		r.fail(col, "invalid number %q", v)
		return nil
	}
	p := math.Pow10(n.scale)
	f = math.Round(f*p) / p
	if f < 0 || (positive && f == 0) || f > n.max {
		r.fail(col, "%s", rangeMessage(0, n.max, positive))
		return nil
	}
	return &f
}

func (r *row) number(col string, def float64, n numeric) float64 {
	if p := r.optNumber(col, n, false); p != nil {
		return *p
	}
	return def
}

func rangeMessage(lo, hi float64, exclusiveLo bool) string {
	h := strconv.FormatFloat(hi, 'f', -1, 64)
	if exclusiveLo {
		return fmt.Sprintf("must be greater than %s and at most %s", strconv.FormatFloat(lo, 'f', -1, 64), h)
	}
	return fmt.Sprintf("must be between %s and %s", strconv.FormatFloat(lo, 'f', -1, 64), h)
}
