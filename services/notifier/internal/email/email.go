// Package email sends notifier's email: through SendGrid's v3 API on GCP, or
// into a local outbox folder of RFC 5322 .eml files. Both implement Sender
// and enforce the same size limit, so a caller sees the same behaviour
// locally and in the cloud. The package also renders the HTML and plain-text
// bodies from embedded templates.
package email

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Sender delivers one message. Errors are classified with IsPermanent:
// ErrTooLarge and ErrInvalid (and a provider's 4xx) will fail the same way
// again; anything else may succeed on a later attempt.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// MaxMessageBytes is SendGrid's limit on the total size of one message,
// attachments included (30 MB), measured conservatively on the encoded form
// (the JSON request for SendGrid, the .eml file for the outbox), where
// attachments are base64 and so a third larger than the files themselves.
const MaxMessageBytes = 30_000_000

// MaxRecipients is SendGrid's limit on recipients per request.
const MaxRecipients = 1000

// Message is one email.
type Message struct {
	// Key identifies the message across retries: the outbox names its file
	// after it (so a resend overwrites) and SendGrid carries it as a custom
	// argument. Required.
	Key     string
	From    mail.Address
	To      []mail.Address
	Subject string
	Text    string // plain-text body
	HTML    string // HTML body; the two are sent as alternatives
	// Attachments go out as files; one with a ContentID is inline (cid:).
	Attachments []Attachment
	// Date is the Date header of the outbox file; zero means now.
	Date time.Time
}

// Attachment is a file sent with a message.
type Attachment struct {
	Filename    string
	ContentType string // e.g. application/pdf; empty means application/octet-stream
	Content     []byte
	ContentID   string // set for an inline image referenced as cid:<ContentID>
}

// ErrTooLarge means the message exceeds the provider's size limit. The
// caller can act on it, e.g. send a link to the file instead of attaching it.
var ErrTooLarge = errors.New("email: message exceeds the 30 MB size limit")

// ErrInvalid means the message cannot be sent as built (no recipient, no
// body, a malformed address, too many recipients).
var ErrInvalid = errors.New("email: invalid message")

// SendError is a send that the provider refused or that did not reach it.
type SendError struct {
	StatusCode int    // the provider's HTTP status; 0 when there was no response
	Body       string // the provider's answer, trimmed
	Temporary  bool   // worth retrying: 429, 5xx, network errors, I/O errors
	Err        error  // the underlying error, if any
}

func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("email: send failed")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Body != "" {
		b.WriteString(": " + e.Body)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether a failed send will fail the same way when
// retried: an invalid or too large message, or a provider's 4xx other than
// 408 and 429. Unknown errors are not permanent.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInvalid) {
		return true
	}
	var se *SendError
	if errors.As(err, &se) {
		return !se.Temporary
	}
	return false
}

// invalid wraps a validation failure in ErrInvalid.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks what every provider requires of a message.
func (m Message) Validate() error {
	switch {
	case strings.TrimSpace(m.Key) == "":
		return invalid("no key")
	case m.From.Address == "":
		return invalid("no From address")
	case len(m.To) == 0:
		return invalid("no recipient")
	case len(m.To) > MaxRecipients:
		return invalid("%d recipients, the limit is %d", len(m.To), MaxRecipients)
	case strings.TrimSpace(m.Subject) == "":
		return invalid("no subject")
	case strings.ContainsAny(m.Subject, "\r\n"):
		return invalid("subject contains a line break")
	case m.Text == "" && m.HTML == "":
		return invalid("no body")
	}
	for _, a := range append([]mail.Address{m.From}, m.To...) {
		if _, err := mail.ParseAddress(a.Address); err != nil {
			return invalid("address %q: %v", a.Address, err)
		}
	}
	for _, a := range m.Attachments {
		if strings.TrimSpace(a.Filename) == "" || strings.ContainsAny(a.Filename, "\r\n\"/\\") {
			return invalid("attachment file name %q", a.Filename)
		}
	}
	return nil
}

func (a Attachment) contentType() string {
	if a.ContentType == "" {
		return "application/octet-stream"
	}
	return a.ContentType
}

// ParseAddressList parses a comma-separated list of addresses
// ("Ops <ops@example.com>, admin@example.com").
func ParseAddressList(list string) ([]mail.Address, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	as, err := mail.ParseAddressList(list)
	if err != nil {
		return nil, fmt.Errorf("email: address list %q: %w", list, err)
	}
	out := make([]mail.Address, len(as))
	for i, a := range as {
		out[i] = *a
	}
	return out, nil
}

// FormatAddressList is the inverse of ParseAddressList.
func FormatAddressList(as []mail.Address) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}
