// Package stack runs the whole of cmmsflow on one machine: a private
// PostgreSQL (or DATABASE_URL), the Pub/Sub emulator (the Cloud SDK's when
// installed, else an embedded one), an embedded GCS emulator, every service
// as its own process and the local cron publisher. `make up` and the e2e
// tests both start it through Start.
package stack

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cmmsflow/cmmsflow/deploy/local/djangocmms"
	"github.com/cmmsflow/cmmsflow/deploy/local/pg"
	localpubsub "github.com/cmmsflow/cmmsflow/deploy/local/pubsub"
	"github.com/cmmsflow/cmmsflow/libs/db"
	"github.com/cmmsflow/cmmsflow/libs/events"
	"github.com/cmmsflow/cmmsflow/libs/fleet"
	"github.com/cmmsflow/cmmsflow/libs/password"
	"github.com/cmmsflow/cmmsflow/libs/source"
)

// Emulator choices.
const (
	EmulatorAuto     = "auto"     // the Cloud SDK emulator when installed, else embedded
	EmulatorCloudSDK = "cloudsdk" // require the Cloud SDK emulator
	EmulatorEmbedded = "embedded" // pstest plus the pusher
)

// Options configures Start. Zero ports mean "pick a free one".
type Options struct {
	Root     string // repository root (where go.work is)
	StateDir string // default <Root>/.local
	// BinDir holds the service binaries, built beforehand (see Binaries);
	// empty builds them into <StateDir>/bin first.
	BinDir      string
	DatabaseURL string // use this database instead of a private cluster
	PGPort      int
	PubSubPort  int
	GCSPort     int
	// ServicePorts assigns fixed ports by service name; others are picked.
	ServicePorts map[string]int
	CronPort     int
	Project      string // default cmmsflow-local
	Bucket       string // default cmmsflow-local
	Emulator     string // default EmulatorAuto
	// Seed loads the demo fleet into an empty database.
	Seed        bool
	SeedOptions fleet.SeedOptions
	// Cron starts the local cron publisher.
	Cron bool
	// Env is added to every service's environment (e.g. CRON_TIME_ZONE).
	Env map[string]string
	// AdminToken is the control API's admin bearer token; empty makes a
	// random one for this start.
	AdminToken string
	// ViewerToken is a viewer (read-only) bearer token; empty makes a
	// random one for this start.
	ViewerToken string
	// AdminUser and AdminPassword are an admin user of API_USERS, who logs
	// in with HTTP Basic on the Airflow-compatible routes as Airflow's
	// clients do; by default "admin" and a random password for this start.
	AdminUser, AdminPassword string
	// Out receives the prefixed logs of every part; default os.Stdout.
	Out io.Writer

	// Fault injection, for chaos tests; all off by default (`make up`).
	//
	// DeliveryFaults, when set, makes the Pub/Sub push path deliver
	// duplicates and out-of-order events (see localpubsub.DeliveryFaults).
	DeliveryFaults *localpubsub.DeliveryFaults
	// MinRetryBackoff and MaxRetryBackoff, when set, replace the registry's
	// push retry backoff (so a test's redeliveries come in seconds).
	MinRetryBackoff, MaxRetryBackoff time.Duration
	// FastPostgres runs the private cluster with fsync off (test stacks).
	FastPostgres bool

	// DjangoSource runs cmmsflow against a mapped CMMS instead of its own
	// tables: the seeded fleet (Seed) is moved into the Django-style tables
	// of package djangocmms (schema django; cmms is left empty), the
	// shipped mapping deploy/source/django-cmms.sql is applied as
	// cmms_mapped and recorded, every service runs with
	// SOURCE_SCHEMA=cmms_mapped, and pmgen posts its work orders to the
	// CMMS's work-order API (Stack.CMMS, started with the stack).
	DjangoSource bool
}

// Stack is a running local system.
type Stack struct {
	Options
	// DatabaseURL is the owner's URL, which migrates and seeds; each service
	// connects as a login of its own (Login).
	DatabaseURL string
	PubSubHost  string
	GCSHost     string
	PubSub      *pubsub.Client
	Services    map[string]*Proc // by service name
	Cron        *Proc            // nil unless Options.Cron
	// CMMS is the Django CMMS's work-order API; nil unless
	// Options.DjangoSource.
	CMMS *djangocmms.Server
	Log  *slog.Logger
	// LogDir holds each service's raw (JSON) output, <service>.log; control
	// reads steps' log lines there (LOG_DIR).
	LogDir string

	cluster   *pg.Cluster
	cmmsPool  *pgxpool.Pool // the CMMS API's connections
	cmmsToken string
	pgStarted bool
	emulator  *localpubsub.Emulator
	gcs       *fakestorage.Server
	outMu     sync.Mutex
	logFiles  []*os.File
	// serviceURLs is each service's DATABASE_URL, of its own login; logins
	// are those logins, dropped at Stop.
	serviceURLs map[string]string
	logins      []string
}

// Start brings the whole stack up and returns when every service is ready.
// On error everything it started is stopped again.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	s := &Stack{Options: o, Services: map[string]*Proc{}}
	s.Log = slog.New(slog.NewTextHandler(s.writer("stack"), &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	t0 := time.Now()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"build", s.build},
		{"postgres", s.startPostgres},
		{"pubsub", s.startPubSub},
		{"gcs", s.startGCS},
		{"services", s.startServices},
	}
	for _, st := range steps {
		t := time.Now()
		if err := st.fn(ctx); err != nil {
			return nil, fmt.Errorf("stack: %s: %w", st.name, err)
		}
		s.Log.Info("ready", "part", st.name, "took", time.Since(t).Round(time.Millisecond))
	}
	s.Log.Info("stack ready", "took", time.Since(t0).Round(time.Millisecond))
	return s, nil
}

func (o *Options) defaults() error {
	if o.Root == "" {
		return errors.New("stack: Options.Root is required")
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.Root, ".local")
	}
	if o.Project == "" {
		o.Project = "cmmsflow-local"
	}
	if o.Bucket == "" {
		o.Bucket = "cmmsflow-local"
	}
	if o.Emulator == "" {
		o.Emulator = EmulatorAuto
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	for _, tok := range []*string{&o.AdminToken, &o.ViewerToken} {
		if *tok == "" {
			b := make([]byte, 24)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			*tok = hex.EncodeToString(b)
		}
	}
	if o.AdminUser == "" {
		o.AdminUser = "admin"
	}
	if o.AdminPassword == "" {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		o.AdminPassword = base64.RawURLEncoding.EncodeToString(b)
	}
	return nil
}

func (s *Stack) writer(prefix string) *prefixWriter {
	return &prefixWriter{mu: &s.outMu, w: s.Out, prefix: fmt.Sprintf("%-10s", prefix)}
}

// serviceWriter is a service's output: appended as it is to
// <LogDir>/<name>.log and rendered as short text on the console.
func (s *Stack) serviceWriter(name string) (*prefixWriter, error) {
	f, err := openLogFile(s.LogDir, name)
	if err != nil {
		return nil, fmt.Errorf("log file of %s: %w", name, err)
	}
	s.logFiles = append(s.logFiles, f)
	w := s.writer(name)
	w.file, w.render = f, renderLine
	return w, nil
}

// BinDirEnv names the folder of service binaries that make built before the
// tests (make test, make chaos, make bench), so no test's time budget
// covers their compilation.
const BinDirEnv = "CMMSFLOW_BIN_DIR"

// Binaries returns the folder of up-to-date service binaries: $CMMSFLOW_BIN_DIR
// when set, else dir after building them there. Tests call it before they
// start their clocks: the first build on a cold cache takes minutes.
func Binaries(ctx context.Context, root, dir string) (string, error) {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d, nil
	}
	return dir, Build(ctx, root, dir)
}

// Build compiles every service and the cron publisher into dir with the
// flags the Dockerfile uses, so the local stack runs what production runs.
// It is the Go side of the Makefile's bins target.
func Build(ctx context.Context, root, dir string) error {
	pkgs := []string{"./scheduler/cmd/cron"}
	for _, svc := range events.Services {
		pkgs = append(pkgs, "./services/"+svc+"/cmd/"+svc)
	}
	args := append([]string{"build", "-trimpath", "-o", dir + "/"}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// build compiles the binaries when no BinDir was given.
func (s *Stack) build(ctx context.Context) error {
	if s.Options.BinDir != "" {
		return nil
	}
	s.BinDir = filepath.Join(s.StateDir, "bin")
	return Build(ctx, s.Root, s.BinDir)
}

func (s *Stack) startPostgres(ctx context.Context) error {
	if s.Options.DatabaseURL != "" {
		s.DatabaseURL = s.Options.DatabaseURL
	} else {
		port, err := portOr(s.PGPort)
		if err != nil {
			return err
		}
		s.cluster = &pg.Cluster{Dir: filepath.Join(s.StateDir, "pg"), Port: port, Fast: s.FastPostgres}
		if s.pgStarted, err = s.cluster.Start(ctx); err != nil {
			return err
		}
		if err := s.cluster.EnsureDatabase(ctx, "cmmsflow"); err != nil {
			return err
		}
		s.DatabaseURL = s.cluster.URL("cmmsflow")
	}
	pool, err := db.Connect(ctx, s.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.Migrate(ctx, pool, s.Log); err != nil {
		return err
	}
	moved := false
	if s.DjangoSource {
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, djangocmms.Schema).Scan(&moved); err != nil {
			return err
		}
	}
	if s.Seed && !moved {
		empty, err := fleet.IsEmpty(ctx, pool)
		if err != nil {
			return err
		}
		if empty {
			t := time.Now()
			stats, err := fleet.Seed(ctx, pool, s.SeedOptions)
			if err != nil {
				return fmt.Errorf("seed demo data: %w", err)
			}
			s.Log.Info("demo fleet loaded", "stats", fmt.Sprintf("%+v", stats), "took", time.Since(t).Round(time.Millisecond))
		}
	}
	if s.DjangoSource {
		if err := s.startDjangoSource(ctx, pool, moved); err != nil {
			return err
		}
	}
	return s.createLogins(ctx, pool)
}

// startDjangoSource moves the fleet into the Django tables (unless moved
// already), applies the shipped mapping as the services' source, and
// starts the CMMS's work-order API.
func (s *Stack) startDjangoSource(ctx context.Context, pool *pgxpool.Pool, moved bool) error {
	mapping, err := os.ReadFile(filepath.Join(s.Root, djangocmms.MappingFile))
	if err != nil {
		return err
	}
	err = db.InTx(ctx, pool, func(tx pgx.Tx) error {
		if !moved {
			if err := djangocmms.CreateSchema(ctx, tx, s.Root); err != nil {
				return err
			}
			if err := djangocmms.MoveFleet(ctx, tx); err != nil {
				return err
			}
		}
		mismatches, err := source.Apply(ctx, tx, source.DefaultSchema, string(mapping))
		if err != nil {
			return err
		}
		if len(mismatches) > 0 {
			return fmt.Errorf("%s does not meet the source contract: %v", djangocmms.MappingFile, mismatches)
		}
		sum := sha256.Sum256(mapping)
		return source.Record(ctx, tx, source.DefaultSchema, hex.EncodeToString(sum[:]))
	})
	if err != nil {
		return fmt.Errorf("django source: %w", err)
	}
	if s.cmmsPool, err = pgxpool.New(ctx, s.DatabaseURL); err != nil {
		return err
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	s.cmmsToken = hex.EncodeToString(b)
	if s.CMMS, err = djangocmms.Start(ctx, s.cmmsPool, s.cmmsToken); err != nil {
		return err
	}
	s.Log.Info("django CMMS", "source", source.DefaultSchema, "work_orders_api", s.CMMS.WorkOrdersURL(), "moved", !moved)
	return nil
}

func (s *Stack) startPubSub(ctx context.Context) error {
	port, err := portOr(s.PubSubPort)
	if err != nil {
		return err
	}
	opts := localpubsub.Options{Port: port, Project: s.Project, LogWriter: s.writer("pubsub"), Faults: s.DeliveryFaults}
	kind := s.Emulator
	if kind == EmulatorAuto {
		kind = EmulatorEmbedded
		if localpubsub.CloudSDKAvailable() {
			kind = EmulatorCloudSDK
		}
	}
	switch kind {
	case EmulatorCloudSDK:
		s.emulator, err = localpubsub.StartCloudSDK(ctx, opts)
	case EmulatorEmbedded:
		s.emulator, err = localpubsub.StartEmbedded(ctx, opts)
	default:
		return fmt.Errorf("unknown emulator %q (want %s, %s or %s)", kind, EmulatorAuto, EmulatorCloudSDK, EmulatorEmbedded)
	}
	if err != nil {
		return err
	}
	s.PubSubHost = s.emulator.Host()
	s.Log.Info("pubsub emulator", "kind", kind, "host", s.PubSubHost)
	s.PubSub, err = s.emulator.NewClient(ctx)
	return err
}

func (s *Stack) startGCS(context.Context) error {
	port, err := portOr(s.GCSPort)
	if err != nil {
		return err
	}
	root := filepath.Join(s.StateDir, "gcs")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	s.gcs, err = fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: uint16(port), StorageRoot: root,
		PublicHost: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), NoListener: false,
		Writer: s.writer("gcs"),
	})
	if err != nil {
		return fmt.Errorf("gcs emulator: %w", err)
	}
	s.gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: s.Bucket})
	s.GCSHost = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return nil
}

// startServices defines every service's process (and cron's), provisions
// the topics and subscriptions that push to them, starts them and waits
// until each is ready.
func (s *Stack) startServices(ctx context.Context) error {
	s.LogDir = filepath.Join(s.StateDir, "logs")
	common, err := s.commonEnv()
	if err != nil {
		return err
	}
	for _, name := range events.Services {
		if err := s.defineService(name, common); err != nil {
			return err
		}
	}
	// Subscriptions first: a service may publish as soon as it starts.
	if err := s.provision(ctx); err != nil {
		return err
	}
	procs := make([]*Proc, 0, len(s.Services)+1)
	for _, name := range events.Services {
		procs = append(procs, s.Services[name])
	}
	if s.Options.Cron {
		if err := s.defineCron(common); err != nil {
			return err
		}
		procs = append(procs, s.Cron)
	}
	return startAll(ctx, procs)
}

// commonEnv is the environment every service and cron start with: this
// process's, the stack's endpoints and credentials, then Options.Env.
func (s *Stack) commonEnv() ([]string, error) {
	users, err := userEntry(s.AdminUser, s.AdminPassword, "admin")
	if err != nil {
		return nil, err
	}
	// Each service gets a DATABASE_URL of its own login (defineService);
	// the owner's, which this process may have, is nobody's.
	common := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "DATABASE_URL=") })
	common = append(common,
		"PUBSUB_EMULATOR_HOST="+s.PubSubHost,
		"STORAGE_EMULATOR_HOST="+s.GCSHost,
		"GOOGLE_CLOUD_PROJECT="+s.Project,
		"BUCKET="+s.Bucket,
		"HOST=127.0.0.1",
		"EMAIL_OUTBOX_DIR="+filepath.Join(s.StateDir, "outbox"),
		"LOG_FORMAT=json",
		"MIGRATE_ON_START=false",
		"API_TOKENS="+tokenEntry(s.AdminToken, "admin", "local-admin")+","+tokenEntry(s.ViewerToken, "viewer", "local-viewer"),
		"API_USERS="+users,
	)
	if s.DjangoSource {
		common = append(common, "SOURCE_SCHEMA="+source.DefaultSchema)
	}
	for k, v := range s.Env {
		common = append(common, k+"="+v)
	}
	return common, nil
}

// defineService sets s.Services[name], the service's process on its port,
// not yet started.
func (s *Stack) defineService(name string, common []string) error {
	port, err := portOr(s.ServicePorts[name])
	if err != nil {
		return err
	}
	out, err := s.serviceWriter(name)
	if err != nil {
		return err
	}
	env := []string{"PORT=" + strconv.Itoa(port), "DATABASE_URL=" + s.serviceURLs[name]}
	if name == events.Control {
		env = append(env, "LOG_DIR="+s.LogDir)
	}
	if name == events.Pmgen && s.CMMS != nil {
		env = append(env, "PM_BACKEND_URL="+s.CMMS.WorkOrdersURL(), "PM_BACKEND_TOKEN="+s.cmmsToken)
	}
	s.Services[name] = &Proc{
		Name: name, URL: "http://127.0.0.1:" + strconv.Itoa(port), bin: filepath.Join(s.BinDir, name), dir: s.StateDir,
		env: slices.Concat(common, env), out: out, health: "/readyz",
	}
	return nil
}

// provision creates the topics and the subscriptions pushing to the
// services' URLs, with the stack's retry backoff if set.
func (s *Stack) provision(ctx context.Context) error {
	var popts []localpubsub.ProvisionOption
	if s.MinRetryBackoff > 0 && s.MaxRetryBackoff > 0 {
		popts = append(popts, localpubsub.WithRetryBackoff(s.MinRetryBackoff, s.MaxRetryBackoff))
	}
	if err := s.emulator.Provision(ctx, s.PubSub, func(service string) string { return s.Services[service].URL }, popts...); err != nil {
		return fmt.Errorf("provision topics and subscriptions: %w", err)
	}
	return nil
}

// defineCron sets s.Cron, the local cron publisher's process, not yet
// started.
func (s *Stack) defineCron(common []string) error {
	port, err := portOr(s.CronPort)
	if err != nil {
		return err
	}
	out, err := s.serviceWriter("cron")
	if err != nil {
		return err
	}
	s.Cron = &Proc{
		Name: "cron", URL: "http://127.0.0.1:" + strconv.Itoa(port), bin: filepath.Join(s.BinDir, "cron"), dir: s.StateDir,
		env: slices.Concat(common, []string{"PORT=" + strconv.Itoa(port)}), out: out, health: "/healthz",
	}
	return nil
}

// startAll starts procs, then waits for all of them to be ready (60 s
// each, concurrently).
func startAll(ctx context.Context, procs []*Proc) error {
	for _, p := range procs {
		if err := p.Start(); err != nil {
			return err
		}
	}
	errs := make(chan error, len(procs))
	for _, p := range procs {
		go func() { errs <- p.WaitReady(ctx, 60*time.Second) }()
	}
	var all []error
	for range procs {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// RestartPostgres stops the private PostgreSQL server (fast shutdown: every
// session is ended, as a failover would) and starts it again on the same
// port after down. The services keep running and must reconnect. It is an
// error when the stack uses an external DATABASE_URL.
func (s *Stack) RestartPostgres(ctx context.Context, down time.Duration) error {
	if s.cluster == nil {
		return errors.New("stack: PostgreSQL is external (DATABASE_URL); it cannot be restarted")
	}
	if err := s.cluster.Stop(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-time.After(down):
	}
	if _, err := s.cluster.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	return nil
}

// Stop stops the services (SIGTERM, then SIGKILL after Cloud Run's 10 s),
// the emulators and the PostgreSQL server it started.
func (s *Stack) Stop() {
	var wg sync.WaitGroup
	procs := []*Proc{s.Cron}
	for _, p := range s.Services {
		procs = append(procs, p)
	}
	for _, p := range procs {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop(10 * time.Second) }()
	}
	wg.Wait()
	s.dropLogins()
	if s.PubSub != nil {
		_ = s.PubSub.Close()
	}
	if s.emulator != nil {
		_ = s.emulator.Stop()
	}
	if s.gcs != nil {
		s.gcs.Stop()
	}
	if s.CMMS != nil {
		s.CMMS.Close()
	}
	if s.cmmsPool != nil {
		s.cmmsPool.Close()
	}
	if s.pgStarted {
		if err := s.cluster.Stop(context.Background()); err != nil {
			s.Log.Warn("stop postgres", "error", err)
		}
	}
	for _, f := range s.logFiles {
		_ = f.Close()
	}
}

// tokenEntry is the API_TOKENS entry of a token: its SHA-256, role and name.
func tokenEntry(token, role, name string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:]) + ":" + role + ":" + name
}

// userEntry is the API_USERS entry of a user: name, password hash and role.
func userEntry(name, pw, role string) (string, error) {
	hash, err := password.Hash(pw)
	if err != nil {
		return "", err
	}
	return name + ":" + hash + ":" + role, nil
}

// portOr returns p, or a free loopback port when p is 0.
func portOr(p int) (int, error) {
	if p != 0 {
		return p, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
