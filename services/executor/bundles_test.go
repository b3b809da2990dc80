package executor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/bundle"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
)

// A dispatch that names a bundle runs from the executor's copy of it, though the folder it was
// packed from is gone; a bundle the store does not hold, or whose bytes are not the ones named, is
// refused and nothing runs.
func TestBundleRuns(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "t.py"), "def main(x):\n    return {'got': x, 'file': open('data.txt').read()}\n", 0o644)
	writeFile(t, filepath.Join(src, "data.txt"), "from the bundle", 0o644)
	writeFile(t, filepath.Join(src, "run.sh"), "#!/bin/sh\necho \"ORK_OUTPUT:\\\"$(cat data.txt)\\\"\"\n", 0o755)
	data, hash, err := bundle.Pack(src, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := client.New(h.bus).PutBundle(ctx, data); err != nil || got != hash {
		t.Fatalf("PutBundle: %s %v", got, err)
	}
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	py := pythonTask("py", "t.py", "main")
	e := h.result(t, h.dispatch(t, event.Dispatch{Task: py, Bundle: hash, Dir: src, Inputs: []byte(`{"x": 1}`)}))
	wantSuccess(t, e)
	jsonEqual(t, e.Output, `{"got": 1, "file": "from the bundle"}`)
	proc := processTask("sh", "./run.sh")
	e = h.result(t, h.dispatch(t, event.Dispatch{Task: proc, Bundle: hash, Dir: src}))
	wantSuccess(t, e)
	jsonEqual(t, e.Output, `"from the bundle"`)

	// Not in the store.
	missing := strings.Repeat("a", 64)
	e = h.result(t, h.dispatch(t, event.Dispatch{Task: processTask("m", "true"), Bundle: missing, Dir: src}))
	wantFailure(t, e, event.ReasonStart, "no such bundle")
	// Other bytes under a bundle's name.
	store, err := h.bus.Bundles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Repeat("b", 64)
	if _, err := store.Put(ctx, jetstream.ObjectMeta{Name: forged}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	e = h.result(t, h.dispatch(t, event.Dispatch{Task: processTask("f", "true"), Bundle: forged, Dir: src}))
	wantFailure(t, e, event.ReasonStart, "hash to "+hash)
	e = h.result(t, h.dispatch(t, event.Dispatch{Task: processTask("n", "true"), Bundle: "../etc", Dir: src}))
	wantFailure(t, e, event.ReasonStart, "not a bundle name")
}

// The bundle directory must not be writable by other users.
func TestBundleDirChecked(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "b")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := bundleRoot(dir); err == nil || !strings.Contains(err.Error(), "other users can write it") {
		t.Errorf("a world-writable bundle directory: %v", err)
	}
}
