package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// placeholder is a path the child made appear in the upper dir (a mount
// point it created, or a parent dir created or copied up for one), as it was
// once all mount points existed.
type placeholder struct {
	Path  string `json:"path"` // absolute, in the rootfs
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Ctime int64  `json:"ctime"` // ns
}

// maxLinks bounds symlink resolution, as the kernel's ELOOP limit does.
const maxLinks = 40

// placeholders finds or creates the mount points of /proc, /sys, /dev and
// the /etc files inside the rootfs (symlinks resolved inside it) and
// reports the paths that were not yet in the upper dir.
func (c *child) placeholders() error {
	root, upper := c.spec.Root, c.spec.Upper
	var fresh []string
	mountPoint := func(p string, dir bool) (string, error) {
		target, made, err := makeMountPoint(root, upper, p, dir)
		fresh = append(fresh, made...)
		return target, err
	}
	var err error
	if c.proc, err = mountPoint("/proc", true); err != nil {
		return err
	}
	if c.sys, err = mountPoint("/sys", true); err != nil {
		return err
	}
	if c.dev, err = mountPoint("/dev", true); err != nil {
		return err
	}
	c.etc = []etcFile{
		{name: "/etc/hosts", content: c.spec.Hosts},
		{name: "/etc/hostname", content: []byte(c.spec.Hostname + "\n")},
	}
	if c.spec.Resolv != nil {
		c.etc = append(c.etc, etcFile{name: "/etc/resolv.conf", content: c.spec.Resolv})
	}
	for i := range c.etc {
		if c.etc[i].target, err = mountPoint(c.etc[i].name, false); err != nil {
			return err
		}
	}
	created := make([]placeholder, 0, len(fresh))
	for _, p := range fresh {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, p), &st); err != nil {
			return fmt.Errorf("stat placeholder %s: %w", p, err)
		}
		created = append(created, placeholder{Path: p, Dev: st.Dev, Ino: st.Ino, Ctime: st.Ctim.Nano()})
	}
	if err := json.NewEncoder(c.report).Encode(report{Created: created}); err != nil {
		return fmt.Errorf("report placeholders: %w", err)
	}
	return nil
}

// makeMountPoint resolves the image path p inside root and creates it (a
// dir, or an empty file) with its missing parents when absent. It returns
// the host path and the image paths that this made appear in upper (""
// when untracked), parents first.
func makeMountPoint(root, upper, p string, dir bool) (string, []string, error) {
	rel, err := resolveIn(root, p)
	if err != nil {
		return "", nil, err
	}
	host := filepath.Join(root, rel)
	if _, err := os.Lstat(host); err == nil {
		return host, nil, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", nil, err
	}
	var fresh []string
	if upper != "" {
		for _, q := range pathAndParents(rel) {
			if _, err := os.Lstat(filepath.Join(upper, q)); errors.Is(err, fs.ErrNotExist) {
				fresh = append(fresh, q)
			}
		}
	}
	parent := host
	if !dir {
		parent = filepath.Dir(host)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", nil, fmt.Errorf("create mount point %s: %w", p, err)
	}
	if !dir {
		if err := writeNew(host, nil); err != nil {
			return "", nil, fmt.Errorf("create mount point %s: %w", p, err)
		}
	}
	return host, fresh, nil
}

// pathAndParents lists the parents of the clean absolute path p, top
// first and without "/", then p.
func pathAndParents(p string) []string {
	var out []string
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return append(out, p)
}

// resolveIn resolves the image path p as if root were "/": symlinks are
// followed inside root and ".." stops at it. The first missing component
// ends the resolution; the rest is joined as is. It returns a clean
// absolute image path.
func resolveIn(root, p string) (string, error) {
	rest := strings.Split(p, "/")
	cur := "/"
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		fi, err := os.Lstat(filepath.Join(root, next))
		if errors.Is(err, fs.ErrNotExist) {
			return path.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: unix.ELOOP}
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}

// removePlaceholders removes, deepest first, the placeholders in upper that
// are still exactly what the child made (same inode, same ctime: the
// command did not touch them). Dirs that are not empty stay. Decisions are
// made before removing anything, since a removal changes its parent's ctime.
func removePlaceholders(upper string, ps []placeholder) error {
	if upper == "" || len(ps) == 0 {
		return nil
	}
	same := make([]bool, len(ps))
	for i, p := range ps {
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(upper, p.Path), &st) == nil {
			same[i] = st.Dev == p.Dev && st.Ino == p.Ino && st.Ctim.Nano() == p.Ctime
		}
	}
	var errs []error
	for i := len(ps) - 1; i >= 0; i-- {
		if !same[i] {
			continue
		}
		err := os.Remove(filepath.Join(upper, ps[i].Path))
		if err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove sandbox placeholders: %w", err)
	}
	return nil
}
