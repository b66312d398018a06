package service

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP/2 ping enforcement, as gRPC servers do it (keepalive.EnforcementPolicy
// with PermitWithoutStream): a client may ping at most once every MinTime;
// its third ping sooner than that after the one before it (pings in between
// requests are forgiven) is answered with GOAWAY ENHANCE_YOUR_CALM
// "too_many_pings", and the connection is closed. grpc-go clients double their
// keepalive interval on that answer.
//
// It works on the connection's bytes because every port serves gRPC through
// grpc.Server.ServeHTTP (control's API shares the port with the gateway, the
// admin page and /events): there net/http's HTTP/2 server reads the frames
// and answers every PING itself, and grpc-go's own keepalive options, which
// live in its native transport only, would have no effect.

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

const (
	frameHeaderLen         = 9
	frameHeaders           = 0x1
	framePing              = 0x6
	frameGoAway            = 0x7
	flagAck                = 0x1
	errCodeEnhanceYourCalm = 0xb
	maxPingStrikes         = 2 // as grpc-go: the third strike closes
)

var errTooManyPings = errors.New("http2: too many pings: connection closed with GOAWAY")

// pingGuard wraps l's connections in ping enforcement (minTime 0: none).
func pingGuard(l net.Listener, minTime time.Duration) net.Listener {
	if minTime <= 0 {
		return l
	}
	return pingGuardListener{Listener: l, minTime: minTime}
}

type pingGuardListener struct {
	net.Listener
	minTime time.Duration
}

func (l pingGuardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &pingGuardConn{Conn: c, minTime: l.minTime, preface: len(h2Preface)}, nil
}

// frameScanner follows the frame boundaries of an HTTP/2 byte stream.
type frameScanner struct {
	hdr  [frameHeaderLen]byte
	n    int // header bytes collected
	skip int // payload bytes left of the current frame
}

// scan consumes p, calling onFrame with each complete frame header; it
// stops early, reporting true, when onFrame does.
func (s *frameScanner) scan(p []byte, onFrame func(h []byte) bool) bool {
	for len(p) > 0 {
		if s.skip > 0 {
			k := min(s.skip, len(p))
			s.skip, p = s.skip-k, p[k:]
			continue
		}
		k := copy(s.hdr[s.n:], p)
		s.n, p = s.n+k, p[k:]
		if s.n == frameHeaderLen {
			s.n, s.skip = 0, int(s.hdr[0])<<16|int(s.hdr[1])<<8|int(s.hdr[2])
			if onFrame(s.hdr[:]) {
				return true
			}
		}
	}
	return false
}

func (s *frameScanner) atBoundary() bool { return s.n == 0 && s.skip == 0 }

// pingGuardConn enforces the ping policy on one connection. Read is called
// by the server's one reading goroutine; Write may come from others.
type pingGuardConn struct {
	net.Conn
	minTime time.Duration

	// Read side.
	preface    int // preface bytes still to match; -1: not HTTP/2, no checks
	in         frameScanner
	lastPing   time.Time
	strikes    int
	lastStream uint32

	h2   atomic.Bool // the preface was read: writes are frames
	shut atomic.Bool // GOAWAY sent: the connection is done

	mu  sync.Mutex // serialises writes, GOAWAY included
	out frameScanner
}

func (c *pingGuardConn) Read(p []byte) (int, error) {
	if c.shut.Load() {
		return 0, errTooManyPings
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.preface >= 0 && c.inspect(p[:n]) {
		c.goAway()
	}
	return n, err
}

// inspect follows the bytes read; true: the client pinged too often.
func (c *pingGuardConn) inspect(p []byte) bool {
	if c.preface > 0 {
		k := min(c.preface, len(p))
		at := len(h2Preface) - c.preface
		if string(p[:k]) != string(h2Preface[at:at+k]) {
			c.preface = -1 // HTTP/1.1
			return false
		}
		c.preface, p = c.preface-k, p[k:]
		if c.preface > 0 {
			return false
		}
		c.h2.Store(true)
	}
	return c.in.scan(p, c.onFrame)
}

// onFrame applies the policy to one frame the client sent.
func (c *pingGuardConn) onFrame(h []byte) bool {
	switch h[3] {
	case frameHeaders: // a request: the pings before it are forgiven
		c.strikes = 0
		c.lastStream = max(c.lastStream, binary.BigEndian.Uint32(h[5:])&0x7fffffff)
	case framePing:
		if h[4]&flagAck != 0 {
			return false
		}
		now := time.Now()
		if !c.lastPing.IsZero() && now.Sub(c.lastPing) < c.minTime {
			c.strikes++
		}
		c.lastPing = now
		return c.strikes > maxPingStrikes
	}
	return false
}

// goAway sends GOAWAY ENHANCE_YOUR_CALM "too_many_pings" between two of the
// server's frames (when a write stopped mid-frame, it only closes) and ends
// the connection: the write side at once, the read side on the next Read.
func (c *pingGuardConn) goAway() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shut.Store(true)
	if c.out.atBoundary() {
		debug := "too_many_pings"
		f := make([]byte, frameHeaderLen+8+len(debug))
		n := 8 + len(debug)
		f[0], f[1], f[2], f[3] = byte(n>>16), byte(n>>8), byte(n), frameGoAway
		binary.BigEndian.PutUint32(f[9:], c.lastStream)
		binary.BigEndian.PutUint32(f[13:], errCodeEnhanceYourCalm)
		copy(f[17:], debug)
		_, _ = c.Conn.Write(f)
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	} else {
		_ = c.Conn.Close()
	}
}

func (c *pingGuardConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shut.Load() {
		return 0, errTooManyPings
	}
	n, err := c.Conn.Write(p)
	if c.h2.Load() {
		c.out.scan(p[:n], func([]byte) bool { return false })
	}
	return n, err
}
