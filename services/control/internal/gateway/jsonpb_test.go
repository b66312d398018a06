package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

// sameJSON fails t unless a and b are the same JSON value, numbers compared
// as written.
func sameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	decode := func(b []byte) any {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("%s: %v in %s", what, err, b)
		}
		return v
	}
	if g, w := decode(got), decode(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// TestJSONMarshalerMatchesProtojson writes random values of every message of
// the control API with the fast path and with protojson, and compares.
func TestJSONMarshalerMatchesProtojson(t *testing.T) {
	m := NewJSONMarshaler()
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	msgs := controlv1.File_cmmsflow_control_v1_control_proto.Messages()
	fast := 0
	for i := range msgs.Len() {
		md := msgs.Get(i)
		if !simpleMessage(md) {
			continue
		}
		fast++
		for n := range 200 {
			msg := dynamicpb.NewMessage(md)
			fill(r, msg, 0)
			got, err := appendMessage(nil, msg)
			if err != nil {
				t.Fatalf("%s #%d: %v", md.FullName(), n, err)
			}
			want, err := m.JSONPb.Marshal(msg)
			if err != nil {
				t.Fatalf("%s #%d: protojson: %v", md.FullName(), n, err)
			}
			sameJSON(t, string(md.FullName()), got, want)
		}
	}
	// Every response the API sends takes the fast path.
	for _, resp := range []proto.Message{
		&controlv1.ListRunsResponse{}, &controlv1.Run{}, &controlv1.ListPipelinesResponse{},
		&controlv1.Pipeline{}, &controlv1.TriggerPipelineResponse{}, &controlv1.ListNotificationsResponse{},
		&controlv1.ListReportsResponse{},
	} {
		if !simpleMessage(resp.ProtoReflect().Descriptor()) {
			t.Errorf("%T is not on the fast path", resp)
		}
	}
	if fast < 10 {
		t.Fatalf("only %d messages on the fast path", fast)
	}
}

// TestJSONMarshalerEdgeCases: escapes, float forms, timestamp precisions,
// and the values protojson refuses (refused the same way).
func TestJSONMarshalerEdgeCases(t *testing.T) {
	m := NewJSONMarshaler()
	strs := []string{"", "plain", `quote " and \ backslash`, "tab\tnl\ncr\r\b\f", "\x00\x01\x1f\x7f",
		"<script>&amp;</script>", "unicode ☃ é \u2028 \u2029 😀", strings.Repeat("x", 5000)}
	for _, s := range strs {
		run := &controlv1.Run{RunId: s, Error: s, Conf: map[string]string{s: s, "b": "1", "a": "2"}}
		got, err := m.Marshal(run)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		want, _ := m.JSONPb.Marshal(run)
		sameJSON(t, fmt.Sprintf("string %q", s), got, want)
	}
	floats := []float64{0, math.Copysign(0, -1), 1, -1.5, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 1.2345e300,
		math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1), 0.1 + 0.2}
	for _, f := range floats {
		st := &controlv1.Step{Figures: map[string]float64{"f": f}}
		got, err := m.Marshal(st)
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		want, _ := m.JSONPb.Marshal(st)
		sameJSON(t, fmt.Sprintf("float %v", f), got, want)
	}
	for _, ts := range []*timestamppb.Timestamp{
		{}, {Seconds: 1, Nanos: 1}, {Seconds: 1, Nanos: 1000}, {Seconds: 1, Nanos: 1e6}, {Seconds: 1, Nanos: 120e6},
		{Seconds: 1, Nanos: 999_999_999}, {Seconds: minTimestampSeconds}, {Seconds: maxTimestampSeconds, Nanos: 999_999_999},
		timestamppb.Now(),
	} {
		run := &controlv1.Run{QueuedAt: ts}
		got, err := m.Marshal(run)
		if err != nil {
			t.Fatalf("%v: %v", ts, err)
		}
		want, _ := m.JSONPb.Marshal(run)
		sameJSON(t, fmt.Sprintf("timestamp %v", ts), got, want)
	}
	// protojson refuses these; so does the marshaler, with protojson's error.
	for name, msg := range map[string]proto.Message{
		"invalid UTF-8":         &controlv1.Run{RunId: "a\xffb"},
		"invalid UTF-8 map key": &controlv1.Run{Conf: map[string]string{"\xff": "v"}},
		"timestamp too late":    &controlv1.Run{QueuedAt: &timestamppb.Timestamp{Seconds: maxTimestampSeconds + 1}},
		"negative nanos":        &controlv1.Run{QueuedAt: &timestamppb.Timestamp{Seconds: 1, Nanos: -1}},
	} {
		_, err := m.Marshal(msg)
		_, want := m.JSONPb.Marshal(msg)
		if err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("%s: error %v, protojson's %v", name, err, want)
		}
	}
}

// TestJSONMarshalerFallsBack: a message outside the fast path (the
// gateway's error body: google.rpc.Status with Any details) is protojson's.
func TestJSONMarshalerFallsBack(t *testing.T) {
	m := NewJSONMarshaler()
	st, err := status.New(codes.InvalidArgument, "bad").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "conf", Description: "unknown key"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if simpleMessage(st.Proto().ProtoReflect().Descriptor()) {
		t.Fatal("google.rpc.Status with Any details is on the fast path")
	}
	got, err := m.Marshal(st.Proto())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.JSONPb.Marshal(st.Proto())
	sameJSON(t, "status", got, want)
	if !strings.Contains(string(got), `"@type":"type.googleapis.com/google.rpc.BadRequest"`) &&
		!strings.Contains(string(got), `"@type": "type.googleapis.com/google.rpc.BadRequest"`) {
		t.Fatalf("details not written: %s", got)
	}
}

// fill sets random values in every field of m (messages to depth 3).
func fill(r *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	if m.Descriptor().FullName() == timestampName {
		m.Set(fields.ByNumber(1), protoreflect.ValueOfInt64(minTimestampSeconds+r.Int64N(maxTimestampSeconds-minTimestampSeconds)))
		nanos := []int64{0, r.Int64N(1000) * 1e6, r.Int64N(1e6) * 1e3, r.Int64N(1e9)}[r.IntN(4)]
		m.Set(fields.ByNumber(2), protoreflect.ValueOfInt32(int32(nanos)))
		return
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		if r.IntN(4) == 0 {
			continue // unpopulated
		}
		switch {
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range r.IntN(4) {
				mp.Set(protoreflect.ValueOfString(randString(r)).MapKey(), randValue(r, mp.NewValue(), fd.MapValue(), depth))
			}
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range r.IntN(4) {
				l.Append(randValue(r, l.NewElement(), fd, depth))
			}
		case fd.Kind() == protoreflect.MessageKind:
			if depth < 3 {
				fill(r, m.Mutable(fd).Message(), depth+1)
			}
		default:
			m.Set(fd, randValue(r, protoreflect.Value{}, fd, depth))
		}
	}
}

func randValue(r *rand.Rand, zero protoreflect.Value, fd protoreflect.FieldDescriptor, depth int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(randString(r))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(r.IntN(2) == 0)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(r.Uint32()))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(r.Uint64()))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(r.Uint32())
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(r.Uint64())
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(randFloat(r))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(randFloat(r)))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(randString(r)))
	case protoreflect.MessageKind:
		fill(r, zero.Message(), depth+1)
		return zero
	}
	panic("unexpected kind " + fd.Kind().String())
}

func randFloat(r *rand.Rand) float64 {
	switch r.IntN(6) {
	case 0:
		return float64(r.IntN(1000))
	case 1:
		return math.Float64frombits(r.Uint64()) // anything, NaN and infinities included
	case 2:
		return r.Float64() * math.Pow(10, float64(r.IntN(60)-30))
	}
	return r.NormFloat64() * 1000
}

func randString(r *rand.Rand) string {
	alphabet := []rune("abcXYZ019 _-:./\"\\\n\t\x00\x1féß☃😀\u2028<>&")
	rs := make([]rune, r.IntN(12))
	for i := range rs {
		rs[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(rs)
}

// BenchmarkMarshalListRuns: a GET /v1/runs page of 20 runs, fast path
// against protojson (the baseline), same run.
func BenchmarkMarshalListRuns(b *testing.B) {
	m := NewJSONMarshaler()
	resp := &controlv1.ListRunsResponse{NextPageToken: "eyJ0IjoiMjAyNi0xMS0yN1QwNzowMDowMFoiLCJpZCI6InNjaGVkdWxlZF9fIn0"}
	t0 := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	for i := range 20 {
		t := t0.Add(-time.Duration(i) * time.Hour)
		resp.Runs = append(resp.Runs, &controlv1.Run{
			RunId: "scheduled__" + t.Format(time.RFC3339), Pipeline: "preventive_maintenance", State: "success",
			Source: "scheduled", Conf: map[string]string{"as_of": "2026-11-27"},
			LogicalDate: timestamppb.New(t), QueuedAt: timestamppb.New(t), StartedAt: timestamppb.New(t.Add(time.Second)),
			EndedAt: timestamppb.New(t.Add(42 * time.Second)),
		})
	}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Marshal(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protojson", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.JSONPb.Marshal(resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}
