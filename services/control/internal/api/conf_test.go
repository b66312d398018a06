package api

import (
	"testing"
	"time"
)

func TestPageSizeAndToken(t *testing.T) {
	for in, want := range map[int32]int{0: DefaultPageSize, 1: 1, 100: 100, 101: MaxPageSize, 1 << 30: MaxPageSize} {
		if got, err := pageSize(in); err != nil || got != want {
			t.Errorf("pageSize(%d) = %d %v", in, got, err)
		}
	}
	if _, err := pageSize(-1); err == nil {
		t.Error("negative page size accepted")
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	tok, err := decodeToken(encodeToken(at, "run-1", "f"), "f")
	if err != nil || !tok.time().Equal(at) || tok.ID != "run-1" {
		t.Fatalf("round trip: %v %v", tok, err)
	}
	for _, bad := range []string{"!", "e30", encodeToken(at, "", "f"), encodeToken(at, "x", "g")} {
		if _, err := decodeToken(bad, "f"); err == nil {
			t.Errorf("token %q accepted", bad)
		}
	}
}
