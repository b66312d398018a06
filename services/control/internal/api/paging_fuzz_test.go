package api

import (
	"encoding/base64"
	"testing"
	"time"
)

// FuzzPageToken: decodeToken never panics; a token it accepts continues
// the listing it was issued for, with an id the database can compare (the
// page_token query parameter is client input like any other).
func FuzzPageToken(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	f.Add(encodeToken(at, "run-1", "p|s"), "p|s")
	f.Add(encodeToken(at, "run-1", "p|s"), "p|")
	f.Add(encodeToken(at, "", ""), "")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"t":1,"i":"a\u0000b","f":""}`)), "")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"t":1e99,"i":"x","f":""}`)), "")
	f.Add("';--", "")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, token, filter string) {
		tok, err := decodeToken(token, filter)
		if err != nil {
			if _, ok := toStatus(err); !ok {
				t.Fatalf("rejection %v is not an API error", err)
			}
			return
		}
		if tok == nil {
			if token != "" {
				t.Fatalf("token %q read as the first page", token)
			}
			return
		}
		if tok.ID == "" || !isText(tok.ID) || tok.Filter != filter {
			t.Fatalf("accepted token %+v for filter %q", tok, filter)
		}
		again, err := decodeToken(encodeToken(tok.time(), tok.ID, filter), filter)
		if err != nil || again.ID != tok.ID || again.Time != tok.Time {
			t.Fatalf("re-encoded token %+v: %+v %v", tok, again, err)
		}
	})
}
