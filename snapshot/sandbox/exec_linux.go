package sandbox

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// defaultCaps is Docker's default capability set.
const defaultCaps = 1<<unix.CAP_CHOWN |
	1<<unix.CAP_DAC_OVERRIDE |
	1<<unix.CAP_FSETID |
	1<<unix.CAP_FOWNER |
	1<<unix.CAP_MKNOD |
	1<<unix.CAP_NET_RAW |
	1<<unix.CAP_SETGID |
	1<<unix.CAP_SETUID |
	1<<unix.CAP_SETFCAP |
	1<<unix.CAP_SETPCAP |
	1<<unix.CAP_NET_BIND_SERVICE |
	1<<unix.CAP_SYS_CHROOT |
	1<<unix.CAP_KILL |
	1<<unix.CAP_AUDIT_WRITE

// defaultPath finds Args[0] when Env has no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// dropCapabilities limits the bounding set to defaultCaps, clears the
// ambient set, and sets permitted and effective to defaultCaps with an
// empty inheritable set (as Docker does since CVE-2022-24769). Insecure
// keeps every capability.
func (c *child) dropCapabilities() error {
	if c.spec.Insecure {
		return nil
	}
	for cap := 0; cap < 64; cap++ {
		if defaultCaps&(uint64(1)<<cap) != 0 {
			continue
		}
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(cap), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			break // past the kernel's last capability
		}
		if err != nil {
			return fmt.Errorf("drop capability %d from bounding set: %w", cap, err)
		}
	}
	err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{{Effective: defaultCaps, Permitted: defaultCaps}}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	return nil
}

// exec runs Args, finding Args[0] in the PATH of Env inside the new root,
// like execvp: missing candidates are skipped, and a candidate that exists
// but cannot be run is reported when nothing else runs.
func (c *child) exec() error {
	unix.Umask(0o022)
	args, env := c.spec.Args, c.spec.Env
	name := args[0]
	if strings.Contains(name, "/") {
		return execFile(name, args, env)
	}
	var denied error
	for _, dir := range filepath.SplitList(lookEnv(env, "PATH", defaultPath)) {
		if dir == "" {
			dir = "."
		}
		err := execFile(filepath.Join(dir, name), args, env)
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		case errors.Is(err, unix.EACCES):
			if denied == nil {
				denied = err
			}
		default:
			return err
		}
	}
	if denied != nil {
		return denied
	}
	return fmt.Errorf("find %q in $PATH: %w", name, unix.ENOENT)
}

func execFile(path string, args, env []string) error {
	if err := unix.Exec(path, args, env); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

// lookEnv returns the last value of key in env, or def when unset.
func lookEnv(env []string, key, def string) string {
	v := def
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
