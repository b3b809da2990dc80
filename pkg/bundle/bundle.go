// Package bundle packs a workflow's folder into a content-addressed archive and unpacks it safely,
// so that a workflow can run on executors that never saw the submitter's disk.
//
// A bundle is a gzip-compressed tar of the folder's regular files and directories, in lexical
// order, with every time, owner and name field fixed, so the same files always make the same bytes;
// its name is the hex SHA-256 of those bytes. `.orkignore` in the folder lists what to leave out
// (one pattern per line, `#` comments; a pattern matches a path relative to the folder or any of its
// names; a trailing `/` matches directories only); `.git/`, `.ork/`, `__pycache__/` and `*.pyc` are
// always left out. Symbolic links are packed only when they point inside the folder.
package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// MaxBytesDefault is the largest bundle Pack makes and Unpack reads, compressed and unpacked alike.
const MaxBytesDefault = 32 << 20

// IgnoreFile names the file of patterns to leave out.
const IgnoreFile = ".orkignore"

// alwaysIgnored are left out of every bundle.
var alwaysIgnored = []string{".git/", ".ork/", "__pycache__/", "*.pyc"}

// Hash returns the name of a bundle: the hex SHA-256 of its bytes.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ValidHash reports whether s has the form of a bundle name.
func ValidHash(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// Pack packs dir (at most maxBytes, MaxBytesDefault when 0, before and after compression) and
// returns the bundle and its name.
func Pack(dir string, maxBytes int64) ([]byte, string, error) {
	if maxBytes <= 0 {
		maxBytes = MaxBytesDefault
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", err
	}
	ignore, err := readIgnore(root)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	var total int64
	epoch := time.Unix(0, 0).UTC()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(ignore, rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: rel, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case d.IsDir():
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, rel+"/", 0o755
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if !linkInside(rel, target) {
				return fmt.Errorf("%s is a symbolic link to %s, outside the folder: list it in %s, or copy what it points to", rel, target, IgnoreFile)
			}
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, filepath.ToSlash(target), 0o777
		case info.Mode().IsRegular():
			h.Typeflag, h.Size, h.Mode = tar.TypeReg, info.Size(), 0o644
			if info.Mode()&0o111 != 0 {
				h.Mode = 0o755
			}
			if total += info.Size(); total > maxBytes {
				return fmt.Errorf("the folder %s holds more than %d bytes: list what tasks do not need in %s", root, maxBytes, IgnoreFile)
			}
		default:
			return nil // sockets, devices, pipes: not a workflow's files
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, io.LimitReader(f, h.Size))
			_ = f.Close()
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return nil, "", fmt.Errorf("packing %s: %w", root, err)
	}
	if int64(buf.Len()) > maxBytes {
		return nil, "", fmt.Errorf("the bundle of %s is %d bytes, over the limit of %d", root, buf.Len(), maxBytes)
	}
	return buf.Bytes(), Hash(buf.Bytes()), nil
}

// readIgnore reads the folder's ignore patterns, after the ones always applied.
func readIgnore(root string) ([]string, error) {
	patterns := append([]string(nil), alwaysIgnored...)
	f, err := os.Open(filepath.Join(root, IgnoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return patterns, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := path.Match(strings.TrimSuffix(line, "/"), ""); err != nil {
			return nil, fmt.Errorf("%s: bad pattern %q: %w", IgnoreFile, line, err)
		}
		patterns = append(patterns, strings.TrimPrefix(line, "/"))
	}
	return patterns, sc.Err()
}

// ignored reports whether rel (slash-separated, relative to the folder) matches a pattern.
func ignored(patterns []string, rel string, isDir bool) bool {
	for _, p := range patterns {
		dirOnly := strings.HasSuffix(p, "/")
		p = strings.TrimSuffix(p, "/")
		if dirOnly && !isDir {
			continue
		}
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
		if !strings.Contains(p, "/") {
			if ok, _ := path.Match(p, path.Base(rel)); ok {
				return true
			}
		}
	}
	return false
}

// Unpack checks that data is the bundle named hash and unpacks it into dest, which must not exist:
// it is created, filled in a temporary sibling and renamed, so a folder at dest is always complete.
// Entries that would leave the folder, links pointing out of it, and bundles over maxBytes unpacked
// (MaxBytesDefault when 0) are refused.
func Unpack(data []byte, hash, dest string, maxBytes int64) error {
	if maxBytes <= 0 {
		maxBytes = MaxBytesDefault
	}
	if got := Hash(data); got != hash {
		return fmt.Errorf("bundle %s: its bytes hash to %s: refused", hash, got)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".unpack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := extract(data, tmp, maxBytes); err != nil {
		return fmt.Errorf("bundle %s: %w", hash, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		if _, statErr := os.Stat(dest); statErr == nil {
			return nil // another unpack of the same bundle won the race: the same files
		}
		return err
	}
	return nil
}

func extract(data []byte, dir string, maxBytes int64) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(zr)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			return fmt.Errorf("entry %q leaves the folder", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
			if err := root.Chmod(name, 0o755); err != nil { // whatever the umask
				return err
			}
		case tar.TypeReg:
			if total += h.Size; total > maxBytes {
				return fmt.Errorf("unpacks to more than %d bytes", maxBytes)
			}
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			err = f.Chmod(mode) // whatever the umask: a task run as another user reads it
			if err == nil {
				_, err = io.Copy(f, io.LimitReader(tr, h.Size))
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if !linkInside(name, filepath.FromSlash(h.Linkname)) {
				return fmt.Errorf("link %q points out of the folder", h.Name)
			}
			if err := root.Symlink(h.Linkname, name); err != nil {
				return err
			}
		default:
			return fmt.Errorf("entry %q is not a file, a folder or a link", h.Name)
		}
	}
}

// linkInside reports whether a link at name (relative to the folder) to target stays inside the
// folder. Targets that climb (a ".." anywhere) are refused outright: a chain of links that each
// look local can still lead out.
func linkInside(name, target string) bool {
	if filepath.IsAbs(target) || target == "" {
		return false
	}
	for _, part := range strings.Split(filepath.ToSlash(target), "/") {
		if part == ".." {
			return false
		}
	}
	return filepath.IsLocal(filepath.Join(filepath.Dir(name), target))
}
