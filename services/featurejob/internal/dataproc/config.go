package dataproc

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Modes of the engine.
const (
	ModeServerless = "serverless" // Dataproc Serverless batch (default)
	ModeCluster    = "cluster"    // ephemeral cluster, deleted whatever happens
)

// Config is the engine's configuration. The service embeds it in its own
// Config (the env tags below), and sets Project, Bucket and ScriptURI itself:
// Project and Bucket from the common GOOGLE_CLOUD_PROJECT and BUCKET, and
// ScriptURI after uploading the PySpark script under ScriptObject(script).
type Config struct {
	Mode      string `env:"DATAPROC_MODE, default=serverless"` // serverless | cluster
	Project   string `env:"DATAPROC_PROJECT"`                  // default (service wiring): GOOGLE_CLOUD_PROJECT
	Region    string `env:"DATAPROC_REGION, default=us-central1"`
	Endpoint  string `env:"DATAPROC_ENDPOINT"` // default <region>-dataproc.googleapis.com:443
	Bucket    string // the run bucket: gs://<Bucket>/runs/<run_id>/...
	ScriptURI string // gs:// URI of the uploaded PySpark script

	// Both modes.
	ServiceAccount string            `env:"DATAPROC_SERVICE_ACCOUNT"`
	Subnetwork     string            `env:"DATAPROC_SUBNETWORK"`       // subnetwork URI or name
	Properties     map[string]string `env:"DATAPROC_SPARK_PROPERTIES"` // k1:v1,k2:v2

	// Serverless.
	RuntimeVersion string `env:"DATAPROC_RUNTIME_VERSION, default=2.2"`

	// Ephemeral cluster.
	ImageVersion      string        `env:"DATAPROC_IMAGE_VERSION, default=2.2-debian12"`
	Zone              string        `env:"DATAPROC_ZONE"` // empty: Dataproc auto zone placement
	MasterMachineType string        `env:"DATAPROC_MASTER_MACHINE_TYPE, default=n2-standard-4"`
	WorkerMachineType string        `env:"DATAPROC_WORKER_MACHINE_TYPE, default=n2-standard-4"`
	Workers           int           `env:"DATAPROC_WORKERS, default=2"`
	DiskSizeGB        int           `env:"DATAPROC_DISK_SIZE_GB, default=100"`
	IdleDeleteTTL     time.Duration `env:"DATAPROC_IDLE_DELETE_TTL, default=30m"` // server-side backstop

	// Waiting (see the package comment).
	Wait           time.Duration `env:"DATAPROC_WAIT, default=8m"`           // longest one delivery waits
	PollInterval   time.Duration `env:"DATAPROC_POLL_INTERVAL, default=15s"` // between status reads
	Timeout        time.Duration `env:"DATAPROC_TIMEOUT, default=75m"`       // whole run, across deliveries
	CleanupTimeout time.Duration `env:"DATAPROC_CLEANUP_TIMEOUT, default=20s"`
}

// withDefaults fills the zero values a Config built in code (not from the
// environment) leaves empty, with the same defaults as the env tags.
func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Mode, ModeServerless)
	def(&c.Region, "us-central1")
	def(&c.Endpoint, c.Region+"-dataproc.googleapis.com:443")
	def(&c.RuntimeVersion, "2.2")
	def(&c.ImageVersion, "2.2-debian12")
	def(&c.MasterMachineType, "n2-standard-4")
	def(&c.WorkerMachineType, "n2-standard-4")
	if c.Workers == 0 {
		c.Workers = 2
	}
	if c.DiskSizeGB == 0 {
		c.DiskSizeGB = 100
	}
	defDur(&c.IdleDeleteTTL, 30*time.Minute)
	defDur(&c.Wait, 8*time.Minute)
	defDur(&c.PollInterval, 15*time.Second)
	defDur(&c.Timeout, 75*time.Minute)
	defDur(&c.CleanupTimeout, 20*time.Second)
	return c
}

// ValidateSettings checks the settings a deployment gives (the DATAPROC_*
// variables and the project), zero values taking their defaults. The
// service calls it when it starts, before it sets Bucket and ScriptURI,
// which New checks as well.
func (c Config) ValidateSettings() error {
	return joinErrors(c.withDefaults().settingsErrors())
}

func (c Config) validate() error {
	errs := c.settingsErrors()
	if c.Bucket == "" {
		errs = append(errs, errors.New("bucket is required"))
	}
	if !strings.HasPrefix(c.ScriptURI, "gs://") {
		errs = append(errs, fmt.Errorf("script URI %q: want gs://bucket/object", c.ScriptURI))
	}
	return joinErrors(errs)
}

func (c Config) settingsErrors() []error {
	var errs []error
	if c.Mode != ModeServerless && c.Mode != ModeCluster {
		errs = append(errs, fmt.Errorf("mode %q: want %s or %s", c.Mode, ModeServerless, ModeCluster))
	}
	if c.Project == "" {
		errs = append(errs, errors.New("project is required"))
	}
	if c.Workers < 2 {
		errs = append(errs, fmt.Errorf("workers %d: a standard cluster needs at least 2", c.Workers))
	}
	for name, d := range map[string]time.Duration{"wait": c.Wait, "poll interval": c.PollInterval,
		"timeout": c.Timeout, "cleanup timeout": c.CleanupTimeout, "idle delete TTL": c.IdleDeleteTTL} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", name, d))
		}
	}
	return errs
}

func joinErrors(errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dataproc config: %w", err)
	}
	return nil
}
