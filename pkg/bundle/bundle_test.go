package bundle_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/bundle"
)

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func folder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "flow.yaml"), "name: f\n", 0o644)
	write(t, filepath.Join(dir, "tasks", "t.py"), "def main(): return 1\n", 0o644)
	write(t, filepath.Join(dir, "run.sh"), "#!/bin/sh\necho hi\n", 0o755)
	write(t, filepath.Join(dir, "data", "big.csv"), "a,b\n", 0o644)
	write(t, filepath.Join(dir, "tasks", "__pycache__", "t.cpython-311.pyc"), "junk", 0o644)
	write(t, filepath.Join(dir, ".git", "HEAD"), "ref", 0o644)
	write(t, filepath.Join(dir, "notes.tmp"), "x", 0o644)
	write(t, filepath.Join(dir, bundle.IgnoreFile), "# scratch\n*.tmp\ndata/\n", 0o644)
	if err := os.Symlink("tasks/t.py", filepath.Join(dir, "link.py")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The same files make the same bundle whatever their times; ignored files are left out; unpacking
// gives back the files with their execute bits.
func TestPackUnpack(t *testing.T) {
	dir := folder(t)
	data, hash, err := bundle.Pack(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bundle.ValidHash(hash) || hash != bundle.Hash(data) {
		t.Fatalf("hash %q", hash)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "flow.yaml"), later, later); err != nil {
		t.Fatal(err)
	}
	if _, again, err := bundle.Pack(dir, 0); err != nil || again != hash {
		t.Fatalf("packing again: %s %v, want %s", again, err, hash)
	}
	dest := filepath.Join(t.TempDir(), hash)
	if err := bundle.Unpack(data, hash, dest, 0); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{
		"flow.yaml": true, "tasks/t.py": true, "run.sh": true, "link.py": true, bundle.IgnoreFile: true,
		"data/big.csv": false, "notes.tmp": false, ".git/HEAD": false, "tasks/__pycache__/t.cpython-311.pyc": false,
	} {
		_, err := os.Lstat(filepath.Join(dest, rel))
		if got := err == nil; got != want {
			t.Errorf("%s in the bundle: %v, want %v", rel, got, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dest, "run.sh")); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("run.sh lost its execute bit: %v %v", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "link.py")); err != nil || !strings.Contains(string(b), "def main") {
		t.Errorf("the link inside the folder: %q %v", b, err)
	}
	// Unpacking again over a complete folder is harmless.
	if err := bundle.Unpack(data, hash, dest, 0); err != nil {
		t.Errorf("a second unpack: %v", err)
	}
}

// Pack refuses a link out of the folder and a folder over the limit.
func TestPackRefuses(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.txt"), strings.Repeat("x", 1000), 0o644)
	if _, _, err := bundle.Pack(dir, 500); err == nil || !strings.Contains(err.Error(), "more than 500 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bundle.Pack(dir, 0); err == nil || !strings.Contains(err.Error(), "outside the folder") {
		t.Errorf("a link out: %v", err)
	}
}

// tarball builds a bundle by hand, for entries Pack would never make.
func tarball(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(bytes.Repeat([]byte("x"), int(h.Size))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Unpack refuses bytes that are not the bundle named, entries that climb out, links out, and
// bundles that unpack too big; nothing is left at the destination.
func TestUnpackRefuses(t *testing.T) {
	good := tarball(t, &tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644})
	for name, c := range map[string]struct {
		data []byte
		hash string
		max  int64
		msg  string
	}{
		"tampered": {good, strings.Repeat("0", 64), 0, "hash to"},
		"climbing": {tarball(t, &tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}), "", 0, "leaves the folder"},
		"absolute": {tarball(t, &tar.Header{Name: "/etc/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}), "", 0, "leaves the folder"},
		"link out": {tarball(t, &tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"}), "", 0, "points out"},
		"too big":  {tarball(t, &tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 2000, Mode: 0o644}), "", 1000, "more than 1000 bytes"},
		"device":   {tarball(t, &tar.Header{Name: "dev", Typeflag: tar.TypeChar}), "", 0, "not a file"},
	} {
		t.Run(name, func(t *testing.T) {
			hash := c.hash
			if hash == "" {
				hash = bundle.Hash(c.data)
			}
			dest := filepath.Join(t.TempDir(), "b")
			err := bundle.Unpack(c.data, hash, dest, c.max)
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v, want %q", err, c.msg)
			}
			if _, err := os.Stat(dest); err == nil {
				t.Error("a refused bundle left a folder")
			}
		})
	}
}

// A chain of links that each look local is refused: no link target may climb.
func TestLinkChainRefused(t *testing.T) {
	data := tarball(t,
		&tar.Header{Name: "b", Typeflag: tar.TypeSymlink, Linkname: "."},
		&tar.Header{Name: "c", Typeflag: tar.TypeSymlink, Linkname: "b/.."},
		&tar.Header{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "c/../outside.txt"})
	err := bundle.Unpack(data, bundle.Hash(data), filepath.Join(t.TempDir(), "x"), 0)
	if err == nil || !strings.Contains(err.Error(), "points out") {
		t.Fatalf("err = %v", err)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f"), "x", 0o644)
	if err := os.Symlink("sub/../f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := bundle.Pack(dir, 0); err == nil || !strings.Contains(err.Error(), "outside the folder") {
		t.Errorf("packing a climbing link: %v", err)
	}
}

// Unpacked files and folders are readable by every user whatever the umask.
func TestUnpackModesIgnoreUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := folder(t)
	data, hash, err := bundle.Pack(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "b")
	if err := bundle.Unpack(data, hash, dest, 0); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]os.FileMode{"tasks": 0o755, "tasks/t.py": 0o644, "run.sh": 0o755} {
		if fi, err := os.Stat(filepath.Join(dest, rel)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %o", rel, fi.Mode().Perm(), err, want)
		}
	}
}
