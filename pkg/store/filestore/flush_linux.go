package filestore

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// flush makes every write so far to the file system holding base durable with one syncfs(2), which
// costs about one fsync however many files a batch touched. paths is unused on Linux.
func flush(base string, _ []string) error {
	d, err := os.Open(base) //nolint:gosec // the store's base directory
	if err != nil {
		return fmt.Errorf("syncing %s: %w", base, err)
	}
	defer func() { _ = d.Close() }()
	if err := unix.Syncfs(int(d.Fd())); err != nil { //nolint:gosec // a file descriptor fits an int
		return fmt.Errorf("syncing %s: %w", base, err)
	}
	return nil
}
