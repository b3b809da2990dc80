//go:build !linux

package filestore

import (
	"errors"
	"fmt"
	"os"
)

// flush makes paths (files and directories) durable, one fsync each, where syncfs(2) is missing.
func flush(_ string, paths []string) error { return syncPaths(paths) }

// syncPaths fsyncs files and directories one by one: the portable way to make them durable.
func syncPaths(paths []string) error {
	for _, p := range paths {
		f, err := os.Open(p) //nolint:gosec // a path under base
		if err != nil {
			return fmt.Errorf("syncing %s: %w", p, err)
		}
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(serr, cerr); err != nil {
			return fmt.Errorf("syncing %s: %w", p, err)
		}
	}
	return nil
}
