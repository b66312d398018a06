package compat

import (
	"encoding/json"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// problem is an RFC 7807 error, the contract's Error schema. It is sent as
// application/json, the media type the contract declares for errors.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// problemTypes name the contract's error sections (info.description), as
// Airflow does.
var problemTypes = map[int][2]string{
	http.StatusBadRequest:          {"BadRequest", "Bad Request"},
	http.StatusUnauthorized:        {"Unauthenticated", "Unauthorized"},
	http.StatusForbidden:           {"PermissionDenied", "Forbidden"},
	http.StatusNotFound:            {"NotFound", "Not Found"},
	http.StatusMethodNotAllowed:    {"MethodNotAllowed", "Method Not Allowed"},
	http.StatusConflict:            {"AlreadyExists", "Conflict"},
	http.StatusTooManyRequests:     {"Unknown", "Too Many Requests"},
	http.StatusInternalServerError: {"Unknown", "Internal Server Error"},
}

const problemBase = "https://airflow.apache.org/docs/apache-airflow/2.10.0/stable-rest-api-ref.html#section/Errors/"

func writeProblem(w http.ResponseWriter, code int, detail string) {
	t, ok := problemTypes[code]
	if !ok {
		t = [2]string{"Unknown", http.StatusText(code)}
	}
	// Nothing about why a caller was refused.
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		detail = ""
	}
	writeJSON(w, code, problem{Type: problemBase + t[0], Title: t[1], Status: code, Detail: detail})
}

// writeProblemFor writes the problem for a gRPC status error of the guard, the
// API or this package.
func writeProblemFor(w http.ResponseWriter, err error) {
	challenge(w, err)
	writeProblem(w, httpStatus(err), message(err))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"type":"`+problemBase+`Unknown","title":"Internal Server Error","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func badRequest(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
