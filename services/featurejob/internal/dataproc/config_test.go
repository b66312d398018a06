package dataproc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cmmsflow/cmmsflow/libs/config"
)

func TestConfigFromEnvironment(t *testing.T) {
	var cfg Config
	err := config.LoadFrom(context.Background(), &cfg, map[string]string{
		"DATAPROC_MODE":             "cluster",
		"DATAPROC_SPARK_PROPERTIES": "spark.executor.instances:4,spark.sql.shuffle.partitions:64",
		"DATAPROC_WAIT":             "5m",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModeCluster || cfg.Region != "us-central1" || cfg.Wait != 5*time.Minute || cfg.Timeout != 75*time.Minute ||
		cfg.Workers != 2 || cfg.Properties["spark.sql.shuffle.partitions"] != "64" {
		t.Errorf("config = %+v", cfg)
	}
	// The env defaults and the code defaults agree.
	if got := (Config{}).withDefaults(); got.Region != cfg.Region || got.Wait != 8*time.Minute ||
		got.PollInterval != cfg.PollInterval || got.ImageVersion != cfg.ImageVersion || got.IdleDeleteTTL != cfg.IdleDeleteTTL {
		t.Errorf("withDefaults = %+v, env = %+v", got, cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Project: "p", Bucket: "b", ScriptURI: "gs://b/code/features.py"}.withDefaults()
	if err := ok.validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if ok.Endpoint != "us-central1-dataproc.googleapis.com:443" {
		t.Errorf("endpoint = %q", ok.Endpoint)
	}
	for name, mut := range map[string]func(*Config){
		"mode":    func(c *Config) { c.Mode = "yarn" },
		"project": func(c *Config) { c.Project = "" },
		"bucket":  func(c *Config) { c.Bucket = "" },
		"script":  func(c *Config) { c.ScriptURI = "/tmp/features.py" },
		"workers": func(c *Config) { c.Workers = 1 },
		"wait":    func(c *Config) { c.Wait = -time.Second },
	} {
		c := ok
		mut(&c)
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := New(context.Background(), Config{}, nil); err == nil {
		t.Error("New accepted an empty config")
	}
}

// ValidateSettings checks what the environment gives, not the bucket and
// script the service sets later.
func TestConfigValidateSettings(t *testing.T) {
	if err := (Config{Project: "p"}).ValidateSettings(); err != nil {
		t.Fatalf("defaults and a project: %v", err)
	}
	err := (Config{Mode: "yarn", PollInterval: -time.Second}).ValidateSettings()
	for _, want := range []string{"dataproc config", `mode "yarn"`, "project is required", "poll interval -1s is negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q in it", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "bucket") {
		t.Errorf("err = %v: the bucket is the service's, not a setting", err)
	}
}
