package fileset

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Materialize lays the walked files of fsys out under dir, an empty
// directory (ws[0], the walk's root, is dir itself): hardlinks where the
// file system allows (no data is copied), else copies. Modes are not
// narrowed by the umask, and what it makes (dirs, symlinks, copies) gets
// the source's times, as a plain bind mount of the tree shows them.
func Materialize(ws []Walked, fsys FS, dir string) error {
	return materialize(ws, fsys, dir, false)
}

// CopyTree lays the walked files of fsys out under dir, an empty directory,
// as copies a writer may change without touching fsys: regular files are
// always copied, and every entry keeps the source's owner, mode and times
// (the start of a cache mount that begins from a stage's content).
func CopyTree(ws []Walked, fsys FS, dir string) error {
	return materialize(ws, fsys, dir, true)
}

func materialize(ws []Walked, fsys FS, dir string, owned bool) error {
	if err := StatAll(ws); err != nil {
		return err
	}
	// What this makes (dirs, symlinks, copies; not hardlinks) gets the
	// context's times afterwards, deepest first, as a plain bind shows them.
	var stamp []Walked
	for _, w := range ws {
		dst := filepath.Join(dir, filepath.FromSlash(w.Rel))
		if w.Rel == "" {
			// The root keeps the context's mode, not MkdirTemp's 0700.
			err := os.Chmod(dst, w.Info.Mode().Perm())
			if err == nil && owned {
				err = chownLike(dst, w.Info)
			}
			if err != nil {
				return fmt.Errorf("prepare bind mount: %w", err)
			}
			stamp = append(stamp, w)
			continue
		}
		host, err := fsys.HostPath(w.Src)
		if err != nil {
			return err
		}
		switch {
		case w.Info.IsDir():
			if err = os.Mkdir(dst, 0o700); err == nil {
				err = os.Chmod(dst, w.Info.Mode().Perm()) // not narrowed by the umask
			}
		case w.Info.Mode()&fs.ModeSymlink != 0:
			var target string
			if target, err = os.Readlink(host); err == nil {
				err = os.Symlink(target, dst)
			}
		case w.Info.Mode().IsRegular():
			if !owned {
				if err = os.Link(host, dst); err == nil {
					continue
				}
			}
			err = copyFile(host, dst, w.Info.Mode().Perm())
		default:
			continue // devices, fifos, sockets: not part of a copy
		}
		if err == nil && owned {
			err = chownLike(dst, w.Info)
		}
		if err != nil {
			return fmt.Errorf("prepare bind mount: %w", err)
		}
		stamp = append(stamp, w)
	}
	for i := len(stamp) - 1; i >= 0; i-- {
		t := unix.NsecToTimespec(stamp[i].Info.ModTime().UnixNano())
		dst := filepath.Join(dir, filepath.FromSlash(stamp[i].Rel))
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("prepare bind mount: %w", err)
		}
	}
	return nil
}

// chownLike gives dst (not followed) the owner of fi, and again the
// mode bits, which a chown clears for setuid/setgid files.
func chownLike(dst string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil
	}
	return os.Chmod(dst, FromOctal(st.Mode&0o7777))
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := OpenNoFollow(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if err = out.Chmod(perm); err == nil { // not narrowed by the umask
		_, err = io.Copy(out, in)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
