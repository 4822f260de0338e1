package snapshot

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// pidAlive reports whether process pid exists (a zombie counts as alive).
// EPERM means it exists but belongs to another user.
func pidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// Mount mounts m at target (m.Target when target is empty) in the calling
// process's mount namespace. The sandbox child calls it for each rootfs
// mount; tests call it directly.
//
// An overlay whose options fit in one page (the limit of mount(2) data) is
// mounted with mount(2). A longer one — a deep stack of lowers — is built
// with the new mount API: fsopen, one fsconfig "lowerdir+" per lower dir
// (Linux 6.8+; each path under 256 bytes), fsmount, move_mount.
func (m Mount) Mount(target string) error {
	if target == "" {
		target = m.Target
	}
	flags, data := splitOptions(m.Options)
	var err error
	switch {
	case m.Type == "bind" || flags&unix.MS_BIND != 0:
		err = mountBind(m.Source, target, flags)
	case m.Type == "overlay" && len(strings.Join(data, ",")) >= unix.Getpagesize():
		err = mountFsconfig(m, target, flags, data)
	default:
		err = unix.Mount(m.Source, target, m.Type, flags, strings.Join(data, ","))
	}
	if err != nil {
		return fmt.Errorf("mount %s at %s: %w", m.Type, target, err)
	}
	return nil
}

// splitOptions separates the options that are mount(2) flags from data.
func splitOptions(opts []string) (uintptr, []string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		switch o {
		case "ro":
			flags |= unix.MS_RDONLY
		case "rw":
			flags &^= unix.MS_RDONLY
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
		case "bind":
			flags |= unix.MS_BIND
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		default:
			data = append(data, o)
		}
	}
	return flags, data
}

// mountBind bind-mounts source at target; flags other than MS_BIND|MS_REC
// need a second, remounting call to apply to a bind mount.
func mountBind(source, target string, flags uintptr) error {
	bind := flags & (unix.MS_BIND | unix.MS_REC)
	if err := unix.Mount(source, target, "", unix.MS_BIND|bind, ""); err != nil {
		return err
	}
	if rest := flags &^ bind; rest != 0 {
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return err
		}
	}
	return nil
}

// mountFsconfig mounts an overlay with fsopen/fsconfig/fsmount/move_mount,
// adding its lowers one by one.
func mountFsconfig(m Mount, target string, flags uintptr, data []string) (err error) {
	fsfd, err := unix.Fsopen(m.Type, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fsfd)
	defer func() {
		if err != nil {
			err = withFsLog(fsfd, err)
		}
	}()
	set := func(key, value string, hasValue bool) error {
		if !hasValue {
			return unix.FsconfigSetFlag(fsfd, key)
		}
		return unix.FsconfigSetString(fsfd, key, value)
	}
	if err := set("source", m.Source, true); err != nil {
		return fmt.Errorf("fsconfig source: %w", err)
	}
	for _, o := range data {
		key, value, hasValue := strings.Cut(o, "=")
		if key != "lowerdir" {
			if err := set(key, value, hasValue); err != nil {
				return fmt.Errorf("fsconfig %s: %w", key, err)
			}
			continue
		}
		for l := range strings.SplitSeq(value, ":") {
			if err := set("lowerdir+", l, true); err != nil {
				if errors.Is(err, unix.EINVAL) {
					return fmt.Errorf("fsconfig lowerdir+ %s (needs Linux 6.8+): %w", l, err)
				}
				return fmt.Errorf("fsconfig lowerdir+ %s: %w", l, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create superblock: %w", err)
	}
	var attrs int
	if flags&unix.MS_RDONLY != 0 {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	if flags&unix.MS_NOSUID != 0 {
		attrs |= unix.MOUNT_ATTR_NOSUID
	}
	if flags&unix.MS_NODEV != 0 {
		attrs |= unix.MOUNT_ATTR_NODEV
	}
	if flags&unix.MS_NOEXEC != 0 {
		attrs |= unix.MOUNT_ATTR_NOEXEC
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// withFsLog appends the messages the kernel queued on a filesystem context
// (overlay explains there why it refused a layer).
func withFsLog(fsfd int, err error) error {
	var msgs []string
	buf := make([]byte, 4096)
	for range 32 {
		n, rerr := unix.Read(fsfd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(msgs, "; "))
}
