package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/builderdev/builder/snapshot"
	"golang.org/x/sys/unix"
)

// makePrivate stops the child's mounts from propagating to the host (and
// the host's from reaching the child).
func makePrivate() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	return nil
}

// mountRootfs mounts the rootfs at Root; with no mounts, Root itself is
// bound there so that it is a mount point pivot_root accepts.
func (c *child) mountRootfs() error {
	root := c.spec.Root
	if len(c.spec.Mounts) == 0 {
		return snapshot.Mount{Type: "bind", Source: root, Options: []string{"rbind"}}.Mount(root)
	}
	for _, m := range c.spec.Mounts {
		target := mountTarget(root, m)
		if m.Target != "" && !filepath.IsAbs(m.Target) {
			rel, err := resolveIn(root, m.Target)
			if err != nil {
				return err
			}
			target = filepath.Join(root, rel)
		}
		if m.Type == "overlay" && target == root {
			if err := mountOverlayNamed(m, root); err != nil {
				return err
			}
			continue
		}
		if err := m.Mount(target); err != nil {
			return err
		}
	}
	return nil
}

// mountOverlayNamed mounts the overlay m at root with layer paths that read
// the same on every machine: /proc/mounts shows a RUN its rootfs' options,
// which would otherwise name the store's path and the random names of its
// snapshot dirs. root first gets a tmpfs (in this mount namespace only)
// holding symlinks l0, l1, ... to the lower dirs and u, w to the upper and
// work dirs; from there the overlay is mounted with those relative names,
// over the tmpfs, which pivot_root then leaves behind.
func mountOverlayNamed(m snapshot.Mount, root string) error {
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=700,size=64k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", root, err)
	}
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	named := m
	named.Options = make([]string, 0, len(m.Options))
	for _, o := range m.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			dirs := strings.Split(v, ":")
			names := make([]string, len(dirs))
			for i, d := range dirs {
				names[i] = "l" + strconv.Itoa(i)
				if err := os.Symlink(d, names[i]); err != nil {
					return fmt.Errorf("name lower dir: %w", err)
				}
			}
			o = "lowerdir=" + strings.Join(names, ":")
		case "upperdir", "workdir":
			name := k[:1]
			if err := os.Symlink(v, name); err != nil {
				return fmt.Errorf("name %s: %w", k, err)
			}
			o = k + "=" + name
		}
		named.Options = append(named.Options, o)
	}
	if err := named.Mount(root); err != nil {
		return err
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// mountExtra performs the RUN --mount mounts in order (parents first), each
// mount point made just before its mount, so that it may lie inside an
// earlier one or under /dev. Points made in the upper dir are reported as
// placeholders, to be removed after the run.
func (c *child) mountExtra() error {
	root, upper := c.spec.Root, c.spec.Upper
	var created []placeholder
	for _, m := range c.spec.Extra {
		dir := true
		if isBind(m) {
			fi, err := os.Stat(m.Source)
			if err != nil {
				return fmt.Errorf("mount source of %s: %w", m.Target, err)
			}
			dir = fi.IsDir()
		}
		target, made, err := makeMountPoint(root, upper, m.Target, dir)
		if err != nil {
			return err
		}
		for _, p := range made {
			var st unix.Stat_t
			if unix.Lstat(filepath.Join(upper, p), &st) != nil {
				continue // made inside another mount, not in the layer
			}
			created = append(created, placeholder{Path: p, Dev: st.Dev, Ino: st.Ino, Ctime: st.Ctim.Nano()})
		}
		if err := m.Mount(target); err != nil {
			return err
		}
	}
	if len(created) > 0 {
		if err := json.NewEncoder(c.report).Encode(report{Created: created}); err != nil {
			return fmt.Errorf("report placeholders: %w", err)
		}
	}
	return nil
}

func (c *child) mountProc() error {
	if err := unix.Mount("proc", c.proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc on %s: %w", c.proc, err)
	}
	return nil
}

// mountSys mounts a read-only sysfs, or, when the kernel refuses (a
// network namespace we may not mount sysfs for), a read-only recursive bind
// of the host's /sys. Insecure gets a writable sysfs, as in BuildKit.
func (c *child) mountSys() error {
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if c.spec.Insecure {
		flags &^= unix.MS_RDONLY
	}
	if unix.Mount("sysfs", c.sys, "sysfs", flags, "") == nil {
		return nil
	}
	if err := unix.Mount("/sys", c.sys, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind /sys on %s: %w", c.sys, err)
	}
	if c.spec.Insecure {
		return nil
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(-1, c.sys, unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("make %s read-only: %w", c.sys, err)
	}
	return nil
}

// bindDevice binds the host device node src on a new empty file dst.
func bindDevice(src, dst string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return err
	}
	f.Close()
	return unix.Mount(src, dst, "", unix.MS_BIND, "")
}

// mountDev mounts a tmpfs /dev with Docker's device nodes and links, and
// /dev/pts, /dev/shm and /dev/mqueue.
func (c *child) mountDev() error {
	dev := c.dev
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dev, err)
	}
	nodes := []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}
	for _, n := range nodes {
		p := filepath.Join(dev, n.name)
		err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor)))
		if errors.Is(err, unix.EPERM) {
			// In a user namespace no device can be made: bind the host's
			// (still reachable at /dev: the pivot comes later).
			err = bindDevice(filepath.Join("/dev", n.name), p)
		}
		if err != nil {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
	}
	links := [][2]string{
		{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
		{"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"}, {"core", "/proc/kcore"},
	}
	for _, l := range links {
		if err := os.Symlink(l[1], filepath.Join(dev, l[0])); err != nil {
			return fmt.Errorf("create /dev link: %w", err)
		}
	}
	subs := []struct {
		name, fstype, data string
		flags              uintptr
	}{
		{"pts", "devpts", "newinstance,ptmxmode=0666,mode=0620,gid=5", unix.MS_NOSUID | unix.MS_NOEXEC},
		{"shm", "tmpfs", "mode=1777,size=65536k", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"mqueue", "mqueue", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	}
	for _, s := range subs {
		p := filepath.Join(dev, s.name)
		if err := unix.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", p, err)
		}
		err := unix.Mount(s.fstype, p, s.fstype, s.flags, s.data)
		if errors.Is(err, unix.EINVAL) && s.fstype == "devpts" {
			// A user namespace without group 5 (tty): the pty group is
			// the user's own.
			err = unix.Mount(s.fstype, p, s.fstype, s.flags, strings.TrimSuffix(s.data, ",gid=5"))
		}
		if err != nil {
			return fmt.Errorf("mount %s on %s: %w", s.fstype, p, err)
		}
	}
	return nil
}

// bindEtc writes the generated /etc files on a scratch tmpfs mounted for a
// moment on the /dev mount point, binds each on its mount point and
// detaches the scratch mount: the binds keep the files alive, and they die
// with the namespace.
func (c *child) bindEtc() error {
	if err := unix.Mount("tmpfs", c.dev, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount scratch tmpfs on %s: %w", c.dev, err)
	}
	for _, f := range c.etc {
		src := filepath.Join(c.dev, path.Base(f.name))
		if err := writeNew(src, f.content); err != nil {
			return err
		}
		if err := unix.Mount(src, f.target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", f.name, err)
		}
	}
	if err := unix.Unmount(c.dev, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount scratch tmpfs: %w", err)
	}
	return nil
}

// writeNew creates the file p (0644) with data; p must not exist.
func writeNew(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// pivotRoot makes Root the root: pivot_root(".", ".") stacks the old root
// on the new one, and a lazy unmount of "." drops the old root.
func (c *child) pivotRoot() error {
	if err := unix.Chdir(c.spec.Root); err != nil {
		return fmt.Errorf("chdir %s: %w", c.spec.Root, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", c.spec.Root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// maskPaths hides what runc hides in /proc and /sys (files under /dev/null,
// dirs under an empty read-only tmpfs) and makes the /proc entries that
// change the host read-only. Missing paths are skipped. Insecure masks
// nothing, as in BuildKit.
func (c *child) maskPaths() error {
	if c.spec.Insecure {
		return nil
	}
	masked := []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	for _, p := range masked {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return err
		case fi.IsDir():
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
		default:
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	readonly := []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	for _, p := range readonly {
		err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, "")
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err == nil {
			const ro = unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
			err = unix.Mount(p, p, "", ro, "")
		}
		if err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
	}
	return nil
}
