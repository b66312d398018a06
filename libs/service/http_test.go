package service

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// testLimits are short limits, so the tests wait little; each test sets the
// one it checks.
var testLimits = HTTPLimits{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: time.Minute}

// serveLimited serves h on loopback with limits until the test ends and
// returns the address.
func serveLimited(t *testing.T, h http.Handler, limits HTTPLimits) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, l, h, time.Second, limits) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return l.Addr().String()
}

// dial connects to addr; a read that waits more than 30 s fails the test
// (a bound, not a measure: the limits under test are far shorter).
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	return c
}

// A client that sends its headers and then stalls the body is cut off by
// ReadTimeout: the handler's body read fails, the connection is closed.
func TestStalledBodyIsCutOff(t *testing.T) {
	readErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	})
	limits := testLimits
	limits.ReadTimeout = 200 * time.Millisecond
	c := dial(t, serveLimited(t, h, limits))
	if _, err := io.WriteString(c, "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"mess"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); err != nil { // returns at EOF: the server closed the connection
		t.Fatalf("connection not closed by the server: %v", err)
	}
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("body read: %v, want the read deadline exceeded", err)
	}
}

// An idle keep-alive connection is closed after IdleTimeout.
func TestIdleConnectionIsClosed(t *testing.T) {
	limits := testLimits
	limits.IdleTimeout = 200 * time.Millisecond
	c := dial(t, serveLimited(t, Healthz("test"), limits))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("answer %d, close %v: want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("idle connection: read %d bytes, %v; want it closed (EOF)", n, err)
	}
}

// An HTTP/2 client pinging more often than MinPingInterval is sent GOAWAY
// ENHANCE_YOUR_CALM "too_many_pings" at its third strike and disconnected;
// up to then its pings are answered.
func TestPingFloodGetsGoAway(t *testing.T) {
	limits := testLimits
	limits.MinPingInterval = time.Hour
	fr := h2Client(t, serveLimited(t, Healthz("test"), limits))
	for i := range 3 { // the first ping, then two strikes
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if f := nextFrame(t, fr); !isPingAck(f) {
			t.Fatalf("ping %d: got %v, want its ack", i, f)
		}
	}
	if err := fr.WritePing(false, [8]byte{3}); err != nil {
		t.Fatal(err)
	}
	ga, ok := nextFrame(t, fr).(*http2.GoAwayFrame)
	if !ok || ga.ErrCode != http2.ErrCodeEnhanceYourCalm || string(ga.DebugData()) != "too_many_pings" {
		t.Fatalf("got %v, want GOAWAY ENHANCE_YOUR_CALM too_many_pings", ga)
	}
	if f, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("after GOAWAY: %v %v, want the connection closed", f, err)
	}
}

// Pings no more often than MinPingInterval, or with requests in between,
// are all answered.
func TestPingsWithinPolicyAreAnswered(t *testing.T) {
	limits := testLimits
	limits.MinPingInterval = time.Nanosecond
	fr := h2Client(t, serveLimited(t, Healthz("test"), limits))
	for i := range 10 {
		time.Sleep(time.Millisecond)
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if f := nextFrame(t, fr); !isPingAck(f) {
			t.Fatalf("ping %d: got %v, want its ack", i, f)
		}
	}
}

// h2Client opens an h2c (prior knowledge) connection to addr and returns
// its framer, the preface and SETTINGS sent.
func h2Client(t *testing.T, addr string) *http2.Framer {
	t.Helper()
	c := dial(t, addr)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return fr
}

// nextFrame reads the next frame other than SETTINGS and WINDOW_UPDATE.
func nextFrame(t *testing.T, fr *http2.Framer) http2.Frame {
	t.Helper()
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.WindowUpdateFrame:
		default:
			return f
		}
	}
}

func isPingAck(f http2.Frame) bool {
	p, ok := f.(*http2.PingFrame)
	return ok && p.IsAck()
}
