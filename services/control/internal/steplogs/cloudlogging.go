package steplogs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	logging "cloud.google.com/go/logging/apiv2"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	ltype "google.golang.org/genproto/googleapis/logging/type"
)

// CloudLogging reads a step's lines from Cloud Logging (entries.list): the
// entries of the step's Cloud Run service (resource.labels.service_name)
// whose JSON payload names the run (jsonPayload.run_id), oldest first, from
// the run's queue time on. Needs roles/logging.viewer.
type CloudLogging struct {
	client  *logging.Client
	project string
	// MaxEntries bounds the entries read per Read (Result.Partial when
	// reached). Default 10,000.
	MaxEntries int
}

// NewCloudLogging connects to Cloud Logging for project; opts are for tests
// (an endpoint of a fake, no credentials).
func NewCloudLogging(ctx context.Context, project string, opts ...option.ClientOption) (*CloudLogging, error) {
	if project == "" {
		return nil, errors.New("steplogs: Cloud Logging needs GOOGLE_CLOUD_PROJECT")
	}
	c, err := logging.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("steplogs: Cloud Logging client: %w", err)
	}
	return &CloudLogging{client: c, project: project}, nil
}

// Close closes the client.
func (c *CloudLogging) Close() error { return c.client.Close() }

// Backend is "cloudlogging".
func (c *CloudLogging) Backend() string { return "cloudlogging" }

// pageSize is entries.list's page size.
const pageSize = 1000

// Read lists the run's entries of the step's service.
func (c *CloudLogging) Read(ctx context.Context, q Query) (Result, error) {
	if err := q.check(); err != nil {
		return Result{}, err
	}
	limit := c.MaxEntries
	if limit <= 0 {
		limit = 10000
	}
	col := newCollector(q)
	it := c.client.ListLogEntries(ctx, &loggingpb.ListLogEntriesRequest{
		ResourceNames: []string{"projects/" + c.project}, Filter: Filter(q), PageSize: pageSize,
	})
	for n := 0; !col.done(); n++ {
		if n == limit {
			col.res.Partial = true
			break
		}
		e, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("steplogs: Cloud Logging: %w", err)
		}
		col.add(entryLine(e))
	}
	return col.result(), nil
}

// Filter is the Cloud Logging filter of q: the step's Cloud Run service's
// entries naming the run, from q.Since on.
func Filter(q Query) string {
	f := []string{
		`resource.type="cloud_run_revision"`,
		`resource.labels.service_name=` + filterString(q.Service),
		`jsonPayload.run_id=` + filterString(q.RunID),
	}
	if !q.Since.IsZero() {
		f = append(f, `timestamp>=`+filterString(q.Since.UTC().Format(time.RFC3339Nano)))
	}
	return strings.Join(f, " AND ")
}

// filterString quotes s for the logging query language.
func filterString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// entryLine maps an entry: its timestamp and severity, the JSON payload's
// message and other fields (without the service) as attributes, or a text
// payload as the message; the entry's trace and span as
// logging.googleapis.com/trace and …/spanId, as in the local files.
func entryLine(e *loggingpb.LogEntry) Line {
	l := Line{Time: e.GetTimestamp().AsTime(), Level: e.GetSeverity().String(), Attrs: map[string]any{}}
	switch {
	case e.GetJsonPayload() != nil:
		l.Attrs = e.GetJsonPayload().AsMap()
		// A plain slog JSON line (msg, level) is not parsed by Cloud Logging.
		for _, k := range []string{"message", "msg"} {
			if m, ok := l.Attrs[k].(string); ok && l.Message == "" {
				l.Message = m
				delete(l.Attrs, k)
			}
		}
		if lv, ok := l.Attrs["level"].(string); ok && e.GetSeverity() == ltype.LogSeverity_DEFAULT {
			l.Level = strings.ToUpper(lv)
			delete(l.Attrs, "level")
		}
		delete(l.Attrs, "service")
	default:
		l.Message = e.GetTextPayload()
	}
	if l.Level == "WARN" {
		l.Level = "WARNING"
	}
	if e.GetTrace() != "" {
		l.Attrs["logging.googleapis.com/trace"] = e.GetTrace()
	}
	if e.GetSpanId() != "" {
		l.Attrs["logging.googleapis.com/spanId"] = e.GetSpanId()
	}
	return l
}
