package featurefile_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/cmmsflow/cmmsflow/libs/featurefile"
	"github.com/cmmsflow/cmmsflow/libs/features"
)

// Rows over several batches (and page boundaries) come back as written.
func TestReadRoundTrip(t *testing.T) {
	want := make([]features.Row, 2_500)
	for i := range want {
		want[i] = features.Row{AssetID: int64(i + 1), VehicleType: features.VehicleTypes[i%len(features.VehicleTypes)],
			SnapshotDate: fmt.Sprintf("2026-%02d-01", 1+i%12), AssetAgeDays: int32(i), AvgRepairHours: float64(i) / 4,
			MeterReading: float64(i * 10), Label: int32(i % 3)}
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[features.Row](&buf, parquet.PageBufferSize(4096))
	if _, err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := featurefile.Read(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestReadRefusesBadFiles(t *testing.T) {
	type partial struct {
		AssetID int64 `parquet:"asset_id"`
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, []partial{{AssetID: 1}}); err != nil {
		t.Fatal(err)
	}
	var full bytes.Buffer
	if err := parquet.Write(&full, []features.Row{{AssetID: 1}, {AssetID: 2}}); err != nil {
		t.Fatal(err)
	}
	truncated := full.Bytes()[:full.Len()-20]
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"empty":        {nil, "empty"},
		"not parquet":  {[]byte("asset_id,label\n1,0\n"), "not a Parquet file"},
		"lacks column": {buf.Bytes(), "lacks columns"},
		"truncated":    {truncated, "Parquet"},
	} {
		if _, err := featurefile.Read(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one saying %q", name, err, tc.want)
		}
	}
}
