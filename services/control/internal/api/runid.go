package api

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxRunIDLength is the longest run id, in characters: Airflow's run_id
// column (VARCHAR(250)).
const MaxRunIDLength = 250

// ValidateRunID checks a run id given by a caller (a trigger's name for its
// run, or a run to look up): 1 to MaxRunIDLength characters of UTF-8
// without "/" or control characters, and not "." or "..", which a URL path
// cannot carry as a segment. The error says what is wrong, without the
// field's name.
func ValidateRunID(id string) error {
	switch {
	case id == "":
		return errors.New("required")
	case !utf8.ValidString(id):
		return errors.New("not valid UTF-8")
	case utf8.RuneCountInString(id) > MaxRunIDLength:
		return fmt.Errorf("%d characters, more than %d", utf8.RuneCountInString(id), MaxRunIDLength)
	case id == "." || id == "..":
		return fmt.Errorf("%q is not a run id: a URL path cannot name it", id)
	case strings.Contains(id, "/"):
		return errors.New(`must not contain "/"`)
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return errors.New("must not contain control characters")
	}
	return nil
}
