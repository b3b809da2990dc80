// Package bus is Ork's JetStream layer on nats.go's jetstream package: it provisions the streams,
// consumers and the run-state KV bucket (idempotently), publishes batches asynchronously and waits
// on their acks, and consumes with pull consumers, a bounded number of messages in flight and a drain
// on stop.
package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/event"
)

// Defaults of Config.
const (
	URLDefault             = nats.DefaultURL
	DuplicateWindowDefault = 2 * time.Minute
	EventsMaxBytesDefault  = 1 << 30 // 1 GiB
	LogsMaxBytesDefault    = 1 << 30
	TasksMaxMsgsDefault    = 1_000_000
	MaxAgeDefault          = 7 * 24 * time.Hour
	PublishWindowDefault   = 4096
	// Unlimited, as EventsMaxBytes, LogsMaxBytes or TasksMaxMsgs, lifts that limit.
	Unlimited = -1
)

// Config configures the connection and the streams this bus provisions.
type Config struct {
	URL  string
	Name string // client name shown by the server
	// Auth holds the credentials and TLS settings of the connection.
	Auth Auth
	// Replicas of every stream and of the KV bucket (1 on a single server).
	Replicas int
	// Memory keeps streams in memory instead of on disk (tests and benchmarks only).
	Memory bool
	// DuplicateWindow is how long the streams remember Nats-Msg-Ids. Besides making replays
	// harmless, it tells executors whether a redelivered attempt had already started (its
	// task.started is a duplicate): keep it well above the executors' AckWait.
	DuplicateWindow time.Duration
	// EventsMaxBytes and LogsMaxBytes bound the bytes ORK_EVENTS and ORK_LOGS hold, TasksMaxMsgs
	// the dispatches waiting in ORK_TASKS (Unlimited lifts a limit). The streams refuse new
	// messages past them, so publishers get an error instead of a silent drop.
	EventsMaxBytes int64
	LogsMaxBytes   int64
	TasksMaxMsgs   int64
	// MaxAge is how long ORK_EVENTS and ORK_LOGS keep messages and the run-state bucket its entries.
	MaxAge time.Duration
	// PublishWindow bounds asynchronous publishes awaiting their ack.
	PublishWindow int
	// PublishTryTimeout bounds one try of PublishUntilStored; it tries again after it.
	PublishTryTimeout time.Duration
	// InProcess, when set, connects to an in-process server without a socket.
	InProcess nats.InProcessConnProvider
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.URL == "" {
		c.URL = URLDefault
	}
	if c.Name == "" {
		c.Name = "ork"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DuplicateWindowDefault
	}
	if c.EventsMaxBytes == 0 {
		c.EventsMaxBytes = EventsMaxBytesDefault
	}
	if c.LogsMaxBytes == 0 {
		c.LogsMaxBytes = LogsMaxBytesDefault
	}
	if c.TasksMaxMsgs == 0 {
		c.TasksMaxMsgs = TasksMaxMsgsDefault
	}
	if c.MaxAge == 0 {
		c.MaxAge = MaxAgeDefault
	}
	if c.PublishTryTimeout == 0 {
		c.PublishTryTimeout = PublishTryTimeoutDefault
	}
	if c.PublishWindow == 0 {
		c.PublishWindow = PublishWindowDefault
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.URL == "" && c.InProcess == nil:
		return errors.New("bus: URL is required")
	case c.Auth.Validate() != nil:
		return c.Auth.Validate()
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("bus: Replicas must be 1..5, got %d", c.Replicas)
	case c.DuplicateWindow < time.Second:
		return fmt.Errorf("bus: DuplicateWindow must be at least 1s, got %s", c.DuplicateWindow)
	case c.PublishTryTimeout < 0:
		return fmt.Errorf("bus: PublishTryTimeout must not be negative, got %s", c.PublishTryTimeout)
	case c.PublishWindow < 1:
		return fmt.Errorf("bus: PublishWindow must be positive, got %d", c.PublishWindow)
	case c.EventsMaxBytes < 1 && c.EventsMaxBytes != Unlimited:
		return fmt.Errorf("bus: EventsMaxBytes must be positive or -1 (unlimited), got %d", c.EventsMaxBytes)
	case c.LogsMaxBytes < 1 && c.LogsMaxBytes != Unlimited:
		return fmt.Errorf("bus: LogsMaxBytes must be positive or -1 (unlimited), got %d", c.LogsMaxBytes)
	case c.TasksMaxMsgs < 1 && c.TasksMaxMsgs != Unlimited:
		return fmt.Errorf("bus: TasksMaxMsgs must be positive or -1 (unlimited), got %d", c.TasksMaxMsgs)
	case c.MaxAge < c.DuplicateWindow:
		return fmt.Errorf("bus: MaxAge (%s) must be at least DuplicateWindow (%s)", c.MaxAge, c.DuplicateWindow)
	}
	return nil
}

// Bus is a connection to NATS with JetStream.
type Bus struct {
	NC  *nats.Conn
	JS  jetstream.JetStream
	cfg Config
	log *zap.Logger

	mu sync.Mutex
	// conn lives until the connection is next lost; lost cancels it. OpContext ties operations to it.
	conn context.Context
	lost context.CancelCauseFunc
	// denied is closed, and replaced, when the server refuses an operation of this connection;
	// deniedErr says which.
	denied    chan struct{}
	deniedErr error
}

// Connect connects to the server and prepares JetStream. It reconnects forever after a loss.
func Connect(cfg Config, log *zap.Logger) (*Bus, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, log: log, denied: make(chan struct{})}
	b.conn, b.lost = context.WithCancelCause(context.Background())
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(64 << 20),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			b.connectionLost()
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", zap.String("url", nc.ConnectedUrlRedacted())) }),
		// A refused publish or subscription (the server's permissions) comes back asynchronously;
		// without this it would only show as a publish that never gets its ack.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subscription", sub.Subject))
			}
			log.Error("nats refused an operation", fields...)
			if errors.Is(err, nats.ErrPermissionViolation) {
				b.permissionDenied(err)
			}
		}),
	}
	auth, err := cfg.Auth.options()
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	if cfg.InProcess != nil {
		opts = append(opts, nats.InProcessServer(cfg.InProcess))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, connectError(cfg.URL, cfg.Auth, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(cfg.PublishWindow))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("opening jetstream: %w", err)
	}
	b.NC, b.JS = nc, js
	return b, nil
}

// ErrConnectionLost is the cause (context.Cause) of an operation context that OpContext cancelled
// because the connection to NATS was lost.
var ErrConnectionLost = errors.New("nats connection lost")

// connectionLost cancels the operations in flight and starts a new generation for the operations
// that begin from now on: their requests wait in the reconnect buffer and are sent after the
// reconnect, so they can still be answered.
func (b *Bus) connectionLost() {
	b.mu.Lock()
	lost := b.lost
	b.conn, b.lost = context.WithCancelCause(context.Background())
	b.mu.Unlock()
	lost(ErrConnectionLost)
}

// OpContext derives from parent the context of one request to the server (a KV read or write, a
// publish waiting for its ack). It is also cancelled, with cause ErrConnectionLost, when the
// connection is lost while the request is in flight: a request sent before a server crash or
// restart never gets its reply, and waiting for parent's deadline would only delay the retry. The
// caller retries once the connection is back (a nak with a short delay does that). Call cancel when
// the operation is done.
func (b *Bus) OpContext(parent context.Context) (context.Context, context.CancelFunc) {
	b.mu.Lock()
	conn := b.conn
	b.mu.Unlock()
	ctx, cancel := context.WithCancelCause(parent)
	stop := context.AfterFunc(conn, func() { cancel(context.Cause(conn)) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// Close drains the connection: pending publishes are flushed and subscriptions drained.
func (b *Bus) Close() {
	if b.NC.IsClosed() {
		return
	}
	closed := make(chan struct{})
	b.NC.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := b.NC.Drain(); err != nil {
		b.NC.Close()
		return
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		b.NC.Close()
	}
}

func (b *Bus) storage() jetstream.StorageType {
	if b.cfg.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// StreamConfigs returns the configuration of Ork's three streams.
func (b *Bus) StreamConfigs() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name: event.StreamEvents, Subjects: []string{event.SubjectEventsAll},
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew,
			MaxBytes: b.cfg.EventsMaxBytes, MaxAge: b.cfg.MaxAge, Duplicates: b.cfg.DuplicateWindow,
			Storage: b.storage(), Replicas: b.cfg.Replicas,
		},
		{
			Name: event.StreamTasks, Subjects: []string{event.SubjectTasksAll},
			Retention: jetstream.WorkQueuePolicy, Discard: jetstream.DiscardNew,
			MaxMsgs: b.cfg.TasksMaxMsgs, Duplicates: b.cfg.DuplicateWindow,
			Storage: b.storage(), Replicas: b.cfg.Replicas,
		},
		{
			Name: event.StreamLogs, Subjects: []string{event.SubjectLogsAll},
			Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew,
			MaxBytes: b.cfg.LogsMaxBytes, MaxAge: b.cfg.MaxAge, Duplicates: b.cfg.DuplicateWindow,
			Storage: b.storage(), Replicas: b.cfg.Replicas,
		},
	}
}

// Provision creates or updates the streams, the run-state bucket and the registry bucket. Running it
// twice changes nothing.
func (b *Bus) Provision(ctx context.Context) error {
	for _, sc := range b.StreamConfigs() {
		err := b.retryTransient(ctx, func(ctx context.Context) error {
			_, err := b.JS.CreateOrUpdateStream(ctx, sc)
			return err
		})
		if err != nil {
			return fmt.Errorf("provisioning stream %s: %w", sc.Name, err)
		}
	}
	for _, create := range []func(context.Context) (jetstream.KeyValue, error){b.createRuns, b.createWorkflows, b.createSchedules} {
		if err := b.retryTransient(ctx, func(ctx context.Context) error {
			_, err := create(ctx)
			return err
		}); err != nil {
			return err
		}
	}
	return b.retryTransient(ctx, func(ctx context.Context) error {
		_, err := b.createBundles(ctx)
		return err
	})
}

// Ensure creates the streams and the run-state bucket that do not exist yet, and leaves the others as
// they are: for clients such as `ork run --nats`, which must not reset the limits or the replica
// count the services provisioned (a three-replica stream updated to one replica would lose two).
// It only reads what exists, so a role without the right to create streams (docs/security.md) can
// call it once an operator has provisioned.
func (b *Bus) Ensure(ctx context.Context) error { return b.ensure(ctx, true) }

// Check reports an error naming the first stream or bucket that does not exist, and creates
// nothing: what a service started without provisioning (its role may not create streams) does.
func (b *Bus) Check(ctx context.Context) error { return b.ensure(ctx, false) }

// ErrNotProvisioned is wrapped by Check's error for a missing stream or bucket.
var ErrNotProvisioned = errors.New("not provisioned: run `ork nats provision` with the operator's credentials, or start a service with provisioning on")

func (b *Bus) ensure(ctx context.Context, create bool) error {
	for _, sc := range b.StreamConfigs() {
		err := b.retryTransient(ctx, func(ctx context.Context) error {
			_, err := b.JS.Stream(ctx, sc.Name)
			if errors.Is(err, jetstream.ErrStreamNotFound) && create {
				if _, err = b.JS.CreateStream(ctx, sc); errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
					err = nil
				}
			}
			return err
		})
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s: %w", sc.Name, ErrNotProvisioned)
		}
		if err != nil {
			return fmt.Errorf("provisioning stream %s: %w", sc.Name, err)
		}
	}
	for _, bucket := range []struct {
		name   string
		create func(context.Context) (jetstream.KeyValue, error)
	}{{event.BucketRuns, b.createRuns}, {event.BucketWorkflows, b.createWorkflows}, {event.BucketSchedules, b.createSchedules}} {
		err := b.retryTransient(ctx, func(ctx context.Context) error {
			_, err := b.JS.KeyValue(ctx, bucket.name)
			if errors.Is(err, jetstream.ErrBucketNotFound) && create {
				_, err = bucket.create(ctx)
			}
			return err
		})
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return fmt.Errorf("bucket %s: %w", bucket.name, ErrNotProvisioned)
		}
		if err != nil {
			return err
		}
	}
	err := b.retryTransient(ctx, func(ctx context.Context) error {
		_, err := b.JS.ObjectStore(ctx, event.BucketBundles)
		if errors.Is(err, jetstream.ErrBucketNotFound) && create {
			_, err = b.createBundles(ctx)
		}
		return err
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("bucket %s: %w", event.BucketBundles, ErrNotProvisioned)
	}
	return err
}

// Bounds of retryTransient.
const (
	provisionAttemptTimeout = 5 * time.Second
	provisionTimeout        = 30 * time.Second
	provisionRetryDelay     = 250 * time.Millisecond
)

// retryTransient calls fn until it succeeds, fails for a reason that waiting does not cure, or
// provisionTimeout has passed. A cluster that is still electing its leaders or placing replicas
// (several services provisioning at once as a stack starts) answers late or refuses for a moment.
// A request the server's permissions refuse gets no reply at all, only an asynchronous error: the
// attempt ends at that error, which is returned, instead of waiting out its timeout and retrying.
func (b *Bus) retryTransient(ctx context.Context, fn func(context.Context) error) error {
	deadline := time.Now().Add(provisionTimeout)
	for {
		err := b.attempt(ctx, provisionAttemptTimeout, fn)
		if err == nil || ctx.Err() != nil || !transient(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(provisionRetryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// attempt runs fn once within timeout, cut short by a permission violation: a request the server
// refuses gets no reply, only the asynchronous error, which attempt returns instead.
func (b *Bus) attempt(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	b.mu.Lock()
	denied := b.denied
	b.mu.Unlock()
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	tctx, cancelTimeout := context.WithTimeout(actx, timeout)
	defer cancelTimeout()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-denied:
			b.mu.Lock()
			err := b.deniedErr
			b.mu.Unlock()
			cancel(err)
		case <-done:
		}
	}()
	err := fn(tctx)
	if cause := context.Cause(actx); errors.Is(cause, nats.ErrPermissionViolation) {
		return fmt.Errorf("%w (the credentials' role may not do this: see docs/security.md)", cause)
	}
	return err
}

// permissionDenied records a refusal and wakes the attempts in flight.
func (b *Bus) permissionDenied(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deniedErr = err
	close(b.denied)
	b.denied = make(chan struct{})
}

// JetStream API error codes that mean "not now" rather than "no".
const (
	jsClusterNoPeers     = 10005 // no suitable peers for placement
	jsClusterUnavailable = 10008 // JetStream system temporarily unavailable
	jsClusterNotLeader   = 10009 // not the leader (yet)
	// 10023, insufficient resources, comes with status 503 and is retried with the other 503s: a
	// consumer asked for while its stream is still placing or moving its replicas gets it.
)

func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jsClusterNoPeers, jsClusterUnavailable, jsClusterNotLeader:
			return true
		}
		return apiErr.Code == 503
	}
	return false
}

// Runs opens the run-state KV bucket, which Provision (or `ork nats provision`) created, and
// retries what a cluster refuses for a moment (see retryTransient). Opening reads only the bucket's
// configuration, which every role of docs/security.md that uses the bucket may do.
func (b *Bus) Runs(ctx context.Context) (jetstream.KeyValue, error) {
	return b.bucket(ctx, event.BucketRuns)
}

// Workflows opens the bucket of registered workflows, as Runs opens the run-state bucket.
func (b *Bus) Workflows(ctx context.Context) (jetstream.KeyValue, error) {
	return b.bucket(ctx, event.BucketWorkflows)
}

func (b *Bus) bucket(ctx context.Context, name string) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := b.retryTransient(ctx, func(ctx context.Context) error {
		var err error
		kv, err = b.JS.KeyValue(ctx, name)
		return err
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("bucket %s: %w", name, ErrNotProvisioned)
	}
	return kv, err
}

// Bundles opens the object store of workflow bundles.
func (b *Bus) Bundles(ctx context.Context) (jetstream.ObjectStore, error) {
	var os jetstream.ObjectStore
	err := b.retryTransient(ctx, func(ctx context.Context) error {
		var err error
		os, err = b.JS.ObjectStore(ctx, event.BucketBundles)
		return err
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("bucket %s: %w", event.BucketBundles, ErrNotProvisioned)
	}
	return os, err
}

// createBundles creates the object store of bundles. Bundles are content-addressed and runs may be
// rerun long after: they are kept until deleted.
func (b *Bus) createBundles(ctx context.Context) (jetstream.ObjectStore, error) {
	os, err := b.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: event.BucketBundles, Storage: b.storage(), Replicas: b.cfg.Replicas,
		Description: "workflow bundles, by hash",
	})
	if err != nil {
		return nil, fmt.Errorf("provisioning object store %s: %w", event.BucketBundles, err)
	}
	return os, nil
}

// createWorkflows creates the registry bucket: the latest registration of each name, kept
// forever (a deleted workflow leaves a tombstone until it is registered again).
func (b *Bus) createWorkflows(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: event.BucketWorkflows, History: 1, Storage: b.storage(), Replicas: b.cfg.Replicas,
		MaxValueSize: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("provisioning kv bucket %s: %w", event.BucketWorkflows, err)
	}
	return kv, nil
}

// Schedules opens the bucket of schedule state and control, as Runs opens the run-state bucket.
func (b *Bus) Schedules(ctx context.Context) (jetstream.KeyValue, error) {
	return b.bucket(ctx, event.BucketSchedules)
}

// createSchedules creates the schedules bucket: kept forever (a yearly schedule's state must
// outlive any stream's age), one value per key, and no roll-ups. Submitters may write its ctl.>
// and req.> keys, never state.> (docs/security.md), but permissions name subjects, not headers: a
// message on a ctl. key with Nats-Rollup: all would purge every key of the bucket, the scheduler's
// state included. Nothing purges a key of this bucket (its deletes are delete markers), so the
// stream refuses roll-ups. The bucket is created with them, as every KV bucket is, then updated.
func (b *Bus) createSchedules(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: event.BucketSchedules, History: 1, Storage: b.storage(), Replicas: b.cfg.Replicas,
		MaxValueSize: 1 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("provisioning kv bucket %s: %w", event.BucketSchedules, err)
	}
	st, err := b.JS.Stream(ctx, schedulesStream)
	if err != nil {
		return nil, fmt.Errorf("provisioning kv bucket %s: %w", event.BucketSchedules, err)
	}
	if cfg := st.CachedInfo().Config; cfg.AllowRollup {
		cfg.AllowRollup = false
		if _, err := b.JS.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("provisioning kv bucket %s: refusing roll-ups: %w", event.BucketSchedules, err)
		}
	}
	return kv, nil
}

// schedulesStream is the stream of the schedules bucket.
const schedulesStream = "KV_" + event.BucketSchedules

func (b *Bus) createRuns(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: event.BucketRuns, History: 1, Storage: b.storage(), Replicas: b.cfg.Replicas,
		TTL: b.cfg.MaxAge,
	})
	if err != nil {
		return nil, fmt.Errorf("provisioning kv bucket %s: %w", event.BucketRuns, err)
	}
	return kv, nil
}
