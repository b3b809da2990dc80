package executor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/ork-go/ork/pkg/bundle"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
)

// Bundles: a dispatch that names a bundle runs in the executor's copy of it, fetched from the
// ork_bundles object store once, its hash checked, unpacked into BundleDir/<hash> (readable by every
// user, writable by the executor's only, so a task run as another user can read its files and no
// one else can change them). The dispatch's Dir is then only where the bundle was packed.

// bundles serialises the fetch of each bundle, so concurrent tasks of one fetch it once.
type bundles struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (b *bundles) lock(hash string) *sync.Mutex {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.locks == nil {
		b.locks = map[string]*sync.Mutex{}
	}
	l := b.locks[hash]
	if l == nil {
		l = &sync.Mutex{}
		b.locks[hash] = l
	}
	return l
}

// bundleRoot returns the folder bundles are unpacked in, created and checked: a real directory of
// this user that no other user may write.
func bundleRoot(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the bundle directory: %w", err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("bundle directory: %w", err)
	}
	switch st, _ := info.Sys().(*syscall.Stat_t); {
	case info.Mode()&fs.ModeSymlink != 0 || !info.IsDir():
		return "", fmt.Errorf("bundle directory %s is not a directory of its own: refused", dir)
	case st != nil && int(st.Uid) != os.Getuid():
		return "", fmt.Errorf("bundle directory %s is owned by uid %d, not by this user (uid %d): refused, another user could change the tasks run from it", dir, st.Uid, os.Getuid())
	case info.Mode().Perm()&0o022 != 0:
		return "", fmt.Errorf("bundle directory %s has mode %o: other users can write it; run chmod 755 %s", dir, info.Mode().Perm(), dir)
	}
	return dir, nil
}

// bundleFolder returns the folder of the dispatch's bundle, fetching it the first time.
func (s *Service) bundleFolder(ctx context.Context, hash string) (string, *outcome) {
	if !bundle.ValidHash(hash) {
		o := failed(event.ReasonStart, fmt.Sprintf("the dispatch names the bundle %q, which is not a bundle name", hash), nil)
		return "", &o
	}
	dest := filepath.Join(s.cfg.BundleDir, hash)
	if _, err := os.Stat(dest); err == nil {
		return dest, nil
	}
	l := s.bundles.lock(hash)
	l.Lock()
	defer l.Unlock()
	if _, err := os.Stat(dest); err == nil {
		return dest, nil
	}
	data, err := client.New(s.bus).GetBundle(ctx, hash)
	if err != nil {
		msg := "fetching the workflow's bundle: " + err.Error()
		if errors.Is(err, client.ErrNoBundle) {
			msg += " (it was deleted from the ork_bundles store, or submitted to another cluster)"
		}
		o := failed(event.ReasonStart, msg, nil)
		return "", &o
	}
	if err := bundle.Unpack(data, hash, dest, 0); err != nil {
		o := failed(event.ReasonStart, "unpacking the workflow's bundle: "+err.Error(), nil)
		return "", &o
	}
	return dest, nil
}
