package deploy_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
)

// repoRoot is the repository root, the build context of every image.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("no go.work at %s: %v", root, err)
	}
	return root
}

// composeSecrets stands for the .env deploy/secrets.sh writes.
var composeSecrets = map[string]string{
	"ORK_POSTGRES_PASSWORD":       "pg-secret",
	"ORK_NATS_OPERATOR_PASSWORD":  "operator-secret",
	"ORK_NATS_SCHEDULER_PASSWORD": "scheduler-secret",
	"ORK_NATS_RECORDER_PASSWORD":  "recorder-secret",
	"ORK_NATS_EXECUTOR_PASSWORD":  "executor-secret",
	"ORK_NATS_SUBMITTER_PASSWORD": "submitter-secret",
}

// loadCompose parses docker-compose.yml with compose-go, every profile enabled, the way
// `docker compose` would (interpolation, merge keys, path resolution, consistency checks), with
// composeSecrets as the environment.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadComposeWith(t, composeSecrets)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func loadComposeWith(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	details, err := loader.LoadConfigFiles(ctx, []string{filepath.Join(root, "docker-compose.yml")}, root)
	if err != nil {
		t.Fatalf("reading docker-compose.yml: %v", err)
	}
	details.Environment = types.Mapping(maps.Clone(env)) // the loader adds to it
	project, err := loader.LoadWithContext(ctx, *details, func(o *loader.Options) {
		o.SetProjectName("ork", true)
		o.Profiles = []string{"*"}
	})
	if err != nil {
		return nil, fmt.Errorf("loading docker-compose.yml: %w", err)
	}
	return project, nil
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

const dbURL = "postgres://ork:pg-secret@postgres:5432/ork?sslmode=disable"

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	want := []string{"api", "executor", "migrate", "nats", "ork", "postgres", "provision", "recorder", "scheduler"}
	got := p.ServiceNames()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("services = %v, want %v", got, want)
	}
	if ork := service(t, p, "ork"); !slices.Equal(ork.Profiles, []string{"tools"}) {
		t.Errorf("ork: profiles = %v, want [tools] so that `up` does not start it", ork.Profiles)
	}
	for _, name := range []string{"nats", "postgres"} {
		if _, ok := p.Volumes[name+"-data"]; !ok {
			t.Errorf("no named volume %s-data", name)
		}
	}
}

// The API requires tokens (it listens on the container's network), reads the recorder's database,
// resolves registered workflows where the executors see them, and is published on loopback.
func TestComposeAPI(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	a := service(t, p, "api")
	env := func(k string) string {
		if v := a.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	if env("ORK_DB_URL") != dbURL {
		t.Errorf("api: ORK_DB_URL = %q, want the recorder's database", env("ORK_DB_URL"))
	}
	if v := env("ORK_API_TOKENS"); v != "" && v != "true" {
		t.Errorf("api: ORK_API_TOKENS = %q: the compose API must require tokens", v)
	}
	exe := service(t, p, "executor")
	if roots := exe.Environment["ORK_EXECUTOR_WORKFLOW_ROOTS"]; roots == nil || env("ORK_API_WORKFLOWS_ROOT") != *roots {
		t.Errorf("api: ORK_API_WORKFLOWS_ROOT = %q, want the executors' workflow root", env("ORK_API_WORKFLOWS_ROOT"))
	}
	findVolume(t, a, env("ORK_API_WORKFLOWS_ROOT"))
	if len(a.Ports) != 1 || a.Ports[0].Target != 4000 || a.Ports[0].Published != "4000" {
		t.Errorf("api: ports = %+v, want 127.0.0.1:4000:4000", a.Ports)
	}
}

func TestComposeNATS(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	root := repoRoot(t)
	nats := service(t, p, "nats")
	// The image runs the nats-server the tests run: the minor version of the module in go.mod.
	mod, err := os.ReadFile(filepath.Join(root, "deploy", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github.com/nats-io/nats-server/v2 v(\d+\.\d+)\.`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("deploy/go.mod names no nats-server version")
	}
	if want := "nats:" + string(m[1]) + "-"; !strings.HasPrefix(nats.Image, want) {
		t.Errorf("nats: image = %q, want %s* (the nats-server the tests run)", nats.Image, want)
	}
	checkHealthcheck(t, nats, "8222/healthz")
	conf := findVolume(t, nats, "/etc/nats/nats-server.conf")
	if conf.Type != types.VolumeTypeBind || conf.Source != filepath.Join(root, "deploy", "nats-server.conf") || !conf.ReadOnly {
		t.Errorf("nats: config mount = %+v, want deploy/nats-server.conf bound read-only", conf)
	}
	if !slices.Equal([]string(nats.Command), []string{"--config", "/etc/nats/nats-server.conf"}) {
		t.Errorf("nats: command = %v, want the mounted config", nats.Command)
	}
	// The store directory of the mounted config must be on the named volume.
	opts, err := server.ProcessConfigFile(filepath.Join(root, "deploy", "nats-server.conf"))
	if err != nil {
		t.Fatalf("parsing deploy/nats-server.conf: %v", err)
	}
	data := findVolume(t, nats, opts.StoreDir)
	if data.Type != types.VolumeTypeVolume || data.Source != "nats-data" {
		t.Errorf("nats: store_dir %s is mounted from %+v, want the nats-data volume", opts.StoreDir, data)
	}
	if !slices.ContainsFunc(nats.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == 4222 }) {
		t.Error("nats: port 4222 is not published")
	}
}

func TestComposePostgresAndMigrate(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	pg := service(t, p, "postgres")
	if pg.Image != "postgres:16" {
		t.Errorf("postgres: image = %q, want postgres:16", pg.Image)
	}
	checkHealthcheck(t, pg, "pg_isready")
	if v := findVolume(t, pg, "/var/lib/postgresql/data"); v.Source != "postgres-data" {
		t.Errorf("postgres: data mounted from %q, want the postgres-data volume", v.Source)
	}
	for k, want := range map[string]string{"POSTGRES_USER": "ork", "POSTGRES_PASSWORD": "pg-secret", "POSTGRES_DB": "ork"} {
		if got := pg.Environment[k]; got == nil || *got != want {
			t.Errorf("postgres: %s = %v, want %q (the services' URL uses it)", k, got, want)
		}
	}

	migrate := service(t, p, "migrate")
	if !slices.Equal([]string(migrate.Command), []string{"migrate", "up"}) {
		t.Errorf("migrate: command = %v", migrate.Command)
	}
	if got := migrate.Environment["ORK_DB_URL"]; got == nil || *got != dbURL {
		t.Errorf("migrate: ORK_DB_URL = %v, want %s", got, dbURL)
	}
	checkDependsOn(t, migrate, map[string]string{"postgres": types.ServiceConditionHealthy})
	if migrate.Restart != "no" {
		t.Errorf("migrate: restart = %q, want no (one-shot)", migrate.Restart)
	}
}

func TestComposeOrkServices(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	waits := map[string]string{"nats": types.ServiceConditionHealthy, "provision": types.ServiceConditionCompletedSuccessfully,
		"migrate": types.ServiceConditionCompletedSuccessfully}
	for _, name := range []string{"recorder", "scheduler", "executor", "ork"} {
		s := service(t, p, name)
		checkDependsOn(t, s, waits)
		if got := s.Environment["ORK_NATS_URL"]; got == nil || *got != "nats://nats:4222" {
			t.Errorf("%s: ORK_NATS_URL = %v, want nats://nats:4222", name, got)
		}
	}
	rec := service(t, p, "recorder")
	checkDependsOn(t, rec, map[string]string{"postgres": types.ServiceConditionHealthy})
	for _, name := range []string{"recorder", "ork"} {
		if got := service(t, p, name).Environment["ORK_DB_URL"]; got == nil || *got != dbURL {
			t.Errorf("%s: ORK_DB_URL = %v, want %s", name, got, dbURL)
		}
	}
	if !slices.Contains(rec.Command, "--no-migrate") {
		t.Errorf("recorder: command = %v, want --no-migrate (migrate owns the schema)", rec.Command)
	}

	// Two schedulers, so that the schedules lease changes hands with no duplicate run.
	for _, name := range []string{"executor", "scheduler"} {
		s := service(t, p, name)
		if s.Deploy == nil || s.Deploy.Replicas == nil {
			t.Errorf("%s: no deploy.replicas", name)
		} else if *s.Deploy.Replicas != 2 {
			t.Errorf("%s: deploy.replicas = %d, want 2", name, *s.Deploy.Replicas)
		}
	}
	exec := service(t, p, "executor")
	if got := exec.Environment["ORK_EXECUTOR_WORKFLOW_ROOTS"]; got == nil || *got != "/opt/ork/examples" {
		t.Errorf("executor: ORK_EXECUTOR_WORKFLOW_ROOTS = %v, want /opt/ork/examples (the mounted workflows, and nothing else)", got)
	}
	if _, ok := exec.Environment["ORK_EXECUTOR_INSTANCE"]; ok {
		t.Error("executor: ORK_EXECUTOR_INSTANCE is set, so every replica would record the same instance")
	}
	// Plans name the directory of their YAML file: the executors and the submitting CLI must see the
	// workflows at the same path.
	root := repoRoot(t)
	for _, name := range []string{"executor", "ork"} {
		v := findVolume(t, service(t, p, name), "/opt/ork/examples")
		if v.Source != filepath.Join(root, "examples") || !v.ReadOnly {
			t.Errorf("%s: examples mount = %+v, want ./examples read-only", name, v)
		}
	}
}

// TestComposeClosed checks that the stack is closed by default (docs/security.md): every service
// connects to NATS as its own role with that role's secret, only the operator provisions, nothing
// is published beyond the host's loopback, monitoring and metrics are not published or not
// served, and no password is written in the file.
func TestComposeClosed(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	roles := map[string]string{
		"provision": "operator", "recorder": "recorder", "scheduler": "scheduler",
		"executor": "executor", "ork": "submitter", "api": "submitter",
	}
	for name, role := range roles {
		s := service(t, p, name)
		env := func(k string) string {
			if v := s.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		secret := composeSecrets["ORK_NATS_"+strings.ToUpper(role)+"_PASSWORD"]
		if env("ORK_NATS_USER") != role || env("ORK_NATS_PASSWORD") != secret {
			t.Errorf("%s: connects as %q with password %q, want role %s with its secret", name, env("ORK_NATS_USER"), env("ORK_NATS_PASSWORD"), role)
		}
		if want := "_INBOX_" + role; env("ORK_NATS_INBOX_PREFIX") != want {
			t.Errorf("%s: ORK_NATS_INBOX_PREFIX = %q, want %s (the only inbox its role may subscribe to)", name, env("ORK_NATS_INBOX_PREFIX"), want)
		}
		if role != "operator" && env("ORK_NATS_PROVISION") != "false" {
			t.Errorf("%s: ORK_NATS_PROVISION = %q, want false: its role may not create streams", name, env("ORK_NATS_PROVISION"))
		}
		if env("ORK_METRICS_ADDR") != "" {
			t.Errorf("%s: serves metrics and pprof on %s by default", name, env("ORK_METRICS_ADDR"))
		}
	}
	nats := service(t, p, "nats")
	for k, v := range composeSecrets {
		if k == "ORK_POSTGRES_PASSWORD" {
			continue
		}
		if got := nats.Environment[k]; got == nil || *got != v {
			t.Errorf("nats: %s = %v, want the .env value (deploy/nats-server.conf reads it)", k, got)
		}
	}
	for _, name := range p.ServiceNames() {
		for _, pc := range service(t, p, name).Ports {
			if pc.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d is published on %q, want 127.0.0.1 only", name, pc.Target, pc.HostIP)
			}
			if pc.Target == 8222 {
				t.Errorf("%s: the NATS monitoring port is published", name)
			}
		}
	}
	// No password in the file itself: each one is a reference to .env.
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^[ \t]*[A-Z_]*PASSWORD:[ \t]*[^$\s]\S*|^[^#\n]*postgres://[^:/\s]+:[^$@\s]+@`).Find(raw); m != nil {
		t.Errorf("docker-compose.yml holds a literal secret: %q", m)
	}
}

// TestComposeRefusesWithoutSecrets checks that compose stops, naming deploy/secrets.sh, when .env
// is missing, instead of starting with empty passwords.
func TestComposeRefusesWithoutSecrets(t *testing.T) {
	t.Parallel()
	_, err := loadComposeWith(t, map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "deploy/secrets.sh") {
		t.Fatalf("loading without .env: %v, want an error naming deploy/secrets.sh", err)
	}
}

// TestComposeBuilds checks that every image is built from the repository root with a Dockerfile
// that exists, whose COPY sources exist, and whose final stage runs as a non-root user.
func TestComposeBuilds(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	root := repoRoot(t)
	dockerfiles := map[string]bool{}
	for _, name := range p.ServiceNames() {
		s := service(t, p, name)
		if s.Build == nil {
			if name != "nats" && name != "postgres" {
				t.Errorf("%s: no build section", name)
			}
			continue
		}
		if s.Build.Context != root {
			t.Errorf("%s: build context = %s, want the repository root %s", name, s.Build.Context, root)
		}
		path := s.Build.Dockerfile
		if !filepath.IsAbs(path) {
			path = filepath.Join(s.Build.Context, path)
		}
		dockerfiles[path] = true
	}
	for _, svc := range []string{"scheduler", "executor", "recorder", "ork"} {
		path := filepath.Join(root, "deploy", svc+".Dockerfile")
		if !dockerfiles[path] {
			t.Errorf("%s is not used by any service", path)
		}
	}
	for path := range dockerfiles {
		checkDockerfile(t, root, path)
	}
}

func checkDockerfile(t *testing.T, root, path string) {
	t.Helper()
	ins, err := parseDockerfile(path)
	if err != nil {
		t.Errorf("reading %s: %v", path, err)
		return
	}
	name := filepath.Base(path)
	var froms []string
	user := ""
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args[0])
			user = "" // USER does not carry over to the next stage
		case "USER":
			user = in.args[0]
		case "COPY", "ADD":
			if slices.ContainsFunc(in.args, func(a string) bool { return strings.HasPrefix(a, "--from=") }) {
				continue
			}
			var srcs []string
			for _, a := range in.args {
				if !strings.HasPrefix(a, "--") {
					srcs = append(srcs, a)
				}
			}
			if len(srcs) < 2 {
				t.Errorf("%s:%d: %s needs a source and a destination", name, in.line, in.cmd)
				continue
			}
			for _, src := range srcs[:len(srcs)-1] {
				matches, err := filepath.Glob(filepath.Join(root, src))
				if err != nil || len(matches) == 0 {
					t.Errorf("%s:%d: COPY source %q does not exist in the build context", name, in.line, src)
				}
			}
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:1.26") {
		t.Errorf("%s: stages %v, want a golang:1.26 builder and a runtime stage", name, froms)
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("%s: final stage runs as %q, want a non-root USER", name, user)
	}
}

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	line int
	cmd  string
	args []string
}

func parseDockerfile(path string) ([]instruction, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		fields := strings.Fields(cur.String())
		cur.Reset()
		if len(fields) < 2 {
			continue
		}
		out = append(out, instruction{line: start, cmd: strings.ToUpper(fields[0]), args: fields[1:]})
	}
	return out, sc.Err()
}

func checkHealthcheck(t *testing.T, s types.ServiceConfig, want string) {
	t.Helper()
	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) < 2 {
		t.Errorf("%s: no healthcheck", s.Name)
		return
	}
	if !strings.Contains(strings.Join(hc.Test, " "), want) {
		t.Errorf("%s: healthcheck %v does not use %s", s.Name, hc.Test, want)
	}
	if hc.Interval == nil || hc.Retries == nil {
		t.Errorf("%s: healthcheck without interval or retries", s.Name)
	}
}

func checkDependsOn(t *testing.T, s types.ServiceConfig, want map[string]string) {
	t.Helper()
	for dep, cond := range want {
		got, ok := s.DependsOn[dep]
		if !ok {
			t.Errorf("%s: does not depend on %s", s.Name, dep)
			continue
		}
		if got.Condition != cond {
			t.Errorf("%s: depends on %s with condition %q, want %q", s.Name, dep, got.Condition, cond)
		}
	}
}

func findVolume(t *testing.T, s types.ServiceConfig, target string) types.ServiceVolumeConfig {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Target == target {
			return v
		}
	}
	t.Errorf("%s: nothing is mounted at %s", s.Name, target)
	return types.ServiceVolumeConfig{}
}
