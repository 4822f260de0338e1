//go:build linux

package layer

import (
	"fmt"
	"io/fs"
	"path"
	"syscall"
)

// Changes lists the changes an overlay upperdir holds, read from upper
// alone (never a whole-tree scan): 0/0 char devices become Whiteout entries
// (dropped when below says the path does not exist in the lower layers),
// directories with trusted.overlay.opaque=y become Opaque entries followed
// by their contents, everything else is described as DirEntries does, minus
// the trusted.overlay.* attributes. below is asked with layer names
// ("a/b"). Upperdirs written with redirect_dir or metacopy are refused:
// their changes are not all in upper. userXattr says the overlay was
// mounted with userxattr (in a user namespace): its marks are user.overlay.*,
// which otherwise are a file's own attributes.
func Changes(upper string, below func(name string) (exists bool, err error), userXattr bool) ([]Entry, error) {
	opaqueKey, prefix := overlayOpaque, overlayPrefix
	if userXattr {
		opaqueKey, prefix = userOverlayOpaque, userOverlayPrefix
	}
	var out []Entry
	opaque := make(map[string]bool)
	err := walk(upper, func(full, name string, info fs.FileInfo) error {
		if isWhiteoutDevice(info) {
			if underOpaque(opaque, name) {
				return nil
			}
			ok, err := below(name)
			if err != nil {
				return fmt.Errorf("look up %q below upperdir: %w", name, err)
			}
			if ok {
				out = append(out, Entry{Name: name, Whiteout: true})
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
		// trusted.* as root of the host, user.* in a user namespace: the
		// layer is the same either way.
		if e.Mode.IsDir() && e.Xattrs[opaqueKey] == "y" {
			ok, err := below(name)
			if err != nil {
				return fmt.Errorf("look up %q below upperdir: %w", name, err)
			}
			if ok {
				e.Opaque = true
				opaque[name] = true
			}
		}
		e.Xattrs = filterXattrs(e.Xattrs, prefix)
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
