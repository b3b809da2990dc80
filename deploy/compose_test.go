package deploy_test

import (
	"bufio"
	"context"
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

// loadCompose parses docker-compose.yml with compose-go, every profile enabled, the way
// `docker compose` would (interpolation, merge keys, path resolution, consistency checks).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	details, err := loader.LoadConfigFiles(ctx, []string{filepath.Join(root, "docker-compose.yml")}, root)
	if err != nil {
		t.Fatalf("reading docker-compose.yml: %v", err)
	}
	details.Environment = types.Mapping{}
	project, err := loader.LoadWithContext(ctx, *details, func(o *loader.Options) {
		o.SetProjectName("ork", true)
		o.Profiles = []string{"*"}
	})
	if err != nil {
		t.Fatalf("loading docker-compose.yml: %v", err)
	}
	return project
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

const dbURL = "postgres://ork:ork@postgres:5432/ork?sslmode=disable"

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	want := []string{"executor", "migrate", "nats", "ork", "postgres", "recorder", "scheduler"}
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
	for _, port := range []uint32{4222, 8222} {
		if !slices.ContainsFunc(nats.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == port }) {
			t.Errorf("nats: port %d is not published", port)
		}
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
	for k, want := range map[string]string{"POSTGRES_USER": "ork", "POSTGRES_PASSWORD": "ork", "POSTGRES_DB": "ork"} {
		if got := pg.Environment[k]; got == nil || *got != want {
			t.Errorf("postgres: %s = %v, want %q (the services' URL uses it)", k, got, want)
		}
	}

	migrate := service(t, p, "migrate")
	if !slices.Equal([]string(migrate.Command), []string{"migrate", "up", "--db", dbURL}) {
		t.Errorf("migrate: command = %v", migrate.Command)
	}
	checkDependsOn(t, migrate, map[string]string{"postgres": types.ServiceConditionHealthy})
	if migrate.Restart != "no" {
		t.Errorf("migrate: restart = %q, want no (one-shot)", migrate.Restart)
	}
}

func TestComposeOrkServices(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	waits := map[string]string{"nats": types.ServiceConditionHealthy, "migrate": types.ServiceConditionCompletedSuccessfully}
	for _, name := range []string{"recorder", "scheduler", "executor", "ork"} {
		s := service(t, p, name)
		checkDependsOn(t, s, waits)
		if got := s.Environment["ORK_NATS_URL"]; got == nil || *got != "nats://nats:4222" {
			t.Errorf("%s: ORK_NATS_URL = %v, want nats://nats:4222", name, got)
		}
	}
	rec := service(t, p, "recorder")
	checkDependsOn(t, rec, map[string]string{"postgres": types.ServiceConditionHealthy})
	if got := rec.Environment["ORK_DB_URL"]; got == nil || *got != dbURL {
		t.Errorf("recorder: ORK_DB_URL = %v, want %s", got, dbURL)
	}
	if !slices.Contains(rec.Command, "--no-migrate") {
		t.Errorf("recorder: command = %v, want --no-migrate (migrate owns the schema)", rec.Command)
	}

	exec := service(t, p, "executor")
	if exec.Deploy == nil || exec.Deploy.Replicas == nil {
		t.Error("executor: no deploy.replicas")
	} else if *exec.Deploy.Replicas != 2 {
		t.Errorf("executor: deploy.replicas = %d, want 2", *exec.Deploy.Replicas)
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
