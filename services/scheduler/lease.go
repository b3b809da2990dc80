package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// lease is the value of a lease key in the run-state bucket: which instance does a job that one
// instance at a time does (the reconciler's sweeps, firing schedules), until when.
type lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// holdLease renews holder's lease at key, or takes it when it is free or expired, with
// compare-and-swap, for ttl from now. It returns the revision it wrote while holder holds it, 0
// when another instance does.
func holdLease(ctx context.Context, kv jetstream.KeyValue, key, holder string, ttl time.Duration, now time.Time) (uint64, error) {
	data, err := json.Marshal(lease{Holder: holder, Until: now.Add(ttl)})
	if err != nil {
		return 0, fmt.Errorf("encoding lease: %w", err)
	}
	var rev uint64
	entry, err := kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err = kv.Create(ctx, key, data)
	case err != nil:
		return 0, fmt.Errorf("reading lease %s: %w", key, err)
	default:
		var l lease
		if json.Unmarshal(entry.Value(), &l) == nil && l.Holder != holder && now.Before(l.Until) {
			return 0, nil
		}
		rev, err = kv.Update(ctx, key, data, entry.Revision())
	}
	switch {
	case err == nil:
		return rev, nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch), isWrongLastSequence(err):
		return 0, nil // another instance took it first
	}
	return 0, fmt.Errorf("writing lease %s: %w", key, err)
}

// releaseLease gives up holder's lease at key (written at revision rev), so that another instance
// takes over at once instead of after the lease expires.
func releaseLease(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64) error {
	if rev == 0 {
		return nil
	}
	err := kv.Delete(ctx, key, jetstream.LastRevision(rev))
	if err != nil && !isWrongLastSequence(err) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("releasing lease %s: %w", key, err)
	}
	return nil
}

// isWrongLastSequence is a compare-and-set that lost: the key changed since it was read.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
