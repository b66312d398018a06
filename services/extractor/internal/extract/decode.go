package extract

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// The rows are decoded straight from PostgreSQL's binary format
// (rows.RawValues) into the raw row types, without pgx's Scan: no
// reflection, no time.Time, and no heap allocation per string or per
// nullable field. Strings point into a per-batch byte arena and nullable
// fields into per-batch slabs, both reused once the batch is written:
// parquet-go copies the values into its column buffers on Write.

// A column decodes one result column into a field of the row type T.
type column[T any] struct {
	codec  string // the PostgreSQL type it decodes, for messages
	oids   []uint32
	decode func(row *T, raw []byte, b *buffers) error
}

// A codec decodes the binary format of one PostgreSQL type into V.
type codec[V any] struct {
	name   string
	oids   []uint32
	decode func(raw []byte, b *buffers) (V, error)
	slab   func(b *buffers) *slab[V] // where the nullable fields' values go
}

// The codecs of the columns the raw tables have.
var (
	int8Codec   = codec[int64]{"int8", []uint32{pgtype.Int8OID}, decodeInt8, func(b *buffers) *slab[int64] { return &b.int64s }}
	int4Codec   = codec[int32]{"int4", []uint32{pgtype.Int4OID}, decodeInt4, func(b *buffers) *slab[int32] { return &b.int32s }}
	float8Codec = codec[float64]{"float8", []uint32{pgtype.Float8OID}, decodeFloat8, func(b *buffers) *slab[float64] { return &b.float64s }}
	boolCodec   = codec[bool]{"bool", []uint32{pgtype.BoolOID}, decodeBool, nil}
	dateCodec   = codec[int32]{"date", []uint32{pgtype.DateOID}, decodeDate, func(b *buffers) *slab[int32] { return &b.int32s }}
	tstzCodec   = codec[int64]{"timestamptz", []uint32{pgtype.TimestamptzOID}, decodeTimestamptz, func(b *buffers) *slab[int64] { return &b.int64s }}
	textCodec   = codec[string]{"text", []uint32{pgtype.TextOID, pgtype.VarcharOID}, decodeText, func(b *buffers) *slab[string] { return &b.strings }}
)

var errNull = errors.New("NULL in a column of a non-nullable field")

// required is a column of c's type into the field f returns; NULL is an
// error.
func required[T, V any](c codec[V], f func(*T) *V) column[T] {
	return column[T]{c.name, c.oids, func(row *T, raw []byte, b *buffers) error {
		if raw == nil {
			return errNull
		}
		v, err := c.decode(raw, b)
		*f(row) = v
		return err
	}}
}

// nullable is a column of c's type into the pointer field f returns; NULL
// is nil.
func nullable[T, V any](c codec[V], f func(*T) **V) column[T] {
	return column[T]{c.name, c.oids, func(row *T, raw []byte, b *buffers) error {
		if raw == nil {
			*f(row) = nil
			return nil
		}
		v, err := c.decode(raw, b)
		p := c.slab(b).next()
		*p = v
		*f(row) = p
		return err
	}}
}

// checkColumns checks once per query that its result columns are those
// cols decode, each in the binary format.
func checkColumns[T any](cols []column[T], rows pgx.Rows) error {
	fds := rows.FieldDescriptions()
	if len(fds) != len(cols) {
		return fmt.Errorf("the query returns %d columns, the row type has %d", len(fds), len(cols))
	}
	for i, fd := range fds {
		c := cols[i]
		if !slices.Contains(c.oids, fd.DataTypeOID) {
			return fmt.Errorf("column %d (%s) is of type %s, want %s", i+1, fd.Name, typeName(rows, fd), c.codec)
		}
		if fd.Format != pgx.BinaryFormatCode {
			return fmt.Errorf("column %d (%s) came in format %d, want binary (1)", i+1, fd.Name, fd.Format)
		}
	}
	return nil
}

func typeName(rows pgx.Rows, fd pgconn.FieldDescription) string {
	if t, ok := rows.Conn().TypeMap().TypeForOID(fd.DataTypeOID); ok {
		return t.Name
	}
	return fmt.Sprintf("OID %d", fd.DataTypeOID)
}

// decodeRow decodes one row's raw values into row.
func decodeRow[T any](cols []column[T], row *T, raw [][]byte, b *buffers, rows pgx.Rows) error {
	for i := range cols {
		if err := cols[i].decode(row, raw[i], b); err != nil {
			return fmt.Errorf("column %s: %w", rows.FieldDescriptions()[i].Name, err)
		}
	}
	return nil
}

// PostgreSQL's binary dates and timestamps count from 2000-01-01; the raw
// tables' from 1970-01-01.
const (
	pgEpochDays   = 10_957              // days from 1970-01-01 to 2000-01-01
	pgEpochMicros = 946_684_800_000_000 // microseconds from 1970-01-01 to 2000-01-01
)

func decodeInt8(raw []byte, _ *buffers) (int64, error) {
	if len(raw) != 8 {
		return 0, badLength(raw, 8)
	}
	return int64(binary.BigEndian.Uint64(raw)), nil
}

func decodeInt4(raw []byte, _ *buffers) (int32, error) {
	if len(raw) != 4 {
		return 0, badLength(raw, 4)
	}
	return int32(binary.BigEndian.Uint32(raw)), nil
}

func decodeFloat8(raw []byte, _ *buffers) (float64, error) {
	if len(raw) != 8 {
		return 0, badLength(raw, 8)
	}
	return math.Float64frombits(binary.BigEndian.Uint64(raw)), nil
}

func decodeBool(raw []byte, _ *buffers) (bool, error) {
	if len(raw) != 1 {
		return false, badLength(raw, 1)
	}
	return raw[0] != 0, nil
}

// decodeDate is days since 1970-01-01. PostgreSQL's dates all fit.
func decodeDate(raw []byte, _ *buffers) (int32, error) {
	if len(raw) != 4 {
		return 0, badLength(raw, 4)
	}
	switch d := int32(binary.BigEndian.Uint32(raw)); d {
	case math.MaxInt32:
		return 0, errors.New("date infinity: the raw tables hold finite dates only")
	case math.MinInt32:
		return 0, errors.New("date -infinity: the raw tables hold finite dates only")
	default:
		return d + pgEpochDays, nil
	}
}

// decodeTimestamptz is microseconds since 1970-01-01 UTC; the last 29 years
// of PostgreSQL's range (after 294247-01-10) do not fit.
func decodeTimestamptz(raw []byte, _ *buffers) (int64, error) {
	if len(raw) != 8 {
		return 0, badLength(raw, 8)
	}
	switch us := int64(binary.BigEndian.Uint64(raw)); {
	case us == math.MaxInt64:
		return 0, errors.New("timestamptz infinity: the raw tables hold finite timestamps only")
	case us == math.MinInt64:
		return 0, errors.New("timestamptz -infinity: the raw tables hold finite timestamps only")
	case us > math.MaxInt64-pgEpochMicros:
		return 0, fmt.Errorf("timestamptz %d µs after 2000-01-01 is past the range of microseconds since 1970 in an int64", us)
	default:
		return us + pgEpochMicros, nil
	}
}

// decodeText is raw copied to b's arena.
func decodeText(raw []byte, b *buffers) (string, error) {
	return b.text(raw), nil
}

func badLength(raw []byte, want int) error {
	return fmt.Errorf("%d bytes in the binary format, want %d", len(raw), want)
}

// buffers hold a batch's strings and nullable fields' values until the batch
// is written.
type buffers struct {
	arena    []byte
	int64s   slab[int64]
	int32s   slab[int32]
	float64s slab[float64]
	strings  slab[string]
}

// text is raw copied to the arena, as a string. If the arena grows, the
// strings already made keep the old array.
func (b *buffers) text(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	start := len(b.arena)
	b.arena = append(b.arena, raw...)
	return unsafe.String(&b.arena[start], len(raw))
}

// reset lets the next batch reuse the buffers: the strings and pointers
// made so far must no longer be used.
func (b *buffers) reset() {
	b.arena = b.arena[:0]
	b.int64s.n, b.int32s.n, b.float64s.n, b.strings.n = 0, 0, 0, 0
}

// A slab hands out the elements of an array in turn; when they run out it
// moves to a new array twice the size (the pointers handed out keep the old
// one), which is what the batches after reset use.
type slab[V any] struct {
	buf []V
	n   int
}

func (s *slab[V]) next() *V {
	if s.n == len(s.buf) {
		s.buf = make([]V, max(2*len(s.buf), batchRows))
		s.n = 0
	}
	s.n++
	return &s.buf[s.n-1]
}
