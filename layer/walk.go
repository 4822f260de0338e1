package layer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// modeBits are the fs.FileMode bits an Entry carries.
const modeBits = fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// DirEntries walks root and returns an Entry for every file below it (not
// root itself), names relative to root, with Open, Dev/Ino and xattrs set.
// Symlinks are never followed, sockets are skipped, trusted.* xattrs are
// left out. Entries come in Pack order.
func DirEntries(root string) ([]Entry, error) {
	var out []Entry
	err := walk(root, func(full, name string, info fs.FileInfo) error {
		e, ok, err := fileEntry(full, name, info)
		if err != nil || !ok {
			return err
		}
		e.Xattrs = filterXattrs(e.Xattrs, "trusted.")
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// walk calls fn with the lstat info of every path below root, in
// component order (each directory lists its entries sorted by name).
func walk(root string, fn func(full, name string, info fs.FileInfo) error) error {
	st, err := os.Lstat(root)
	if err != nil {
		return fmt.Errorf("walk %s: %w", root, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("walk %s: not a directory", root)
	}
	return filepath.WalkDir(root, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", full, err)
		}
		if full == root {
			return nil
		}
		rel, err := filepath.Rel(root, full)
		if err != nil {
			return fmt.Errorf("walk %s: %w", full, err)
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking
		}
		if err != nil {
			return fmt.Errorf("walk %s: %w", full, err)
		}
		return fn(full, filepath.ToSlash(rel), info)
	})
}

// fileEntry describes the file at full, named name, from its lstat info
// and all its xattrs. ok is false for sockets.
func fileEntry(full, name string, info fs.FileInfo) (e Entry, ok bool, err error) {
	mode := info.Mode()
	if mode&(fs.ModeSocket|fs.ModeIrregular) != 0 {
		return Entry{}, false, nil
	}
	e = Entry{Name: name, Mode: mode & modeBits, ModTime: info.ModTime()}
	statEntry(&e, info)
	switch mode.Type() {
	case 0:
		e.Size = info.Size()
		e.Open = func() (io.ReadCloser, error) { return openNoFollow(full) }
	case fs.ModeSymlink:
		if e.Linkname, err = os.Readlink(full); err != nil {
			return Entry{}, false, fmt.Errorf("read symlink %s: %w", full, err)
		}
	}
	if e.Xattrs, err = readXattrs(full); err != nil {
		return Entry{}, false, err
	}
	return e, true, nil
}

// hostXattrs are set by the host's security modules on every file a build
// writes (an SELinux label, IMA/EVM signatures): they describe the machine,
// not the image, and are never packed, as Docker's archive leaves them out.
var hostXattrs = []string{"security.selinux", "security.ima", "security.evm"}

// filterXattrs drops the attributes whose names start with one of
// prefixes, and the host's security labels.
func filterXattrs(x map[string]string, prefixes ...string) map[string]string {
	for k := range x {
		if slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) || slices.Contains(hostXattrs, k) {
			delete(x, k)
		}
	}
	if len(x) == 0 {
		return nil
	}
	return x
}
