package recorder_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/poll"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
	"github.com/ork-go/ork/services/recorder"
)

// register applies p to the registry through the client, as `ork workflows apply` does.
func (f *fixture) register(p *workflow.Plan) client.Registered {
	f.t.Helper()
	reg, changed, err := f.client.Apply(f.ctx, client.ApplyParams{Plan: p, By: "registry-test"})
	if err != nil || !changed {
		f.t.Fatalf("applying %s: changed %v, %v", p.Name, changed, err)
	}
	return reg
}

// unregister deletes name from the registry and returns the revision of its tombstone.
func (f *fixture) unregister(name string) uint64 {
	f.t.Helper()
	if err := f.client.Unregister(f.ctx, name); err != nil {
		f.t.Fatalf("unregistering %s: %v", name, err)
	}
	kv, err := f.bus.Workflows(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	hist, err := kv.History(f.ctx, name)
	if err != nil {
		f.t.Fatalf("history of %s: %v", name, err)
	}
	last := hist[len(hist)-1]
	if last.Operation() != jetstream.KeyValueDelete {
		f.t.Fatalf("last entry of %s is %v, want a delete", name, last.Operation())
	}
	return last.Revision()
}

// waitWorkflow waits until st holds the registry change of name at revision rev (or a later one)
// and returns the workflow.
func (f *fixture) waitWorkflow(st store.Store, name string, rev uint64) store.Workflow {
	f.t.Helper()
	var w store.Workflow
	poll.Until(f.t, f.ctx, fmt.Sprintf("workflow %s at registry revision %d", name, rev), func() bool {
		var err error
		w, err = st.WorkflowGet(f.ctx, store.WorkflowGetParams{Name: name})
		return err == nil && w.Revision >= rev
	})
	return w
}

// waitRegistrations waits until the recorders of f have committed at least n registry changes.
func (f *fixture) waitRegistrations(n int) {
	f.t.Helper()
	for {
		f.mu.Lock()
		got := f.registrations
		f.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-f.changed:
		case <-f.ctx.Done():
			f.t.Fatalf("%d of %d registrations committed", got, n)
		}
	}
}

func (f *fixture) registrationsCommitted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.registrations
}

// wantRegistered checks that w mirrors reg, the registry's current registration of it.
func wantRegistered(t *testing.T, w store.Workflow, reg client.Registered) {
	t.Helper()
	if !w.Registered || w.Revision != reg.Revision || w.CurrentHash != reg.Plan.Hash || w.AppliedBy != "registry-test" {
		t.Errorf("workflow %s: registered %v at revision %d, hash %s, by %q; want registered at %d, hash %s, by registry-test",
			w.Name, w.Registered, w.Revision, w.CurrentHash, w.AppliedBy, reg.Revision, reg.Plan.Hash)
	}
	if w.AppliedAt == nil || w.AppliedAt.Sub(reg.AppliedAt).Abs() > time.Millisecond {
		t.Errorf("workflow %s applied at %v, want %v", w.Name, w.AppliedAt, reg.AppliedAt)
	}
}

// versionHashes returns the hashes of the stored versions of name, newest first.
func versionHashes(t *testing.T, ctx context.Context, st store.Store, name string) []string {
	t.Helper()
	vs, err := st.WorkflowVersionList(ctx, store.WorkflowVersionListParams{Workflow: name})
	if err != nil {
		t.Fatalf("versions of %s: %v", name, err)
	}
	var out []string
	for _, v := range vs {
		out = append(out, v.Hash)
	}
	return out
}

func wantDeep(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// registryState is what the store holds of the registry: every workflow and its versions.
type registryState struct {
	Workflows []store.Workflow
	Versions  map[string][]store.WorkflowVersion
}

func readRegistryState(t *testing.T, ctx context.Context, st store.Store) registryState {
	t.Helper()
	ws, err := st.WorkflowList(ctx, store.WorkflowListParams{})
	if err != nil {
		t.Fatal(err)
	}
	s := registryState{Workflows: ws, Versions: map[string][]store.WorkflowVersion{}}
	for _, w := range ws {
		if s.Versions[w.Name], err = st.WorkflowVersionList(ctx, store.WorkflowVersionListParams{Workflow: w.Name}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// planVersion is p with another hash and one more task: a new version of the workflow.
func planVersion(p *workflow.Plan, version string) *workflow.Plan {
	q := testPlan(p.Name, "a", "b", version)
	q.Hash = p.Name + "-" + version
	return q
}

// The store follows the registry: registrations, a new version, a deletion; a new recorder
// changes nothing and catches up with what changed while none ran.
func TestMirrorsRegistry(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		st := open(t)
		stop := f.start(st, fastRetry)

		alpha, beta := testPlan("alpha", "a"), testPlan("beta", "a", "b")
		regA, regB := f.register(alpha), f.register(beta)
		wantRegistered(t, f.waitWorkflow(st, "alpha", regA.Revision), regA)
		wantRegistered(t, f.waitWorkflow(st, "beta", regB.Revision), regB)
		wantDeep(t, "alpha's versions", versionHashes(t, f.ctx, st, "alpha"), []string{alpha.Hash})
		wantDeep(t, "beta's versions", versionHashes(t, f.ctx, st, "beta"), []string{beta.Hash})

		// A new version of alpha becomes current; the old one is kept.
		alpha2 := planVersion(alpha, "v2")
		regA2 := f.register(alpha2)
		wantRegistered(t, f.waitWorkflow(st, "alpha", regA2.Revision), regA2)
		wantDeep(t, "alpha's versions", versionHashes(t, f.ctx, st, "alpha"), []string{alpha2.Hash, alpha.Hash})
		v, err := st.WorkflowVersionGet(f.ctx, store.WorkflowVersionGetParams{Hash: alpha2.Hash})
		if err != nil {
			t.Fatal(err)
		}
		var stored workflow.Plan
		if err := json.Unmarshal(v.Plan, &stored); err != nil || len(stored.Tasks) != 3 {
			t.Errorf("stored plan of %s: %d tasks, %v; want the 3 of v2", alpha2.Hash, len(stored.Tasks), err)
		}

		// Deleting beta unregisters it and keeps its row and versions.
		delB := f.unregister("beta")
		w := f.waitWorkflow(st, "beta", delB)
		if w.Registered || w.Revision != delB || w.CurrentHash != beta.Hash {
			t.Errorf("deleted beta: registered %v at %d, hash %s; want unregistered at %d, hash %s", w.Registered, w.Revision, w.CurrentHash, delB, beta.Hash)
		}
		wantDeep(t, "beta's versions", versionHashes(t, f.ctx, st, "beta"), []string{beta.Hash})
		if ws, err := st.WorkflowList(f.ctx, store.WorkflowListParams{Registered: true}); err != nil || len(ws) != 1 || ws[0].Name != "alpha" {
			t.Errorf("registered workflows %+v, %v; want alpha only", ws, err)
		}

		// A new recorder replays the bucket (alpha's value, beta's tombstone): nothing changes.
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		before := readRegistryState(t, f.ctx, st)
		replayed := f.registrationsCommitted()
		stop = f.start(st, fastRetry)
		f.waitRegistrations(replayed + 2)
		wantDeep(t, "store after a replay", readRegistryState(t, f.ctx, st), before)

		// What changes while no recorder runs is caught up by the next one.
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		gamma, beta2 := testPlan("gamma", "a"), planVersion(beta, "v2")
		regG, regB2 := f.register(gamma), f.register(beta2)
		f.start(st, fastRetry)
		wantRegistered(t, f.waitWorkflow(st, "gamma", regG.Revision), regG)
		wantRegistered(t, f.waitWorkflow(st, "beta", regB2.Revision), regB2)
		wantDeep(t, "beta's versions", versionHashes(t, f.ctx, st, "beta"), []string{beta2.Hash, beta.Hash})
		after := readRegistryState(t, f.ctx, st)
		wantDeep(t, "alpha after catching up", after.Workflows[0], before.Workflows[0])
		wantDeep(t, "alpha's versions after catching up", after.Versions["alpha"], before.Versions["alpha"])
	})
}

// A registration that arrives while the database is down is written once it is back; events
// recorded meanwhile are not held up by it.
func TestRegistrationWaitsOutAnOutage(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		inner := open(t)
		down := newFailingStore(inner, 0)
		down.always.Store(true)
		cfg := fastRetry
		cfg.IsolateAfter = 2 // a registration alone that keeps failing is not taken for poison
		f.start(down, cfg)

		p := testPlan("outage", "a")
		reg := f.register(p)
		run := event.NewID()
		evs := runEvents(run, p)
		f.publish(eventMsgs(t, evs...)...)
		poll.Until(t, f.ctx, "writes failing during the outage", func() bool { return down.calls.Load() >= 5 })
		if _, err := inner.WorkflowGet(f.ctx, store.WorkflowGetParams{Name: "outage"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("workflow stored during the outage: %v", err)
		}

		down.always.Store(false)
		wantRegistered(t, f.waitWorkflow(inner, "outage", reg.Revision), reg)
		f.waitCommitted(event.StreamEvents, len(evs))
		checkRunSucceeded(t, f.ctx, inner, run, 1)
		dls, err := inner.DeadLetterList(f.ctx, store.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 0 {
			t.Errorf("dead letters after the outage: %+v", dls)
		}
	})
}

// poisonRegistryStore refuses any batch holding a registration of workflow "poison".
type poisonRegistryStore struct{ store.Store }

func (s poisonRegistryStore) ApplyBatch(ctx context.Context, p store.ApplyBatchParams) (store.ApplyBatchResult, error) {
	for _, r := range p.Registrations {
		if r.Name == "poison" {
			return store.ApplyBatchResult{}, errors.New("value out of range")
		}
	}
	return s.Store.ApplyBatch(ctx, p)
}

// A registration the store keeps refusing while it accepts other writes is dead-lettered, named by
// the bucket's stream and the entry's revision; the mirror goes on.
func TestRejectedRegistrationIsDeadLettered(t *testing.T) {
	t.Parallel()
	f := setup(t)
	inner := openSQLite(t)
	cfg := fastRetry
	cfg.IsolateAfter = 2
	f.start(poisonRegistryStore{inner}, cfg)
	poison := f.register(testPlan("poison", "a"))
	fine := f.register(testPlan("fine", "a"))
	wantRegistered(t, f.waitWorkflow(inner, "fine", fine.Revision), fine)
	var dls []store.DeadLetter
	poll.Until(t, f.ctx, "the rejected registration's dead letter", func() bool {
		var err error
		dls, err = inner.DeadLetterList(f.ctx, store.DeadLetterListParams{})
		return err == nil && len(dls) > 0
	})
	d := dls[0]
	if len(dls) != 1 || d.Stream != recorder.RegistryStream || d.Seq != poison.Revision ||
		d.Subject != "$KV."+event.BucketWorkflows+".poison" || !strings.Contains(d.Reason, "store rejected") ||
		!strings.Contains(string(d.Data), `"name":"poison"`) {
		t.Errorf("dead letters %+v, want the poison registration's", dls)
	}
	if _, err := inner.WorkflowGet(f.ctx, store.WorkflowGetParams{Name: "poison"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rejected workflow stored: %v", err)
	}
}

// Entries that are no registrations are skipped; the mirror goes on.
func TestRegistryEntriesThatAreNoRegistrationsAreSkipped(t *testing.T) {
	t.Parallel()
	f := setup(t)
	st := openSQLite(t)
	f.start(st, fastRetry)
	kv, err := f.bus.Workflows(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := json.Marshal(testPlan("other", "a"))
	if err != nil {
		t.Fatal(err)
	}
	for key, value := range map[string]string{
		"garbage":  "\x00not json",
		"no-plan":  `{"applied_by":"someone"}`,
		"misnamed": `{"plan":` + string(other) + `}`,
	} {
		if _, err := kv.Put(f.ctx, key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	reg := f.register(testPlan("fine", "a"))
	wantRegistered(t, f.waitWorkflow(st, "fine", reg.Revision), reg)
	for _, name := range []string{"garbage", "no-plan", "misnamed", "other"} {
		if _, err := st.WorkflowGet(f.ctx, store.WorkflowGetParams{Name: name}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("workflow %s: %v, want none", name, err)
		}
	}
}

// A restarted NATS server drops the watcher's consumer; the recorder watches again and records
// what changed after the restart.
func TestMirrorSurvivesANATSRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := bustest.StartDir(t, dir)
	f := setupOn(t, srv)
	st := openSQLite(t)
	stop := f.start(st, fastRetry)
	first := f.register(testPlan("before", "a"))
	wantRegistered(t, f.waitWorkflow(st, "before", first.Revision), first)

	bustest.Restart(t, srv, dir)
	var after client.Registered
	poll.Until(t, f.ctx, "applying a workflow after the restart", func() bool {
		reg, _, err := f.client.Apply(f.ctx, client.ApplyParams{Plan: testPlan("after", "a"), By: "registry-test"})
		after = reg
		return err == nil
	})
	wantRegistered(t, f.waitWorkflow(st, "after", after.Revision), after)
	wantRegistered(t, f.waitWorkflow(st, "before", first.Revision), first)
	// Stopped while connected: the restarted server is stopped first at the end of the test.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// shippedNATS starts a server with deploy/nats-server.conf's users and permissions (on a free port,
// with its store in a temporary directory) and returns it with the password of each user.
func shippedNATS(t *testing.T) (*server.Server, func(user string) string) {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// The passwords come from the environment ($ORK_NATS_<ROLE>_PASSWORD): give each its own here.
	password := func(user string) string { return user + "-secret" }
	variable := regexp.MustCompile(`\$ORK_NATS_([A-Z]+)_PASSWORD`)
	conf = variable.ReplaceAllFunc(conf, func(m []byte) []byte {
		return []byte(`"` + password(strings.ToLower(string(variable.FindSubmatch(m)[1]))) + `"`)
	})
	path := filepath.Join(t.TempDir(), "nats-server.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("parsing deploy/nats-server.conf: %v", err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir, opts.NoLog, opts.NoSigs = t.TempDir(), true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return srv, password
}

// The recorder's role in deploy/nats-server.conf may do all the mirror needs: with the shipped
// permissions, registrations and deletions reach the store, a watcher is created again after a
// lost connection, and the server refuses nothing.
func TestMirrorWithTheShippedPermissions(t *testing.T) {
	t.Parallel()
	srv, password := shippedNATS(t)
	// The recorder connects through a proxy, to lose its connection when the test says.
	proxy := bustest.NewProxy(t, srv.Addr().String())
	connect := func(user, url string, log *zap.Logger) *bus.Bus {
		t.Helper()
		b, err := bus.Connect(bus.Config{URL: url, Auth: bus.Auth{
			User: user, Password: password(user), InboxPrefix: "_INBOX_" + user,
		}}, log)
		if err != nil {
			t.Fatalf("connecting as %s: %v", user, err)
		}
		t.Cleanup(b.Close)
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := connect("operator", srv.ClientURL(), zaptest.NewLogger(t)).Provision(ctx); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.WarnLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	recBus := connect("recorder", proxy.URL(), log.Named("bus"))
	f := fixtureOn(t, connect("submitter", srv.ClientURL(), zaptest.NewLogger(t)))
	st := openSQLite(t)
	rec, err := recorder.New(recBus, st, fastRetry, log.Named("recorder"))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rec.Run(runCtx) }()

	kept, gone := f.register(testPlan("kept", "a")), f.register(testPlan("gone", "a"))
	delGone := f.unregister("gone")
	wantRegistered(t, f.waitWorkflow(st, "kept", kept.Revision), kept)
	if w := f.waitWorkflow(st, "gone", delGone); w.Registered || gone.Revision >= w.Revision {
		t.Errorf("deleted workflow: registered %v at %d", w.Registered, w.Revision)
	}
	// A lost connection makes the recorder watch again, from the revision after the last.
	proxy.Cut()
	late := f.register(testPlan("late", "a"))
	wantRegistered(t, f.waitWorkflow(st, "late", late.Revision), late)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("recorder run: %v", err)
	}
	for _, e := range logs.All() {
		if e.Level >= zapcore.ErrorLevel {
			t.Errorf("logged %s: %s %v", e.Level, e.Message, e.ContextMap())
		}
	}
}
