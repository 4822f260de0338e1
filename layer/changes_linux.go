//go:build linux

package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Changes lists the changes an overlay upperdir holds, read from upper
// alone (never a whole-tree scan): 0/0 char devices become Whiteout entries
// (dropped when below says the path does not exist in the lower layers),
// directories with trusted.overlay.opaque=y become Opaque entries followed
// by their contents, everything else is described as DirEntries does, minus
// the trusted.overlay.* attributes. An entry that is the same as the one
// below is left out, as BuildKit's overlay differ leaves it out (a file
// opened for writing but not changed, see unchanged), but for a directory
// that holds a recorded entry, which the tar needs first, as containerd's
// tar writer adds it: a dir copied up only because a file in it was
// created and removed again is left out. Upperdirs written
// with redirect_dir or metacopy are refused: their changes are not all in
// upper.
func Changes(upper string, below Below, opts ChangeOptions) ([]Entry, error) {
	opaqueKey, prefix := overlayOpaque, overlayPrefix
	if opts.UserXattr {
		opaqueKey, prefix = userOverlayOpaque, userOverlayPrefix
	}
	var out []Entry
	opaque := make(map[string]bool)
	lowerDir := map[string]bool{} // names that are dirs below
	// Dirs left out so far: the first entry recorded below one brings it
	// back (with its parents), as containerd's tar writer adds the parents
	// of what it writes; those never brought back keep the time below.
	held := map[string]heldDir{}
	emit := func(e Entry) {
		var back []string
		for d := path.Dir(e.Name); d != "."; d = path.Dir(d) {
			if _, ok := held[d]; ok {
				back = append(back, d)
			}
		}
		for i := len(back) - 1; i >= 0; i-- {
			out = append(out, held[back[i]].e)
			delete(held, back[i])
		}
		out = append(out, e)
	}
	err := walk(upper, func(full, name string, info fs.FileInfo) error {
		if isWhiteoutDevice(info) {
			if underOpaque(opaque, name) {
				return nil
			}
			bi, _, err := below(name)
			if err != nil {
				return fmt.Errorf("look up %q below upperdir: %w", name, err)
			}
			if bi != nil {
				emit(Entry{Name: name, Whiteout: true})
			}
			return nil
		}
		e, ok, err := fileEntry(full, name, info)
		if err != nil || !ok {
			return err
		}
		for _, k := range []string{prefix + "redirect", prefix + "metacopy"} {
			if _, bad := e.Xattrs[k]; bad {
				return fmt.Errorf("read upperdir %s: %q has %s (mount with redirect_dir=off,metacopy=off)", upper, name, k)
			}
		}
		var bi fs.FileInfo
		var bhost string
		whole := opts.BelowDir != nil // a dir made anew is diffed against below as a whole
		inOpaque := underOpaque(opaque, name)
		// Under a dir made anew, below is asked only where its parent is
		// a dir below too (not a file or a symlink there).
		if !inOpaque || whole && lowerDir[path.Dir(name)] {
			if bi, bhost, err = below(name); err != nil {
				return fmt.Errorf("look up %q below upperdir: %w", name, err)
			}
		}
		if bi != nil && bi.IsDir() {
			lowerDir[name] = true
		}
		// trusted.* as root of the host, user.* in a user namespace: the
		// layer is the same either way.
		if e.Mode.IsDir() && bi != nil && (e.Xattrs[opaqueKey] == "y" || whole && inOpaque) {
			opaque[name] = true
			if !whole {
				e.Opaque = true
			} else if bi.IsDir() {
				// As BuildKit's differ (a walk of both trees): what below
				// had and the new dir lacks gets a whiteout of its own.
				gone, err := missing(full, name, opts.BelowDir)
				if err != nil {
					return err
				}
				for _, g := range gone {
					emit(Entry{Name: g, Whiteout: true})
				}
			}
		}
		if !e.Opaque && bi != nil {
			same, err := unchanged(bi, bhost, info, full)
			if err != nil {
				return fmt.Errorf("compare %q with the layers below: %w", name, err)
			}
			if same && e.Mode.IsDir() {
				e.Xattrs = filterXattrs(e.Xattrs, prefix)
				held[name] = heldDir{e, bi}
			}
			if same {
				return nil
			}
		}
		e.Xattrs = filterXattrs(e.Xattrs, prefix)
		emit(e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if opts.SameDir != nil {
		names := slices.Sorted(maps.Keys(held))
		for _, n := range names {
			if err := opts.SameDir(n, held[n].below); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// missing are the entries (layer names) below dir name that the upper
// dir full no longer has.
func missing(full, name string, belowDir func(string) ([]string, error)) ([]string, error) {
	was, err := belowDir(name)
	if err != nil {
		return nil, fmt.Errorf("list %q below upperdir: %w", name, err)
	}
	var gone []string
	for _, n := range was {
		if _, err := os.Lstat(filepath.Join(full, n)); errors.Is(err, fs.ErrNotExist) {
			gone = append(gone, path.Join(name, n))
		} else if err != nil {
			return nil, err
		}
	}
	return gone, nil
}

// heldDir is a directory Changes left out, until something under it is
// recorded.
type heldDir struct {
	e     Entry
	below fs.FileInfo
}

// unchanged reports whether the upper entry (upper, at host path up) is
// the same as the lower one, by BuildKit's rules (its overlay differ's
// sameDirent): the same type and mode, owner, device number and
// security.capability; for what is not a directory also the same size and
// mtime to the second, and then the same nanoseconds, or, when both have
// none (a time truncated by a tar), the same content or link target.
func unchanged(lower fs.FileInfo, low string, upper fs.FileInfo, up string) (bool, error) {
	ls, ok1 := lower.Sys().(*syscall.Stat_t)
	us, ok2 := upper.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 || ls.Mode != us.Mode || ls.Uid != us.Uid || ls.Gid != us.Gid || ls.Rdev != us.Rdev {
		return false, nil
	}
	lc, err := capability(low)
	if err != nil {
		return false, err
	}
	uc, err := capability(up)
	if err != nil || !bytes.Equal(lc, uc) {
		return false, err
	}
	if upper.IsDir() {
		return true, nil
	}
	return sameData(lower, low, upper.Mode(), upper.Size(), upper.ModTime(),
		func() (string, error) { return os.Readlink(up) },
		func() (io.ReadCloser, error) { return os.Open(up) })
}

// sameData is the rest of BuildKit's rule for what is not a directory,
// once type, mode and owner agree: the same size (a symlink's is its
// target's length) and mtime to the second, then the same nanoseconds,
// or, when the lower time has none (truncated by a tar), the same link
// target or content (read through target and open).
func sameData(lower fs.FileInfo, low string, mode fs.FileMode, size int64, mtime time.Time,
	target func() (string, error), open func() (io.ReadCloser, error)) (bool, error) {
	lt := lower.ModTime()
	if lower.Size() != size || lt.Unix() != mtime.Unix() || lt.Nanosecond() != mtime.Nanosecond() {
		return false, nil
	}
	if lt.Nanosecond() != 0 {
		return true, nil
	}
	switch {
	case mode&fs.ModeSymlink != 0:
		a, err1 := os.Readlink(low)
		b, err2 := target()
		return err1 == nil && err2 == nil && a == b, errors.Join(err1, err2)
	case !mode.IsRegular() || size == 0:
		return true, nil
	}
	rc, err := open()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	f, err := os.Open(low)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return sameReaders(rc, f)
}

// capability is the security.capability attribute of path (none where the
// file system has no such attributes).
func capability(path string) ([]byte, error) {
	v, _, err := getXattr(path, "security.capability")
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	return v, err
}

// sameReaders compares two streams to their ends.
func sameReaders(fa, fb io.Reader) (bool, error) {
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if erra == io.EOF || erra == io.ErrUnexpectedEOF {
			return errb == io.EOF || errb == io.ErrUnexpectedEOF, nil
		}
		if erra != nil {
			return false, erra
		}
		if errb != nil {
			return false, errb
		}
	}
}

// isWhiteoutDevice reports an overlay whiteout: a 0/0 char device.
func isWhiteoutDevice(info fs.FileInfo) bool {
	if info.Mode().Type() != fs.ModeDevice|fs.ModeCharDevice {
		return false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// underOpaque reports whether an ancestor of name is an opaque directory:
// nothing below it shows through, so no whiteout is needed there.
func underOpaque(opaque map[string]bool, name string) bool {
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if opaque[d] {
			return true
		}
	}
	return false
}

// SameAsBelow reports whether the entry e, about to be written over lower
// (its stat and host path in the layers below), is the same by the rules
// Changes applies to an upper dir (unchanged): a COPY that writes a file
// again as it already is changes nothing, as BuildKit's differ sees it.
// Its security.capability is taken as none. clamp, when set, is the
// SOURCE_DATE_EPOCH Pack clamps times to, which the layers below were
// packed with: e's time is compared as it will be written.
func SameAsBelow(e Entry, lower fs.FileInfo, low string, clamp *time.Time) (bool, error) {
	if clamp != nil && e.ModTime.After(*clamp) {
		e.ModTime = *clamp
	}
	ls, ok := lower.Sys().(*syscall.Stat_t)
	if !ok || e.Whiteout || e.Opaque || lower.Mode() != e.Mode || int(ls.Uid) != e.UID || int(ls.Gid) != e.GID ||
		unix.Major(uint64(ls.Rdev)) != e.Devmajor || unix.Minor(uint64(ls.Rdev)) != e.Devminor || len(e.Xattrs) > 0 {
		return false, nil
	}
	if c, err := capability(low); err != nil || c != nil {
		return false, err
	}
	if e.Mode.IsDir() {
		return true, nil
	}
	size := e.Size
	if e.Mode&fs.ModeSymlink != 0 {
		size = int64(len(e.Linkname)) // as lstat gives it
	}
	if e.Mode.IsRegular() && size > 0 && e.Open == nil {
		return false, nil // its content cannot be read to compare
	}
	return sameData(lower, low, e.Mode, size, e.ModTime,
		func() (string, error) { return e.Linkname, nil }, e.Open)
}
