package processes_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/schedule"
)

// roleConn is a raw connection as one role, collecting the server's refusals.
type roleConn struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	refusal chan error
}

func connectAs(t *testing.T, n *processes.NATS, role string) *roleConn {
	t.Helper()
	c := &roleConn{refusal: make(chan error, 16)}
	nc, err := nats.Connect(n.URL,
		nats.UserInfo(role, n.Secrets[role]),
		nats.CustomInboxPrefix(processes.InboxPrefix(role)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.refusal <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connecting as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// refused runs op and requires the server to refuse it: a permissions violation naming subject.
func (c *roleConn) refused(t *testing.T, what, subject string, op func(ctx context.Context) error) {
	t.Helper()
	for len(c.refusal) > 0 {
		<-c.refusal
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// A refused request gets no reply: op returns when the refusal arrives, or at the timeout.
	opDone := make(chan error, 1)
	go func() { opDone <- op(ctx) }()
	select {
	case err := <-c.refusal:
		cancel()
		<-opDone
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), subject) {
			t.Errorf("%s: refused with %v, want a permissions violation on %s", what, err, subject)
		}
	case opErr := <-opDone:
		_ = c.nc.FlushTimeout(3 * time.Second)
		select {
		case err := <-c.refusal:
			if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), subject) {
				t.Errorf("%s: refused with %v, want a permissions violation on %s", what, err, subject)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s: allowed (op returned %v), want it refused on %s", what, opErr, subject)
		}
	}
}

// allowed runs op and requires it to succeed with no refusal.
func (c *roleConn) allowed(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := op(ctx); err != nil {
		t.Errorf("%s: %v, want it allowed", what, err)
	}
	_ = c.nc.FlushTimeout(3 * time.Second)
	select {
	case err := <-c.refusal:
		t.Errorf("%s: the server refused %v", what, err)
	default:
	}
}

func publishAck(c *roleConn, subject string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.js.Publish(ctx, subject, []byte(`{}`))
		return err
	}
}

func pull(c *roleConn, stream, consumer string) func(context.Context) error {
	return func(ctx context.Context) error {
		// The request itself: Consumer() would first ask for the consumer's info.
		return c.nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+stream+"."+consumer, c.nc.NewRespInbox(), []byte(`{"batch":1,"no_wait":true}`))
	}
}

// watchCurrent watches the keys of kv matching filter until their current values (none or some)
// have been delivered.
func watchCurrent(ctx context.Context, kv jetstream.KeyValue, filter string) error {
	w, err := kv.Watch(ctx, filter)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestSecurityBoundaries starts the nats-server of deploy/nats-server.conf and tries each role's
// permissions: what the role needs works, and the forbidden operations are refused by the server.
func TestSecurityBoundaries(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startShippedNATS(ctx, t)

	t.Run("anonymous and wrong credentials are refused, with the server and the reason named", func(t *testing.T) {
		for name, cfg := range map[string]bus.Config{
			"anonymous":      {URL: n.URL},
			"wrong password": {URL: n.URL, Auth: bus.Auth{User: processes.RoleSubmitter, Password: "guess"}},
			"unknown user":   {URL: n.URL, Auth: bus.Auth{User: "admin", Password: n.Secrets[processes.RoleOperator]}},
		} {
			start := time.Now()
			b, err := bus.Connect(cfg, zap.NewNop())
			if err == nil {
				b.Close()
				t.Errorf("%s: connected", name)
				continue
			}
			if !errors.Is(err, nats.ErrAuthorization) || !strings.Contains(err.Error(), n.URL) {
				t.Errorf("%s: %v, want an authorization error naming %s", name, err, n.URL)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s: refused after %s, want within seconds", name, d)
			}
		}
	})

	// The operator provisions; nobody else may.
	op, err := bus.Connect(bus.Config{URL: n.URL, Auth: n.Secrets.Auth(processes.RoleOperator)}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(op.Close)
	if err := op.Provision(ctx); err != nil {
		t.Fatalf("the operator provisions: %v", err)
	}

	sub := connectAs(t, n, processes.RoleSubmitter)
	exe := connectAs(t, n, processes.RoleExecutor)
	sch := connectAs(t, n, processes.RoleScheduler)
	rec := connectAs(t, n, processes.RoleRecorder)
	run := event.NewID()

	t.Run("submitter", func(t *testing.T) {
		sub.allowed(t, "submit a run", publishAck(sub, event.SubjectRunSubmitted))
		sub.allowed(t, "request a cancel", publishAck(sub, event.SubjectEvent(event.TypeRunCancelRequested, run)))
		sub.allowed(t, "follow a run's events", func(ctx context.Context) error {
			cons, err := sub.js.OrderedConsumer(ctx, event.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{event.SubjectRunEvents(run)}})
			if err != nil {
				return err
			}
			if _, err = cons.Fetch(1, jetstream.FetchMaxWait(time.Second)); err != nil {
				return err
			}
			_, err = cons.Info(ctx) // how a follower of an ended run knows it has every event
			return err
		})
		sub.allowed(t, "wait for recorded notices", func(context.Context) error {
			_, err := sub.nc.SubscribeSync(event.SubjectRecordedPrefix + run)
			return err
		})
		sub.allowed(t, "read run state", func(ctx context.Context) error {
			kv, err := sub.js.KeyValue(ctx, event.BucketRuns)
			if err != nil {
				return err
			}
			if _, err := kv.Get(ctx, "run."+run); !errors.Is(err, jetstream.ErrKeyNotFound) {
				return fmt.Errorf("get: %w", err)
			}
			return nil
		})
		sub.allowed(t, "register, list, read and delete a workflow", func(ctx context.Context) error {
			kv, err := sub.js.KeyValue(ctx, event.BucketWorkflows)
			if err != nil {
				return err
			}
			if _, err := kv.Put(ctx, "sec_test", []byte(`{"plan":{}}`)); err != nil {
				return fmt.Errorf("put: %w", err)
			}
			if _, err := kv.Get(ctx, "sec_test"); err != nil {
				return fmt.Errorf("get: %w", err)
			}
			if _, err := kv.ListKeys(ctx); err != nil {
				return fmt.Errorf("list: %w", err)
			}
			return kv.Delete(ctx, "sec_test")
		})
		sub.allowed(t, "follow a run's log lines", func(ctx context.Context) error {
			cons, err := sub.js.OrderedConsumer(ctx, event.StreamLogs, jetstream.OrderedConsumerConfig{FilterSubjects: []string{event.SubjectRunLogs(run)}})
			if err != nil {
				return err
			}
			if _, err = cons.Fetch(1, jetstream.FetchMaxWait(time.Second)); err != nil {
				return err
			}
			_, err = cons.Info(ctx) // how FollowLogs knows it has every line of an ended run
			return err
		})
		sub.allowed(t, "store and read a bundle", func(ctx context.Context) error {
			obs, err := sub.js.ObjectStore(ctx, event.BucketBundles)
			if err != nil {
				return err
			}
			if _, err := obs.PutBytes(ctx, "sec-bundle", []byte("bundle bytes")); err != nil {
				return fmt.Errorf("put: %w", err)
			}
			_, err = obs.GetBytes(ctx, "sec-bundle")
			return err
		})
		sub.allowed(t, "read and watch schedules, pause one and ask for a trigger", func(ctx context.Context) error {
			kv, err := sub.js.KeyValue(ctx, event.BucketSchedules)
			if err != nil {
				return err
			}
			if _, err := kv.Get(ctx, schedule.StateKey("sec_test")); !errors.Is(err, jetstream.ErrKeyNotFound) {
				return fmt.Errorf("get state: %w", err)
			}
			if _, err := kv.Put(ctx, schedule.ControlKey("sec_test"), []byte(`{"paused":true}`)); err != nil {
				return fmt.Errorf("put control: %w", err)
			}
			if _, err := kv.Create(ctx, schedule.RequestKey("sec_test", event.NewID()), []byte(`{"kind":"trigger"}`)); err != nil {
				return fmt.Errorf("create request: %w", err)
			}
			if _, err := kv.ListKeys(ctx); err != nil { // a watch of the whole bucket
				return fmt.Errorf("list: %w", err)
			}
			return kv.Delete(ctx, schedule.ControlKey("sec_test"))
		})
		sub.refused(t, "write a schedule's state", "$KV.ork_schedules.state.", func(ctx context.Context) error {
			kv, err := sub.js.KeyValue(ctx, event.BucketSchedules)
			if err != nil {
				return err
			}
			_, err = kv.Put(ctx, schedule.StateKey("sec_test"), []byte(`{}`))
			return err
		})
		sub.refused(t, "delete a schedule's state", "$KV.ork_schedules.state.", publishAck(sub, "$KV."+event.BucketSchedules+"."+schedule.StateKey("sec_test")))
		// Permissions name subjects, not headers: a roll-up on a control key would purge every
		// state too, so the bucket refuses roll-ups (pkg/bus).
		t.Run("a roll-up on a control key purges no state", func(t *testing.T) {
			states, err := op.JS.KeyValue(ctx, event.BucketSchedules)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := states.Put(ctx, schedule.StateKey("sec_rollup"), []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			m := nats.NewMsg("$KV." + event.BucketSchedules + "." + schedule.ControlKey("sec_rollup"))
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupAll)
			if _, err := sub.js.PublishMsg(ctx, m); err == nil {
				t.Error("the submitter's roll-up of ork_schedules was stored")
			}
			if _, err := states.Get(ctx, schedule.StateKey("sec_rollup")); err != nil {
				t.Errorf("the state after the submitter's roll-up: %v", err)
			}
		})
		sub.refused(t, "steal the recorder's log lines", "$JS.API.CONSUMER.MSG.NEXT.ORK_LOGS.recorder-logs", pull(sub, event.StreamLogs, event.ConsumerRecorderLogs))
		sub.refused(t, "publish a task event", "ork.events.task.succeeded", publishAck(sub, event.SubjectEvent(event.TypeTaskSucceeded, run)))
		sub.refused(t, "publish a dispatch", "ork.tasks.process", publishAck(sub, event.SubjectTasks("process")))
		sub.refused(t, "purge the events stream", "$JS.API.STREAM.PURGE.ORK_EVENTS", func(ctx context.Context) error {
			s, err := sub.js.Stream(ctx, event.StreamEvents)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		})
		sub.refused(t, "delete a stream", "$JS.API.STREAM.DELETE.ORK_TASKS", func(ctx context.Context) error {
			return sub.js.DeleteStream(ctx, event.StreamTasks)
		})
		sub.refused(t, "read the tasks work queue", "$JS.API.CONSUMER.MSG.NEXT.ORK_TASKS.exec-process", pull(sub, event.StreamTasks, event.ConsumerExecutor("process")))
		sub.refused(t, "open a consumer on the work queue", "$JS.API.CONSUMER.CREATE.ORK_TASKS", func(ctx context.Context) error {
			_, err := sub.js.CreateOrUpdateConsumer(ctx, event.StreamTasks, jetstream.ConsumerConfig{Name: "spy", FilterSubject: event.SubjectTasksAll})
			return err
		})
		sub.refused(t, "steal the scheduler's events", "$JS.API.CONSUMER.MSG.NEXT.ORK_EVENTS.scheduler", pull(sub, event.StreamEvents, event.ConsumerScheduler))
		sub.refused(t, "write run state", "$KV.ork_runs.run.", publishAck(sub, "$KV."+event.BucketRuns+".run."+run))
		sub.refused(t, "read an executor's replies", "_INBOX_executor.>", func(context.Context) error {
			_, err := sub.nc.SubscribeSync("_INBOX_executor.>")
			return err
		})
	})

	t.Run("executor", func(t *testing.T) {
		exe.allowed(t, "create its type's consumer and pull", func(ctx context.Context) error {
			cons, err := exe.js.CreateOrUpdateConsumer(ctx, event.StreamTasks, jetstream.ConsumerConfig{
				Durable: event.ConsumerExecutor("process"), FilterSubject: event.SubjectTasks("process"), AckPolicy: jetstream.AckExplicitPolicy})
			if err != nil {
				return err
			}
			_, err = cons.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
			return err
		})
		exe.allowed(t, "publish a task event", publishAck(exe, event.SubjectEvent(event.TypeTaskStarted, run)))
		exe.allowed(t, "publish log lines", publishAck(exe, event.SubjectLogsAll[:len(event.SubjectLogsAll)-1]+run+".a"))
		exe.refused(t, "submit a run", event.SubjectRunSubmitted, publishAck(exe, event.SubjectRunSubmitted))
		exe.refused(t, "finish a run", "ork.events.run.finished", publishAck(exe, event.SubjectEvent(event.TypeRunFinished, run)))
		exe.refused(t, "publish a dispatch", "ork.tasks.process", publishAck(exe, event.SubjectTasks("process")))
		exe.refused(t, "pull another type's work", "$JS.API.CONSUMER.MSG.NEXT.ORK_TASKS.exec-gpu", pull(exe, event.StreamTasks, event.ConsumerExecutor("gpu")))
		exe.refused(t, "create another type's consumer", "$JS.API.CONSUMER.CREATE.ORK_TASKS.exec-gpu", func(ctx context.Context) error {
			_, err := exe.js.CreateOrUpdateConsumer(ctx, event.StreamTasks, jetstream.ConsumerConfig{
				Durable: event.ConsumerExecutor("gpu"), FilterSubject: event.SubjectTasks("gpu"), AckPolicy: jetstream.AckExplicitPolicy})
			return err
		})
		exe.refused(t, "write run state", "$KV.ork_runs", publishAck(exe, "$KV."+event.BucketRuns+".run."+run))
		exe.refused(t, "register a workflow", "$KV.ork_workflows", publishAck(exe, "$KV."+event.BucketWorkflows+".evil"))
		exe.refused(t, "pause a schedule", "$KV.ork_schedules.ctl.", publishAck(exe, "$KV."+event.BucketSchedules+"."+schedule.ControlKey("sec_test")))
		exe.refused(t, "trigger a schedule", "$KV.ork_schedules.req.", publishAck(exe, "$KV."+event.BucketSchedules+"."+schedule.RequestKey("sec_test", run)))
		exe.refused(t, "write a schedule's state", "$KV.ork_schedules.state.", publishAck(exe, "$KV."+event.BucketSchedules+"."+schedule.StateKey("sec_test")))
		exe.refused(t, "read a schedule's state", "$JS.API.DIRECT.GET.KV_ork_schedules", func(ctx context.Context) error {
			kv, err := exe.js.KeyValue(ctx, event.BucketSchedules)
			if err != nil {
				return err
			}
			_, err = kv.Get(ctx, schedule.StateKey("sec_test"))
			return err
		})
		exe.refused(t, "watch the schedules", "$JS.API.CONSUMER.CREATE.KV_ork_schedules", func(ctx context.Context) error {
			kv, err := exe.js.KeyValue(ctx, event.BucketSchedules)
			if err != nil {
				return err
			}
			w, err := kv.WatchAll(ctx)
			if err == nil {
				_ = w.Stop()
			}
			return err
		})
		exe.allowed(t, "fetch a bundle", func(ctx context.Context) error {
			obs, err := exe.js.ObjectStore(ctx, event.BucketBundles)
			if err != nil {
				return err
			}
			if _, err := obs.GetBytes(ctx, "sec-bundle"); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				return err
			}
			return nil
		})
		exe.refused(t, "store a bundle", "$O.ork_bundles", publishAck(exe, "$O."+event.BucketBundles+".C.evil"))
		exe.refused(t, "delete its consumer", "$JS.API.CONSUMER.DELETE.ORK_TASKS.exec-process", func(ctx context.Context) error {
			return exe.js.DeleteConsumer(ctx, event.StreamTasks, event.ConsumerExecutor("process"))
		})
	})

	t.Run("scheduler", func(t *testing.T) {
		sch.allowed(t, "publish a dispatch", publishAck(sch, event.SubjectTasks("process")))
		sch.allowed(t, "finish a run", publishAck(sch, event.SubjectEvent(event.TypeRunFinished, run)))
		sch.allowed(t, "write run state", func(ctx context.Context) error {
			kv, err := sch.js.KeyValue(ctx, event.BucketRuns)
			if err != nil {
				return err
			}
			_, err = kv.Put(ctx, "run."+run, []byte(`{}`))
			return err
		})
		sch.allowed(t, "submit a scheduled run", publishAck(sch, event.SubjectRunSubmitted))
		sch.allowed(t, "watch the registry", func(ctx context.Context) error {
			kv, err := sch.js.KeyValue(ctx, event.BucketWorkflows)
			if err != nil {
				return err
			}
			if _, err := kv.Get(ctx, "sec_test"); !errors.Is(err, jetstream.ErrKeyNotFound) {
				return fmt.Errorf("get: %w", err)
			}
			return watchCurrent(ctx, kv, ">")
		})
		sch.allowed(t, "read, write, watch and delete schedule state, controls and requests", func(ctx context.Context) error {
			kv, err := sch.js.KeyValue(ctx, event.BucketSchedules)
			if err != nil {
				return err
			}
			rev, err := kv.Create(ctx, schedule.StateKey("sec_test"), []byte(`{}`))
			if err != nil {
				return fmt.Errorf("create state: %w", err)
			}
			if _, err := kv.Update(ctx, schedule.StateKey("sec_test"), []byte(`{"fires":1}`), rev); err != nil {
				return fmt.Errorf("update state: %w", err)
			}
			if _, err := kv.Get(ctx, schedule.StateKey("sec_test")); err != nil {
				return fmt.Errorf("get state: %w", err)
			}
			for _, filter := range []string{"state.>", "ctl.>", "req.>"} {
				if err := watchCurrent(ctx, kv, filter); err != nil {
					return fmt.Errorf("watch %s: %w", filter, err)
				}
			}
			if err := kv.Delete(ctx, schedule.RequestKey("sec_test", run)); err != nil {
				return fmt.Errorf("delete a request: %w", err)
			}
			return kv.Delete(ctx, schedule.StateKey("sec_test"))
		})
		sch.refused(t, "register a workflow", "$KV.ork_workflows", publishAck(sch, "$KV."+event.BucketWorkflows+".evil"))
		sch.refused(t, "delete a registered workflow", "$KV.ork_workflows", func(ctx context.Context) error {
			kv, err := sch.js.KeyValue(ctx, event.BucketWorkflows)
			if err != nil {
				return err
			}
			return kv.Delete(ctx, "sec_test")
		})
		sch.refused(t, "delete the bucket", "$JS.API.STREAM.DELETE.KV_ork_runs", func(ctx context.Context) error {
			return sch.js.DeleteKeyValue(ctx, event.BucketRuns)
		})
		sch.refused(t, "pull the recorder's events", "$JS.API.CONSUMER.MSG.NEXT.ORK_EVENTS.recorder", pull(sch, event.StreamEvents, event.ConsumerRecorderEvents))
	})

	t.Run("recorder", func(t *testing.T) {
		rec.allowed(t, "announce a recorded run", func(context.Context) error {
			return rec.nc.Publish(event.SubjectRecordedPrefix+run, []byte(event.RunSuccess))
		})
		rec.allowed(t, "watch the registry", func(ctx context.Context) error {
			kv, err := rec.js.KeyValue(ctx, event.BucketWorkflows)
			if err != nil {
				return err
			}
			w, err := kv.WatchAll(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = w.Stop() }()
			select {
			case <-w.Updates(): // nil: the current values (none) have been delivered
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		rec.refused(t, "register a workflow", "$KV.ork_workflows", publishAck(rec, "$KV."+event.BucketWorkflows+".evil"))
		rec.refused(t, "pause a schedule", "$KV.ork_schedules.ctl.", publishAck(rec, "$KV."+event.BucketSchedules+"."+schedule.ControlKey("sec_test")))
		rec.refused(t, "publish an event", "ork.events.run.finished", publishAck(rec, event.SubjectEvent(event.TypeRunFinished, run)))
		rec.refused(t, "publish a dispatch", "ork.tasks.process", publishAck(rec, event.SubjectTasks("process")))
		rec.refused(t, "update a stream", "$JS.API.STREAM.UPDATE.ORK_EVENTS", func(ctx context.Context) error {
			_, err := rec.js.UpdateStream(ctx, jetstream.StreamConfig{Name: event.StreamEvents, Subjects: []string{event.SubjectEventsAll}})
			return err
		})
	})

	t.Run("a service without the right to provision says so at once", func(t *testing.T) {
		b, err := bus.Connect(bus.Config{URL: n.URL, Auth: n.Secrets.Auth(processes.RoleExecutor)}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		start := time.Now()
		err = b.Provision(ctx)
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "docs/security.md") {
			t.Errorf("provisioning as the executor: %v, want a permissions violation pointing to docs/security.md", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("refused after %s, want at once (no retry loop)", d)
		}
		if err := b.Check(ctx); err != nil {
			t.Errorf("checking the provisioned streams as the executor: %v", err)
		}
	})
}
