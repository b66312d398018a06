package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Outbox "sends" by writing each message as an RFC 5322 .eml file into a
// folder (the local stand-in for SendGrid, shown by the admin page). The file
// is named after the message key, so sending the same message again
// overwrites it instead of adding a second copy; files are written to a
// temporary name and renamed, so a reader never sees half a message.
type Outbox struct {
	dir      string
	maxBytes int
	now      func() time.Time
}

// NewOutbox creates dir if needed and returns an outbox writing into it.
func NewOutbox(dir string) (*Outbox, error) {
	if strings.TrimSpace(dir) == "" {
		return nil, fmt.Errorf("email: outbox: no folder")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("email: outbox: %w", err)
	}
	return &Outbox{dir: dir, maxBytes: MaxMessageBytes, now: time.Now}, nil
}

// Dir is the outbox folder.
func (o *Outbox) Dir() string { return o.dir }

// Path is where the message with key is written.
func (o *Outbox) Path(key string) string { return filepath.Join(o.dir, FileName(key)) }

// Send writes m to Path(m.Key). A message larger than SendGrid's limit is
// refused with ErrTooLarge, as SendGrid would refuse it.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return &SendError{Temporary: true, Err: err}
	}
	if m.Date.IsZero() {
		m.Date = o.now()
	}
	raw, err := EncodeMIME(m)
	if err != nil {
		return err
	}
	if len(raw) > o.maxBytes {
		return fmt.Errorf("%w: %d bytes as an .eml file", ErrTooLarge, len(raw))
	}
	name := FileName(m.Key)
	tmp, err := os.CreateTemp(o.dir, "."+name+".tmp-*")
	if err != nil {
		return &SendError{Temporary: true, Err: err}
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	_, err = tmp.Write(raw)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(o.dir, name))
	}
	if err != nil {
		return &SendError{Temporary: true, Err: fmt.Errorf("outbox: %w", err)}
	}
	return nil
}

// FileName is the outbox file name for a message key: the key made safe for
// a file name (at most 120 characters), plus a hash of the whole key so
// distinct keys never share a file, plus ".eml".
func FileName(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	safe := strings.Trim(b.String(), "._")
	if len(safe) > 120 {
		safe = safe[:120]
	}
	return safe + "-" + keyHash(key)[:12] + ".eml"
}

func keyHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// EncodeMIME renders m as an RFC 5322 message: multipart/alternative
// (text/plain, text/html) for the body, wrapped in multipart/mixed when
// there are attachments. Text parts are quoted-printable, attachments base64.
// The Message-ID and MIME boundaries derive from the key, so the same message
// encodes to the same bytes (given the same Date).
func EncodeMIME(m Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if m.Date.IsZero() {
		m.Date = time.Now()
	}
	hash := keyHash(m.Key)
	var buf bytes.Buffer
	to := make([]string, len(m.To))
	for i, a := range m.To {
		to[i] = a.String()
	}
	header := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	header("From", m.From.String())
	header("To", strings.Join(to, ",\r\n "))
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", m.Date.Format(time.RFC1123Z))
	header("Message-ID", "<"+hash[:32]+"@cmmsflow>")
	header("MIME-Version", "1.0")
	header("X-Cmmsflow-Key", mime.QEncoding.Encode("utf-8", m.Key))

	if len(m.Attachments) == 0 {
		// The body's own headers end the message's headers.
		top := func(h textproto.MIMEHeader) (io.Writer, error) {
			for _, k := range []string{"Content-Type", "Content-Transfer-Encoding"} {
				if v := h.Get(k); v != "" {
					header(k, v)
				}
			}
			buf.WriteString("\r\n")
			return &buf, nil
		}
		if err := writeBody(top, m, hash); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	mixed := multipart.NewWriter(&buf)
	if err := mixed.SetBoundary("mixed-" + hash[:40]); err != nil {
		return nil, err
	}
	header("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": mixed.Boundary()}))
	buf.WriteString("\r\n")
	if err := writeBody(mixed.CreatePart, m, hash); err != nil {
		return nil, err
	}
	for _, a := range m.Attachments {
		disposition := "attachment"
		h := textproto.MIMEHeader{}
		if a.ContentID != "" {
			disposition = "inline"
			h.Set("Content-ID", "<"+a.ContentID+">")
		}
		h.Set("Content-Type", mime.FormatMediaType(a.contentType(), map[string]string{"name": a.Filename}))
		h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": a.Filename}))
		h.Set("Content-Transfer-Encoding", "base64")
		w, err := mixed.CreatePart(h)
		if err != nil {
			return nil, err
		}
		if err := writeBase64Lines(w, a.Content); err != nil {
			return nil, err
		}
	}
	if err := mixed.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeBody writes the text and HTML bodies, as one part or as a
// multipart/alternative (plain text first, as RFC 2046 orders alternatives
// from plainest to richest), into the part that open starts.
func writeBody(open func(textproto.MIMEHeader) (io.Writer, error), m Message, hash string) error {
	type part struct{ ctype, content string }
	var parts []part
	if m.Text != "" {
		parts = append(parts, part{"text/plain; charset=utf-8", m.Text})
	}
	if m.HTML != "" {
		parts = append(parts, part{"text/html; charset=utf-8", m.HTML})
	}
	qpHeader := func(ctype string) textproto.MIMEHeader {
		return textproto.MIMEHeader{"Content-Type": {ctype}, "Content-Transfer-Encoding": {"quoted-printable"}}
	}
	if len(parts) == 1 {
		w, err := open(qpHeader(parts[0].ctype))
		if err != nil {
			return err
		}
		return writeQP(w, parts[0].content)
	}
	boundary := "alt-" + hash[:40]
	w, err := open(textproto.MIMEHeader{
		"Content-Type": {mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": boundary})},
	})
	if err != nil {
		return err
	}
	alt := multipart.NewWriter(w)
	if err := alt.SetBoundary(boundary); err != nil {
		return err
	}
	for _, p := range parts {
		pw, err := alt.CreatePart(qpHeader(p.ctype))
		if err != nil {
			return err
		}
		if err := writeQP(pw, p.content); err != nil {
			return err
		}
	}
	return alt.Close()
}

func writeQP(w io.Writer, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := io.WriteString(qp, s); err != nil {
		return err
	}
	return qp.Close()
}

func writeBase64Lines(w io.Writer, b []byte) error {
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 76 {
		if _, err := io.WriteString(w, enc[:76]+"\r\n"); err != nil {
			return err
		}
		enc = enc[76:]
	}
	_, err := io.WriteString(w, enc+"\r\n")
	return err
}

// ReadOutboxFile parses an outbox file back into headers; for tests and the
// admin page.
func ReadOutboxFile(path string) (*mail.Message, error) {
	f, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return mail.ReadMessage(bytes.NewReader(f))
}
