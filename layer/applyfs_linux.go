//go:build linux

package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/builderdev/builder/internal/fsmode"
	"golang.org/x/sys/unix"
)

// resolveFlags resolve every path as if the target directory were "/".
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// Overlayfs' own attributes: trusted.* as root of the host, user.* in a
// user namespace (the userxattr mount option, ApplyOptions.UserXattr).
const (
	overlayOpaque     = "trusted.overlay.opaque"
	overlayPrefix     = "trusted.overlay."
	userOverlayOpaque = "user.overlay.opaque"
	userOverlayPrefix = "user.overlay."
)

// dot turns the root name "" into ".".
func dot(name string) string {
	if name == "" {
		return "."
	}
	return name
}

// procPath names base inside the directory fd through /proc, for the
// xattr calls that have no *at form; fd alone when base is empty.
func procPath(fd int, base string) string {
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	if base != "" {
		p += "/" + base
	}
	return p
}

// openDir opens the directory name below the root as an O_PATH fd, resolving
// symlinks as if chrooted at the root. The caller closes it.
func (a *applier) openDir(name string) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: resolveFlags,
	}
	for range 16 {
		fd, err := unix.Openat2(a.root, dot(name), how)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("open directory %q: %w", name, err)
		}
		return fd, nil
	}
	return -1, fmt.Errorf("open directory %q: %w", name, unix.EAGAIN)
}

// mkdirAll opens the directory name, creating the missing parents the tar
// does not list (see implicitDir). The caller closes the fd.
func (a *applier) mkdirAll(name string) (int, error) {
	fd, err := a.openDir(name)
	if err == nil || name == "" || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	pdir, base := splitName(name)
	pfd, err := a.mkdirAll(pdir)
	if err != nil {
		return -1, err
	}
	err = unix.Mkdirat(pfd, base, 0o700)
	if err == nil {
		err = a.implicitDir(pfd, name, base)
	}
	unix.Close(pfd)
	switch {
	case err == nil:
		a.created[name] = true
	case !errors.Is(err, unix.EEXIST):
		return -1, fmt.Errorf("create parent %q: %w", name, err)
	}
	return a.openDir(name)
}

// implicitDir sets the metadata of a parent dir the tar does not list: what
// the dir has in the layers below (ApplyOptions.Below), since overlay shows
// the topmost copy of a dir, and this one only holds the layer's entries;
// else root-owned 0755 (as Docker makes them) and time 0. Never the umask
// or the clock: the snapshot must not depend on the machine.
func (a *applier) implicitDir(pfd int, name, base string) error {
	mode, uid, gid, mtime := uint32(0o755), 0, 0, time.Unix(0, 0)
	if a.below != nil {
		if fi, err := a.below(name); err == nil && fi.IsDir() {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				uid, gid = int(st.Uid), int(st.Gid)
			}
			mode, mtime = fsmode.ToUnix(fi.Mode()), fi.ModTime()
		}
	}
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil && a.euid == 0 &&
		!(a.unmapped && errors.Is(err, unix.EINVAL)) {
		return fmt.Errorf("set owner of parent %q: %w", name, err)
	}
	if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
		return fmt.Errorf("set mode of parent %q: %w", name, err)
	}
	ts := unix.NsecToTimespec(mtime.UnixNano())
	a.dirs[name] = []unix.Timespec{ts, ts}
	return nil
}

// belowTimes is the time the dir name has below, or 0, as set by finish.
func (a *applier) belowTimes(name string) []unix.Timespec {
	ts := unix.NsecToTimespec(0)
	if fi, err := a.below(name); err == nil && fi.IsDir() {
		ts = unix.NsecToTimespec(fi.ModTime().UnixNano())
	}
	return []unix.Timespec{ts, ts}
}

// parent returns the (cached) fd of the parent directory dirName, creating
// it when missing. The fd belongs to the cache: do not close it.
func (a *applier) parent(dirName string) (int, error) {
	if a.parentValid && a.parentName == dirName {
		return a.parentFd, nil
	}
	if a.parentFd >= 0 {
		unix.Close(a.parentFd)
		a.parentFd, a.parentValid = -1, false
	}
	fd, err := a.mkdirAll(dirName)
	if err != nil {
		return -1, err
	}
	a.parentName, a.parentFd, a.parentValid = dirName, fd, true
	return fd, nil
}

// clear makes room for a new entry at base in pfd: an existing directory is
// kept for a directory entry (kept is true), anything else is removed.
func (a *applier) clear(pfd int, name, base string, wantDir bool) (kept bool, err error) {
	var st unix.Stat_t
	err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect existing file: %w", err)
	}
	if wantDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return true, nil
	}
	delete(a.dirs, name)
	a.parentValid = false
	return false, removeAt(pfd, base)
}

// removeAt removes base in the directory fd and everything below it,
// never following symlinks.
func removeAt(dirfd int, base string) error {
	err := unix.Unlinkat(dirfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return fmt.Errorf("remove %q: %w", base, err)
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q for removal: %w", base, err)
	}
	f := os.NewFile(uintptr(fd), base)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n); err != nil {
				break
			}
		}
	}
	f.Close()
	if err != nil {
		return fmt.Errorf("empty %q: %w", base, err)
	}
	if err := unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %q: %w", base, err)
	}
	return nil
}

// meta sets owner, mode, xattrs and times of base in pfd from hdr; the
// times of directories are recorded for finish.
func (a *applier) meta(pfd int, name, base string, hdr *tar.Header) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		skip := a.euid != 0 && errors.Is(err, unix.EPERM) || a.unmapped && errors.Is(err, unix.EINVAL)
		if !skip {
			return fmt.Errorf("set owner %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears setuid/setgid.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return fmt.Errorf("set mode %o: %w", hdr.Mode&0o7777, err)
		}
	}
	if err := a.xattrs(pfd, base, hdr); err != nil {
		return err
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs[name] = ts
		return nil
	}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// xattrs sets the SCHILY.xattr records of hdr. Overlay's own attributes
// (trusted.overlay.*, user.overlay.*) are never taken from a tar. Odd attributes the kernel or filesystem refuses
// (EPERM, ENOTSUP) are skipped, but security.capability and user.* on files
// and directories must be set.
func (a *applier) xattrs(pfd int, base string, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		key, ok := strings.CutPrefix(k, paxXattr)
		if !ok || strings.HasPrefix(key, overlayPrefix) || strings.HasPrefix(key, userOverlayPrefix) {
			continue
		}
		err := unix.Lsetxattr(procPath(pfd, base), key, []byte(v), 0)
		if err == nil {
			continue
		}
		must := key == "security.capability" || strings.HasPrefix(key, "user.")
		plain := hdr.Typeflag == tar.TypeDir || hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA
		if (!must || !plain) && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP)) {
			continue
		}
		return fmt.Errorf("set xattr %s: %w", key, err)
	}
	return nil
}

// dropXattrs removes the xattrs of a kept directory that hdr does not list,
// so a directory entry replaces the metadata of the one it lands on.
// Overlay's own attributes stay: only whiteout markers manage them.
func dropXattrs(pfd int, base string, hdr *tar.Header) error {
	p := procPath(pfd, base)
	names, err := listXattrs(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, ok := hdr.PAXRecords[paxXattr+n]; ok || strings.HasPrefix(n, overlayPrefix) || strings.HasPrefix(n, userOverlayPrefix) {
			continue
		}
		err := unix.Lremovexattr(p, n)
		if err != nil && !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("remove xattr %s: %w", n, err)
		}
	}
	return nil
}
