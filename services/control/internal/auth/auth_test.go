package auth

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlv1 "github.com/cmmsflow/cmmsflow/proto/cmmsflow/control/v1"
)

const hashA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")

func TestParseTokens(t *testing.T) {
	hashB := Hash("other")
	good := []struct {
		in    string
		n     int
		names []string
	}{
		{"", 0, nil},
		{" , ", 0, nil},
		{hashA + ":admin", 1, []string{"token-9f86d081"}},
		{strings.ToUpper(hashA) + ":viewer:ci-bot", 1, []string{"ci-bot"}},
		{hashA + ":admin:ops, " + hashB + ":viewer:dash", 2, []string{"ops", "dash"}},
	}
	for _, c := range good {
		tk, err := ParseTokens(c.in)
		if err != nil || tk.Len() != c.n {
			t.Errorf("%q: %v, %d tokens", c.in, err, tk.Len())
			continue
		}
		for i, name := range c.names {
			if tk.entries[i].id.Name != name {
				t.Errorf("%q: name %q, want %q", c.in, tk.entries[i].id.Name, name)
			}
		}
	}
	bad := []string{
		hashA,                                     // no role
		hashA + ":root",                           // unknown role
		hashA[:63] + ":admin",                     // short hash
		"zz" + hashA[2:] + ":admin",               // not hex
		hashA + ":admin:a:b",                      // too many parts
		hashA + ":admin:bad name",                 // name
		hashA + ":admin," + hashA + ":viewer",     // same token twice
		hashA + ":admin:x," + hashB + ":viewer:x", // same name twice
	}
	for _, in := range bad {
		_, err := ParseTokens(in)
		if err == nil {
			t.Errorf("%q accepted", in)
		} else if strings.Contains(err.Error(), hashA[:16]) {
			t.Errorf("error leaks the hash: %v", err)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	tk, err := ParseTokens(hashA + ":viewer:v")
	if err != nil {
		t.Fatal(err)
	}
	for h, ok := range map[string]bool{
		"Bearer test": true, "bearer test": true, "BEARER  test ": true,
		"": false, "Bearer": false, "Bearer ": false, "Basic test": false, "test": false,
		"Bearer test2": false, "Bearer Test": false, "Bearer " + hashA: false,
	} {
		id, got := tk.Authenticate(h)
		if got != ok || (ok && (id.Name != "v" || id.Role != RoleViewer)) {
			t.Errorf("%q: %v %v, want %v", h, id, got, ok)
		}
	}
	empty, _ := ParseTokens("")
	if _, ok := empty.Authenticate("Bearer test"); ok {
		t.Error("an empty configuration accepted a token")
	}
}

func TestNewToken(t *testing.T) {
	tok, entry, err := NewToken(RoleAdmin, "ops")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := ParseTokens(entry)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tk.Authenticate("Bearer " + tok); !ok || id.Role != RoleAdmin || id.Name != "ops" {
		t.Fatalf("the new token does not authenticate against its entry %q", entry)
	}
	tok2, _, _ := NewToken(RoleViewer, "")
	if tok2 == tok || len(tok) < 40 {
		t.Fatalf("tokens %q %q", tok, tok2)
	}
	if _, _, err := NewToken(RoleNone, ""); err == nil {
		t.Error("role none accepted")
	}
	if _, _, err := NewToken(RoleAdmin, "a b"); err == nil {
		t.Error("bad name accepted")
	}
}

func TestGuardCheck(t *testing.T) {
	tk, _ := ParseTokens(hashA + ":viewer:v," + Hash("adm") + ":admin:a")
	g := NewGuard(tk, Policy, RateLimit{Rate: 0.0001, Burst: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	trigger := controlv1.ControlService_TriggerPipeline_FullMethodName
	cases := []struct {
		method, authz string
		want          codes.Code
	}{
		{controlv1.ControlService_ListRuns_FullMethodName, "", codes.Unauthenticated},
		{controlv1.ControlService_ListRuns_FullMethodName, "Bearer test", codes.OK},
		{trigger, "Bearer test", codes.PermissionDenied},
		{controlv1.ControlService_CancelRun_FullMethodName, "Bearer test", codes.PermissionDenied},
		{controlv1.ControlService_CancelRun_FullMethodName, "Bearer adm", codes.OK},
		{"/grpc.health.v1.Health/Check", "", codes.OK},
		{"/cmmsflow.control.v1.ControlService/Unlisted", "", codes.Unauthenticated},
		{"/cmmsflow.control.v1.ControlService/Unlisted", "Bearer adm", codes.PermissionDenied},
		{trigger, "Bearer adm", codes.OK},
		{trigger, "Bearer adm", codes.OK},
		{trigger, "Bearer adm", codes.ResourceExhausted},
	}
	for i, c := range cases {
		got, err := g.Check(ctx, c.method, c.authz)
		if status.Code(err) != c.want {
			t.Fatalf("case %d %s %q: %v, want %s", i, c.method, c.authz, err, c.want)
		}
		if err == nil && c.authz != "" {
			if id, ok := IdentityFrom(got); !ok || id.Name == "" {
				t.Errorf("case %d: no identity in the context", i)
			}
		}
	}
}
