package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cmmsflow/cmmsflow/libs/config"
	"github.com/cmmsflow/cmmsflow/libs/eventing"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/pgtest"
	"github.com/cmmsflow/cmmsflow/libs/service"
	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
	"github.com/cmmsflow/cmmsflow/services/control/internal/app"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Serve puts gRPC, HTTP/1.1 and h2c on one port, and stops on ctx.
func TestServeOnePort(t *testing.T) {
	pool := pgtest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	relay := eventing.NewRelay(pool, &recorder{}, log, time.Hour)
	port := freePort(t)
	s := &service.Service{
		Name: events.Control, Log: log, Pool: pool, Relay: relay, Mux: http.NewServeMux(),
		Config: config.Common{Host: "127.0.0.1", Port: port, ShutdownGrace: 2 * time.Second},
		Router: eventing.NewRouter(eventing.RouterConfig{Service: events.Control, Pool: pool, Relay: relay, Log: log}),
	}
	s.Mux.Handle("GET /healthz", service.Healthz(events.Control))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := app.Start(ctx, s, app.Config{APITokens: viewerEntry,
		StaleRunSweepInterval: time.Hour, MissedTickGrace: 10 * time.Minute, MissedTickInterval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// HTTP/1.1 and h2c (prior knowledge) reach the mux and the gateway.
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	for name, client := range map[string]*http.Client{"http/1.1": http.DefaultClient, "h2c": {Transport: h2c}} {
		req, _ := http.NewRequest("GET", base+"/v1/pipelines", nil)
		req.Header.Set("Authorization", "Bearer "+viewerToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "preventive_maintenance") {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
		}
		if want := map[string]int{"http/1.1": 1, "h2c": 2}[name]; resp.ProtoMajor != want {
			t.Errorf("%s: served as HTTP/%d", name, resp.ProtoMajor)
		}
	}
	// gRPC on the same port.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatal(h, err)
	}
	if _, err := controlv1.NewControlServiceClient(conn).ListPipelines(rpc(t, viewerToken), &controlv1.ListPipelinesRequest{}); err != nil {
		t.Fatal(err)
	}
	// gRPC keepalive enforcement on the port: a connection pinging more
	// often than every 5 minutes is sent GOAWAY too_many_pings; the gRPC
	// client's connection is not affected.
	pingFlood(t, addr)
	if _, err := controlv1.NewControlServiceClient(conn).ListPipelines(rpc(t, viewerToken), &controlv1.ListPipelinesRequest{}); err != nil {
		t.Fatalf("after another connection's ping flood: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

// pingFlood pings addr over h2c until it answers GOAWAY, which must be
// ENHANCE_YOUR_CALM "too_many_pings" (gRPC's keepalive enforcement) and come
// at the fourth ping, the earlier ones answered.
func pingFlood(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	acks := 0
	for i := range 4 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("ping %d: %v", i, err)
			}
			if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
				acks++
				break
			}
			if ga, ok := f.(*http2.GoAwayFrame); ok {
				if acks != 3 || ga.ErrCode != http2.ErrCodeEnhanceYourCalm || string(ga.DebugData()) != "too_many_pings" {
					t.Fatalf("GOAWAY %v %q after %d answered pings, want ENHANCE_YOUR_CALM too_many_pings after 3", ga.ErrCode, ga.DebugData(), acks)
				}
				return
			}
		}
	}
	t.Fatal("4 pings in a row answered: no keepalive enforcement")
}
