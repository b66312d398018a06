package email_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/mail"
	"strings"
	"testing"

	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email"
	"github.com/cmmsflow/cmmsflow/services/notifier/internal/email/sendgridtest"
)

const apiKey = "SG.test-key"

func message() email.Message {
	return email.Message{
		Key:     "run-1:email:technician-7:wo_digest",
		From:    mail.Address{Name: "cmmsflow", Address: "cmmsflow@fleet.test"},
		To:      []mail.Address{{Name: "Ann Lee", Address: "ann@fleet.test"}, {Address: "ops@fleet.test"}},
		Subject: "Wartung fällig — 3 Aufträge",
		Text:    "Hello Ann,\n\nWO-1 brake inspection\n" + strings.Repeat("long line ", 30) + "\n",
		HTML:    "<p>Hello Ann,</p><ul><li>WO-1 brake inspection</li></ul>",
		Attachments: []email.Attachment{
			{Filename: "report.pdf", ContentType: "application/pdf", Content: []byte("%PDF-1.7 fake\x00\x01\x02")},
			{Filename: "chart.png", ContentType: "image/png", Content: bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 100), ContentID: "chart1"},
		},
	}
}

func newSendGrid(t *testing.T, fake *sendgridtest.Server) *email.SendGrid {
	t.Helper()
	sg, err := email.NewSendGrid(email.SendGridConfig{APIKey: apiKey, BaseURL: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func TestSendGridSendsTheMessageAsSendGridExpects(t *testing.T) {
	fake := sendgridtest.New(t, apiKey)
	m := message()
	if err := newSendGrid(t, fake).Send(context.Background(), m); err != nil {
		t.Fatalf("send: %v (fake rejected: %v)", err, fake.Malformed())
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1 (rejected: %v)", len(reqs), fake.Malformed())
	}
	r := reqs[0]
	if r.Authorization != "Bearer "+apiKey {
		t.Errorf("authorization %q", r.Authorization)
	}
	if got := strings.Join(r.To(), ","); got != "ann@fleet.test,ops@fleet.test" || len(r.Personalizations) != 1 {
		t.Errorf("recipients %q in %d personalizations", got, len(r.Personalizations))
	}
	if r.Personalizations[0].To[0].Name != "Ann Lee" {
		t.Errorf("recipient name %q", r.Personalizations[0].To[0].Name)
	}
	if r.From.Email != "cmmsflow@fleet.test" || r.From.Name != "cmmsflow" {
		t.Errorf("from %+v", r.From)
	}
	if r.Subject != m.Subject {
		t.Errorf("subject %q", r.Subject)
	}
	if len(r.Content) != 2 || r.Content[0].Type != "text/plain" || r.Content[1].Type != "text/html" ||
		r.Body("text/plain") != m.Text || r.Body("text/html") != m.HTML {
		t.Errorf("content %+v", r.Content)
	}
	if r.Key() != m.Key {
		t.Errorf("custom_args %v", r.CustomArgs)
	}
	if len(r.Attachments) != 2 {
		t.Fatalf("attachments %+v", r.Attachments)
	}
	for i, a := range r.Attachments {
		want := m.Attachments[i]
		got, err := a.Decoded()
		if err != nil || !bytes.Equal(got, want.Content) || a.Filename != want.Filename || a.Type != want.ContentType {
			t.Errorf("attachment %d: %s %s %q (%v), want %s %s", i, a.Filename, a.Type, got, err, want.Filename, want.ContentType)
		}
	}
	if r.Attachments[0].Disposition != "attachment" || r.Attachments[1].Disposition != "inline" || r.Attachments[1].ContentID != "chart1" {
		t.Errorf("dispositions %+v", r.Attachments)
	}
}

func TestSendGridClassifiesAnswers(t *testing.T) {
	fake := sendgridtest.New(t, apiKey)
	sg := newSendGrid(t, fake)
	tests := []struct {
		status    int
		permanent bool
		tooLarge  bool
	}{
		{http.StatusAccepted, false, false},
		{http.StatusOK, false, false},
		{http.StatusTooManyRequests, false, false},
		{http.StatusInternalServerError, false, false},
		{http.StatusServiceUnavailable, false, false},
		{http.StatusRequestTimeout, false, false},
		{http.StatusBadRequest, true, false},
		{http.StatusForbidden, true, false},
		{http.StatusRequestEntityTooLarge, true, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			fake.Respond(func(sendgridtest.Request) int { return tt.status })
			err := sg.Send(context.Background(), message())
			if tt.status < 300 {
				if err != nil {
					t.Fatalf("send: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := email.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, got, tt.permanent)
			}
			if got := errors.Is(err, email.ErrTooLarge); got != tt.tooLarge {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v", err, got)
			}
			var se *email.SendError
			if !tt.tooLarge && (!errors.As(err, &se) || se.StatusCode != tt.status || !strings.Contains(se.Body, "fake answered")) {
				t.Errorf("error %#v, want a SendError with status %d and SendGrid's answer", err, tt.status)
			}
		})
	}
}

func TestSendGridWrongKeyIsPermanent(t *testing.T) {
	fake := sendgridtest.New(t, apiKey)
	sg, err := email.NewSendGrid(email.SendGridConfig{APIKey: "SG.wrong", BaseURL: fake.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	err = sg.Send(context.Background(), message())
	var se *email.SendError
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || !email.IsPermanent(err) {
		t.Fatalf("error %v, want a permanent 401", err)
	}
}

func TestSendGridUnreachableIsTemporary(t *testing.T) {
	fake := sendgridtest.New(t, apiKey)
	sg := newSendGrid(t, fake)
	fake.Close()
	err := sg.Send(context.Background(), message())
	if err == nil || email.IsPermanent(err) {
		t.Fatalf("error %v, want a temporary one", err)
	}
}

func TestSendGridRefusesOversizedMessagesBeforeSending(t *testing.T) {
	fake := sendgridtest.New(t, apiKey)
	sg := newSendGrid(t, fake)
	m := message()
	// 23 MB of file is over 30 MB once base64-encoded.
	m.Attachments = []email.Attachment{{Filename: "big.pdf", ContentType: "application/pdf", Content: make([]byte, 23<<20)}}
	err := sg.Send(context.Background(), m)
	if !errors.Is(err, email.ErrTooLarge) || !email.IsPermanent(err) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	if n := len(fake.Requests()) + len(fake.Malformed()); n != 0 {
		t.Fatalf("%d requests reached SendGrid", n)
	}
	// Just under the limit goes out.
	m.Attachments[0].Content = make([]byte, 21<<20)
	if err := sg.Send(context.Background(), m); err != nil {
		t.Fatalf("21 MB attachment: %v", err)
	}
}

func TestSendGridRejectsInvalidMessages(t *testing.T) {
	fake := sendgridtest.New(t, apiKey)
	sg := newSendGrid(t, fake)
	for name, mut := range map[string]func(*email.Message){
		"no recipient":  func(m *email.Message) { m.To = nil },
		"no key":        func(m *email.Message) { m.Key = "" },
		"no body":       func(m *email.Message) { m.Text, m.HTML = "", "" },
		"bad address":   func(m *email.Message) { m.To = []mail.Address{{Address: "not an address"}} },
		"subject break": func(m *email.Message) { m.Subject = "a\r\nBcc: x@y" },
		"too many": func(m *email.Message) {
			m.To = make([]mail.Address, email.MaxRecipients+1)
			for i := range m.To {
				m.To[i] = mail.Address{Address: "a@b.test"}
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			m := message()
			mut(&m)
			if err := sg.Send(context.Background(), m); !errors.Is(err, email.ErrInvalid) || !email.IsPermanent(err) {
				t.Fatalf("error %v, want ErrInvalid", err)
			}
		})
	}
	if n := len(fake.Requests()) + len(fake.Malformed()); n != 0 {
		t.Fatalf("%d invalid messages reached SendGrid", n)
	}
}

func TestNewSendGridNeedsAKey(t *testing.T) {
	if _, err := email.NewSendGrid(email.SendGridConfig{BaseURL: "http://127.0.0.1:1"}); err == nil {
		t.Fatal("no error without an API key")
	}
	if _, err := email.NewSendGrid(email.SendGridConfig{APIKey: "k", BaseURL: "ftp://x"}); err == nil {
		t.Fatal("no error for a non-http base URL")
	}
}
