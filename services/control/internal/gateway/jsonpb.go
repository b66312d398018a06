package gateway

import (
	"encoding/base64"
	"errors"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// JSONMarshaler is the gateway's JSON: protojson with proto field names and
// unpopulated fields emitted. Responses whose messages use only the field
// kinds the API uses (scalars, strings, bytes, nested messages,
// google.protobuf.Timestamp, repeated fields and string-keyed maps) are
// written by appendMessage, which gives the same JSON value as protojson at
// about a third of its CPU (protojson sorts every message's fields on each
// call; it was the largest cost of GET /v1/runs under load). Anything else —
// enums, oneofs, well-known types other than Timestamp, a value protojson
// would refuse — goes to protojson itself, so errors are protojson's too.
// Requests are read by protojson.
type JSONMarshaler struct {
	runtime.JSONPb
}

func NewJSONMarshaler() *JSONMarshaler {
	return &JSONMarshaler{runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{},
	}}
}

// Marshal writes v as JSON.
func (m *JSONMarshaler) Marshal(v any) ([]byte, error) {
	if msg, ok := v.(proto.Message); ok && simpleMessage(msg.ProtoReflect().Descriptor()) {
		if b, err := appendMessage(make([]byte, 0, 512), msg.ProtoReflect()); err == nil {
			return b, nil
		}
	}
	return m.JSONPb.Marshal(v)
}

// errFallback means "let protojson write this value" (it would refuse it or
// needs its own rules).
var errFallback = errors.New("jsonpb: not on the fast path")

const timestampName protoreflect.FullName = "google.protobuf.Timestamp"

// simple caches simpleMessage by message name.
var simple sync.Map // protoreflect.FullName → bool

// simpleMessage reports whether every field of md, recursively, is a kind
// appendMessage writes.
func simpleMessage(md protoreflect.MessageDescriptor) bool {
	if v, ok := simple.Load(md.FullName()); ok {
		return v.(bool)
	}
	simple.Store(md.FullName(), false) // a recursive message is not simple
	ok := checkMessage(md)
	simple.Store(md.FullName(), ok)
	return ok
}

func checkMessage(md protoreflect.MessageDescriptor) bool {
	if md.FullName() == timestampName {
		return true
	}
	if md.FullName().Parent() == "google.protobuf" || md.Syntax() != protoreflect.Proto3 ||
		md.Oneofs().Len() > 0 || md.ExtensionRanges().Len() > 0 {
		return false
	}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsMap() {
			if fd.MapKey().Kind() != protoreflect.StringKind || !simpleKind(fd.MapValue()) {
				return false
			}
			continue
		}
		if !simpleKind(fd) {
			return false
		}
	}
	return true
}

func simpleKind(fd protoreflect.FieldDescriptor) bool {
	switch fd.Kind() {
	case protoreflect.EnumKind, protoreflect.GroupKind:
		return false
	case protoreflect.MessageKind:
		return simpleMessage(fd.Message())
	}
	return true
}

// appendMessage writes m as protojson does with UseProtoNames and
// EmitUnpopulated: fields in declaration order, each one present.
func appendMessage(b []byte, m protoreflect.Message) ([]byte, error) {
	md := m.Descriptor()
	if md.FullName() == timestampName {
		return appendTimestamp(b, m)
	}
	b = append(b, '{')
	fields := md.Fields()
	var err error
	for i := range fields.Len() {
		fd := fields.Get(i)
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, fd.Name()...)
		b = append(b, '"', ':')
		switch {
		case fd.IsMap() && !m.Has(fd):
			b = append(b, '{', '}')
		case fd.IsMap():
			b, err = appendMap(b, m.Get(fd).Map(), fd)
		case fd.IsList() && !m.Has(fd):
			b = append(b, '[', ']')
		case fd.IsList():
			b, err = appendList(b, m.Get(fd).List(), fd)
		case fd.Kind() == protoreflect.MessageKind && !m.Has(fd):
			b = append(b, "null"...)
		default:
			b, err = appendSingular(b, m.Get(fd), fd)
		}
		if err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendList(b []byte, l protoreflect.List, fd protoreflect.FieldDescriptor) ([]byte, error) {
	b = append(b, '[')
	var err error
	for i := range l.Len() {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendSingular(b, l.Get(i), fd); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendMap writes the entries in key order, as protojson does.
func appendMap(b []byte, mp protoreflect.Map, fd protoreflect.FieldDescriptor) ([]byte, error) {
	type entry struct {
		k string
		v protoreflect.Value
	}
	entries := make([]entry, 0, mp.Len())
	mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		entries = append(entries, entry{k.String(), v})
		return true
	})
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.k, b.k) })
	b = append(b, '{')
	var err error
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendString(b, e.k); err != nil {
			return nil, err
		}
		b = append(b, ':')
		if b, err = appendSingular(b, e.v, fd.MapValue()); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendSingular(b []byte, v protoreflect.Value, fd protoreflect.FieldDescriptor) ([]byte, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return appendString(b, v.String())
	case protoreflect.BoolKind:
		return strconv.AppendBool(b, v.Bool()), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendInt(b, v.Int(), 10), '"'), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		b = append(b, '"')
		return append(strconv.AppendUint(b, v.Uint(), 10), '"'), nil
	case protoreflect.DoubleKind:
		return appendFloat(b, v.Float(), 64), nil
	case protoreflect.FloatKind:
		return appendFloat(b, v.Float(), 32), nil
	case protoreflect.BytesKind:
		b = append(b, '"')
		return append(base64.StdEncoding.AppendEncode(b, v.Bytes()), '"'), nil
	case protoreflect.MessageKind:
		return appendMessage(b, v.Message())
	}
	return nil, errFallback
}

// appendFloat is protojson's: NaN and infinities as strings, exponent form
// outside [1e-6, 1e21).
func appendFloat(b []byte, f float64, bitSize int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bitSize == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bitSize == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bitSize)
	if format == 'e' { // 1e-07 → 1e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString escapes as protojson does: quote, backslash and control
// characters only; invalid UTF-8 is left to protojson (which refuses it).
func appendString(b []byte, s string) ([]byte, error) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, errFallback
			}
			i += n
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\')
		switch c {
		case '"', '\\':
			b = append(b, c)
		case '\b':
			b = append(b, 'b')
		case '\f':
			b = append(b, 'f')
		case '\n':
			b = append(b, 'n')
		case '\r':
			b = append(b, 'r')
		case '\t':
			b = append(b, 't')
		default:
			b = append(b, 'u')
			b = append(b, "0000"[1+(bits.Len32(uint32(c))-1)/4:]...)
			b = strconv.AppendUint(b, uint64(c), 16)
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), nil
}

// Timestamp bounds protojson accepts: 0001-01-01 to 9999-12-31, UTC.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// appendTimestamp writes RFC 3339 in UTC with 0, 3, 6 or 9 fractional
// digits, as protojson does.
func appendTimestamp(b []byte, m protoreflect.Message) ([]byte, error) {
	fds := m.Descriptor().Fields()
	secs := m.Get(fds.ByNumber(1)).Int()
	nanos := m.Get(fds.ByNumber(2)).Int()
	if secs < minTimestampSeconds || secs > maxTimestampSeconds || nanos < 0 || nanos >= 1e9 {
		return nil, errFallback
	}
	t := time.Unix(secs, nanos).UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = append(b, '"')
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	switch {
	case nanos == 0:
	case nanos%1e6 == 0:
		b = appendFraction(b, nanos/1e6, 3)
	case nanos%1e3 == 0:
		b = appendFraction(b, nanos/1e3, 6)
	default:
		b = appendFraction(b, nanos, 9)
	}
	return append(b, 'Z', '"'), nil
}

func appendFraction(b []byte, v int64, digits int) []byte {
	return appendDigits(append(b, '.'), int(v), digits)
}

// appendDigits writes v (≥ 0) zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	buf[i] = byte('0' + v)
	return append(b, buf[i:]...)
}
