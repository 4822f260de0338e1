//go:build linux

package layer

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// readXattrs returns every extended attribute of path (not following a
// final symlink); nil when there are none or the filesystem has none.
func readXattrs(path string) (map[string]string, error) {
	names, err := listXattrs(path)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		v, ok, err := getXattr(path, n)
		if err != nil {
			return nil, err
		}
		if ok {
			out[n] = string(v)
		}
	}
	return out, nil
}

func listXattrs(path string) ([]string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Llistxattr(path, buf)
		switch {
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, 2*len(buf))
			continue
		case errors.Is(err, unix.ENOTSUP):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("list xattrs of %s: %w", path, err)
		}
		var names []string
		for name := range bytes.SplitSeq(buf[:n], []byte{0}) {
			if len(name) > 0 {
				names = append(names, string(name))
			}
		}
		return names, nil
	}
}

// getXattr reads one attribute; ok is false when it vanished meanwhile.
func getXattr(path, name string) (value []byte, ok bool, err error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		switch {
		case errors.Is(err, unix.ERANGE):
			buf = make([]byte, 2*len(buf))
			continue
		case errors.Is(err, unix.ENODATA):
			return nil, false, nil
		case err != nil:
			return nil, false, fmt.Errorf("read xattr %s of %s: %w", name, path, err)
		}
		return buf[:n], true, nil
	}
}
