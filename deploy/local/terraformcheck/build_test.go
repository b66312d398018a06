package terraformcheck

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cmmsflow/cmmsflow/libs/events"
)

// The images: every service, plus the Vertex AI predictor and the cmmsflow
// CLI (the migrate job's).
func images() []string { return append(slices.Clone(events.Services), "predictor", "cmmsflow") }

// TestDockerfileBuildsAsMakefile: `make build` is how the Dockerfile's build
// is checked here (no docker), so both must use the same flags.
func TestDockerfileBuildsAsMakefile(t *testing.T) {
	docker, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	const flags = "CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'"
	if !strings.Contains(string(docker), flags) {
		t.Errorf("deploy/Dockerfile does not build with %s", flags)
	}
	gobuild := regexp.MustCompile(`(?m)^GOBUILD\s*:=\s*(.+)$`).FindSubmatch(mk)
	build := regexp.MustCompile(`(?m)^build:\n\t\$\(GOBUILD\) (-ldflags='[^']*') .*\./services/deployer/cmd/predictor`).FindSubmatch(mk)
	if gobuild == nil || build == nil {
		t.Fatalf("Makefile: no GOBUILD or build target building the predictor")
	}
	if got := strings.TrimSpace(string(gobuild[1])) + " " + string(build[1]); got != flags {
		t.Errorf("make build uses %q, the Dockerfile %q", got, flags)
	}
	if !strings.Contains(string(docker), "FROM gcr.io/distroless/static-debian12:nonroot") ||
		!strings.Contains(string(docker), "USER nonroot") {
		t.Error("deploy/Dockerfile: want a distroless static nonroot final stage")
	}
}

// TestCloudBuildPushesEveryImage: one build step and one pushed image per
// service, the predictor and the CLI, each from deploy/Dockerfile with its SERVICE.
func TestCloudBuildPushesEveryImage(t *testing.T) {
	b, err := os.ReadFile("../../cloudbuild.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cb struct {
		Steps []struct {
			ID   string   `yaml:"id"`
			Args []string `yaml:"args"`
		} `yaml:"steps"`
		Images []string `yaml:"images"`
	}
	if err := yaml.Unmarshal(b, &cb); err != nil {
		t.Fatal(err)
	}
	for _, img := range images() {
		ref := "${_REGION}-docker.pkg.dev/$PROJECT_ID/${_REPOSITORY}/" + img + ":${_TAG}"
		if !slices.Contains(cb.Images, ref) {
			t.Errorf("cloudbuild.yaml: %s not in images", ref)
		}
		i := slices.IndexFunc(cb.Steps, func(s struct {
			ID   string   `yaml:"id"`
			Args []string `yaml:"args"`
		}) bool {
			return s.ID == img
		})
		if i < 0 {
			t.Errorf("cloudbuild.yaml: no step %s", img)
			continue
		}
		args := cb.Steps[i].Args
		for _, want := range []string{"--file=deploy/Dockerfile", "--build-arg=SERVICE=" + img, "--tag=" + ref} {
			if !slices.Contains(args, want) {
				t.Errorf("cloudbuild.yaml step %s: no %s", img, want)
			}
		}
	}
	if len(cb.Images) != len(images()) {
		t.Errorf("cloudbuild.yaml pushes %d images, want %d", len(cb.Images), len(images()))
	}
}

// TestTerraformImages: the Terraform deploys the images Cloud Build pushes.
func TestTerraformImages(t *testing.T) {
	m, err := LoadModule(terraformDir)
	if err != nil {
		t.Fatal(err)
	}
	ev := Evaluate(m, nil)
	imgs := ev.Locals["images"]
	for _, img := range images() {
		v := attrOf(imgs, img)
		s, ok := str(v)
		if !ok || !strings.HasSuffix(s, "/"+img+":var.image_tag") {
			t.Errorf("local.images[%q] = %#v, want <repository>/%s:<image_tag>", img, v, img)
		}
	}
}
