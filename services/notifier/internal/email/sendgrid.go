package email

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sendgrid/rest"
	"github.com/sendgrid/sendgrid-go"
	sgmail "github.com/sendgrid/sendgrid-go/helpers/mail"
)

// DefaultSendGridURL is SendGrid's global API host.
const DefaultSendGridURL = "https://api.sendgrid.com"

const sendGridEndpoint = "/v3/mail/send"

// SendGridConfig configures NewSendGrid.
type SendGridConfig struct {
	APIKey string
	// BaseURL is the API host; empty means DefaultSendGridURL. Tests point it
	// at a local fake.
	BaseURL string
	// HTTPClient makes the requests; nil means a client with a 30 s timeout.
	HTTPClient *http.Client
	// MaxBytes caps the request body; 0 means MaxMessageBytes.
	MaxBytes int
}

// SendGrid sends through SendGrid's v3 Mail Send API (sendgrid-go).
type SendGrid struct {
	key      string
	baseURL  string
	client   *rest.Client
	maxBytes int
}

// NewSendGrid returns a SendGrid sender; an empty API key is an error.
func NewSendGrid(c SendGridConfig) (*SendGrid, error) {
	if strings.TrimSpace(c.APIKey) == "" {
		return nil, errors.New("email: sendgrid: an API key is required")
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultSendGridURL
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("email: sendgrid: base URL %q is not an http(s) URL", c.BaseURL)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = MaxMessageBytes
	}
	return &SendGrid{
		key:      c.APIKey,
		baseURL:  strings.TrimRight(c.BaseURL, "/"),
		client:   &rest.Client{HTTPClient: c.HTTPClient},
		maxBytes: c.MaxBytes,
	}, nil
}

// Send posts m to /v3/mail/send. 2xx is success; 413 and a body over the
// size limit are ErrTooLarge (checked before sending); 408, 429 and 5xx are
// temporary; any other 4xx is permanent.
func (s *SendGrid) Send(ctx context.Context, m Message) error {
	body, err := SendGridBody(m)
	if err != nil {
		return err
	}
	if len(body) > s.maxBytes {
		return fmt.Errorf("%w: %d bytes as a SendGrid request", ErrTooLarge, len(body))
	}
	req := sendgrid.GetRequest(s.key, sendGridEndpoint, s.baseURL)
	req.Method = rest.Post
	req.Body = body
	resp, err := s.client.SendWithContext(ctx, req)
	if err != nil {
		return &SendError{Temporary: true, Err: err}
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: SendGrid answered 413: %s", ErrTooLarge, trimBody(resp.Body))
	default:
		return &SendError{
			StatusCode: code,
			Body:       trimBody(resp.Body),
			Temporary:  code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500,
		}
	}
}

// SendGridBody is the JSON request SendGrid's Mail Send API receives for m:
// one personalization with every recipient, text/plain before text/html (the
// order SendGrid requires), attachments base64-encoded, and the key as the
// custom argument cmmsflow_key (it comes back in SendGrid's event webhook).
func SendGridBody(m Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	v3 := sgmail.NewV3Mail()
	v3.SetFrom(sgmail.NewEmail(m.From.Name, m.From.Address))
	v3.Subject = m.Subject
	p := sgmail.NewPersonalization()
	for _, to := range m.To {
		p.AddTos(sgmail.NewEmail(to.Name, to.Address))
	}
	v3.AddPersonalizations(p)
	if m.Text != "" {
		v3.AddContent(sgmail.NewContent("text/plain", m.Text))
	}
	if m.HTML != "" {
		v3.AddContent(sgmail.NewContent("text/html", m.HTML))
	}
	for _, a := range m.Attachments {
		att := sgmail.NewAttachment().
			SetContent(base64.StdEncoding.EncodeToString(a.Content)).
			SetType(a.contentType()).
			SetFilename(a.Filename).
			SetDisposition("attachment")
		if a.ContentID != "" {
			att.SetDisposition("inline").SetContentID(a.ContentID)
		}
		v3.AddAttachment(att)
	}
	v3.SetCustomArg("cmmsflow_key", m.Key)
	// mail.GetRequestBody logs and drops marshalling errors; marshal here.
	b, err := json.Marshal(v3)
	if err != nil {
		return nil, fmt.Errorf("email: encode SendGrid request: %w", err)
	}
	return b, nil
}

func trimBody(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}
