package api

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// Page sizes of the List calls. A larger page_size is treated as MaxPageSize
// (AIP-158); a negative one is invalid.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, invalid("page_size: must not be negative")
	case n == 0:
		return DefaultPageSize, nil
	case n > MaxPageSize:
		return MaxPageSize, nil
	}
	return int(n), nil
}

// pageToken is the keyset position after the last item of a page, plus the
// filters it was issued for: a token only continues the listing it came from.
type pageToken struct {
	Time   int64  `json:"t"` // unix microseconds (PostgreSQL's precision)
	ID     string `json:"i"`
	Filter string `json:"f"`
}

func encodeToken(t time.Time, id, filter string) string {
	b, _ := json.Marshal(pageToken{Time: t.UnixMicro(), ID: id, Filter: filter})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeToken returns nil for the first page.
func decodeToken(s, filter string) (*pageToken, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	var t pageToken
	if err != nil || json.Unmarshal(b, &t) != nil || t.ID == "" || !isText(t.ID) {
		return nil, invalid("page_token: invalid")
	}
	if t.Filter != filter {
		return nil, invalid("page_token: issued for other filters")
	}
	return &t, nil
}

func (t *pageToken) time() time.Time { return time.UnixMicro(t.Time) }

// isText reports whether s can be a PostgreSQL text value (a key looked up
// in the database): valid UTF-8 without NUL.
func isText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
