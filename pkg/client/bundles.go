package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/bundle"
	"github.com/ork-go/ork/pkg/workflow"
)

// ErrNoBundle is a bundle the store does not hold.
var ErrNoBundle = errors.New("no such bundle")

// PutBundle stores a bundle under its hash, unless the store holds it already, and returns the
// hash. Bundles over bundle.MaxBytesDefault are refused.
func (c *Client) PutBundle(ctx context.Context, data []byte) (string, error) {
	if len(data) > bundle.MaxBytesDefault {
		return "", fmt.Errorf("a bundle of %d bytes is over the limit of %d", len(data), bundle.MaxBytesDefault)
	}
	hash := bundle.Hash(data)
	store, err := c.bus.Bundles(ctx)
	if err != nil {
		return "", err
	}
	if has, err := c.HasBundle(ctx, hash); err != nil {
		return "", fmt.Errorf("bundle %s: %w", hash, err)
	} else if has {
		return hash, nil
	}
	if _, err := store.Put(ctx, jetstream.ObjectMeta{Name: hash}, bytes.NewReader(data)); err != nil {
		return "", fmt.Errorf("storing bundle %s: %w", hash, err)
	}
	return hash, nil
}

// HasBundle reports whether the store holds the bundle named hash.
func (c *Client) HasBundle(ctx context.Context, hash string) (bool, error) {
	store, err := c.bus.Bundles(ctx)
	if err != nil {
		return false, err
	}
	_, err = store.GetInfo(ctx, hash)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	return err == nil, err
}

// GetBundle reads a bundle and checks that its bytes are the ones its hash names.
func (c *Client) GetBundle(ctx context.Context, hash string) ([]byte, error) {
	if !bundle.ValidHash(hash) {
		return nil, fmt.Errorf("%q is not a bundle name", hash)
	}
	store, err := c.bus.Bundles(ctx)
	if err != nil {
		return nil, err
	}
	r, err := store.Get(ctx, hash)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("bundle %s: %w", hash, ErrNoBundle)
	}
	if err != nil {
		return nil, fmt.Errorf("fetching bundle %s: %w", hash, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, bundle.MaxBytesDefault+1))
	if err != nil {
		return nil, fmt.Errorf("fetching bundle %s: %w", hash, err)
	}
	if got := bundle.Hash(data); got != hash {
		return nil, fmt.Errorf("bundle %s: its bytes hash to %s: refused", hash, got)
	}
	return data, nil
}

// Bundled packs the plan's folder, stores the bundle, and returns the plan that runs from it: a
// workflow submitted or registered so runs on executors that never saw this machine's disk.
func (c *Client) Bundled(ctx context.Context, p *workflow.Plan) (*workflow.Plan, error) {
	data, _, err := bundle.Pack(p.Dir, 0)
	if err != nil {
		return nil, err
	}
	hash, err := c.PutBundle(ctx, data)
	if err != nil {
		return nil, err
	}
	return p.WithBundle(hash)
}
