package terraformcheck

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestBaseImagesPinnedByDigest: every stage of deploy/Dockerfile starts from
// an image pinned by digest (a tag alone can be moved under us), and the Go
// image's tag is the Go version go.work names, so the image builds with the
// toolchain the tests ran.
func TestBaseImagesPinnedByDigest(t *testing.T) {
	docker, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	work, err := os.ReadFile("../../../go.work")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(work)
	if goVersion == nil {
		t.Fatal("go.work: no go line")
	}
	if problems := unpinnedStages(string(docker), string(goVersion[1])); len(problems) > 0 {
		t.Errorf("deploy/Dockerfile:\n%s", strings.Join(problems, "\n"))
	}
	// The check itself: a tag alone, a short digest and another Go version fail.
	for _, bad := range []string{
		"FROM golang:1.26.8-bookworm AS build",
		"FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872",
		"FROM golang:1.25.0-bookworm@sha256:" + strings.Repeat("a", 64) + " AS build",
	} {
		if len(unpinnedStages(bad, string(goVersion[1]))) == 0 {
			t.Errorf("unpinnedStages accepts %q", bad)
		}
	}
}

var fromLine = regexp.MustCompile(`(?m)^FROM\s+(?:--platform=\S+\s+)?(\S+)`)

// unpinnedStages lists the FROM lines of a Dockerfile whose image has no
// sha256 digest, or whose golang tag is not goVersion.
func unpinnedStages(dockerfile, goVersion string) []string {
	var problems []string
	froms := fromLine.FindAllStringSubmatch(dockerfile, -1)
	if len(froms) == 0 {
		return []string{"no FROM line"}
	}
	digest := regexp.MustCompile(`^[^@\s]+:[^@\s]+@sha256:[0-9a-f]{64}$`)
	for _, m := range froms {
		image := m[1]
		if !digest.MatchString(image) {
			problems = append(problems, image+": not pinned by a sha256 digest beside its tag")
		}
		if strings.HasPrefix(image, "golang:") && !strings.HasPrefix(image, "golang:"+goVersion+"-") {
			problems = append(problems, image+": want the Go version of go.work, "+goVersion)
		}
	}
	return problems
}
