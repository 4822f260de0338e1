package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/builderdev/builder/snapshot"
)

// Named volumes (builder run -v NAME:/path, builder volume ls|rm|prune)
// live in the state dir, outside the image store and its lock:
//
//	volumes/.lock    flock: shared while a run opens or creates a volume,
//	                 exclusive while volume rm or prune decide and rename
//	volumes/<name>/  the volume's files; each run that mounts it holds an
//	                 flock on the dir, shared, until its container is gone
//	volumes/.rm-*    a volume being removed (removed again on the next rm
//	                 or prune if a crash left it)
//
// so rm and prune never remove a volume a running container has mounted
// (they skip it, or fail for rm, as docker), and a run never mounts a
// volume that is being removed. Image prune does not touch volumes.
// Containers: containers/<name> is an flock a run of that --name holds.

const (
	volumesDir    = "volumes"
	containersDir = "containers"
	volumesLock   = ".lock"
	removingVol   = ".rm-"
)

// Volume is one named volume.
type Volume struct {
	Name    string
	Created time.Time
	InUse   bool // a running container has it mounted
}

// checkMount checks one mount and cleans its target.
func checkMount(m *RunMount) error {
	if !path.IsAbs(m.Target) {
		return fmt.Errorf("the target %q is not an absolute path", m.Target)
	}
	m.Target = path.Clean(m.Target)
	if m.Target == "/" {
		return errors.New("the target cannot be /")
	}
	switch m.Type {
	case "bind":
		if !filepath.IsAbs(m.Source) {
			return fmt.Errorf("the bind source %q is not an absolute path", m.Source)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return fmt.Errorf("bind source path does not exist: %s", m.Source)
		}
	case "volume":
		if m.Source != "" && !nameRE().MatchString(m.Source) {
			return fmt.Errorf("invalid volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (a host path must be absolute)", m.Source)
		}
	case "tmpfs":
		if m.Source != "" {
			return errors.New("a tmpfs has no source")
		}
	default:
		return fmt.Errorf("unknown mount type %q: want bind, volume or tmpfs", m.Type)
	}
	return nil
}

// runMounts turns the container's mounts into sandbox mounts, parents
// first, holding the named volumes; release lets go of them and removes
// the anonymous ones.
func (c *Client) runMounts(ms []RunMount) ([]snapshot.Mount, func(), error) {
	var releases []func()
	release := func() {
		for i := len(releases) - 1; i >= 0; i-- {
			releases[i]()
		}
	}
	ms = slices.Clone(ms)
	slices.SortStableFunc(ms, func(a, b RunMount) int {
		return strings.Count(a.Target, "/") - strings.Count(b.Target, "/")
	})
	out := make([]snapshot.Mount, 0, len(ms))
	for i, m := range ms {
		if i > 0 && slices.ContainsFunc(ms[:i], func(o RunMount) bool { return o.Target == m.Target }) {
			release()
			return nil, nil, fmt.Errorf("%w: duplicate mount point: %s", ErrUsage, m.Target)
		}
		sm := snapshot.Mount{Type: "bind", Source: m.Source, Target: m.Target, Options: []string{"rbind"}}
		switch m.Type {
		case "tmpfs":
			sm = snapshot.Mount{Type: "tmpfs", Source: "tmpfs", Target: m.Target, Options: tmpfsOptions(m.Options)}
		case "volume":
			dir, free, err := c.openVolume(m.Source)
			if err != nil {
				release()
				return nil, nil, err
			}
			releases = append(releases, free)
			sm.Source = dir
		}
		if m.ReadOnly {
			sm.Options = append(sm.Options, "ro")
		}
		out = append(out, sm)
	}
	return out, release, nil
}

// openVolume returns the dir of the named volume (created when missing),
// held until free is called; with no name, a new anonymous volume that
// free removes.
func (c *Client) openVolume(name string) (dir string, free func(), err error) {
	if name == "" {
		dir, err := c.images.TempDir("volume-")
		if err != nil {
			return "", nil, err
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	vols := filepath.Join(c.root, volumesDir)
	if err := os.MkdirAll(vols, 0o755); err != nil {
		return "", nil, fmt.Errorf("create volumes dir: %w", err)
	}
	unlock, _, err := flockFile(filepath.Join(vols, volumesLock), false, true, true)
	if err != nil {
		return "", nil, fmt.Errorf("lock volumes: %w", err)
	}
	defer unlock()
	dir = filepath.Join(vols, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	free, _, err = flockFile(dir, false, true, false)
	if err != nil {
		return "", nil, fmt.Errorf("lock volume %s: %w", name, err)
	}
	return dir, free, nil
}

// holdName holds the container name for the run.
func (c *Client) holdName(name string) (func(), error) {
	dir := filepath.Join(c.root, containersDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, ok, err := flockFile(filepath.Join(dir, name), true, false, true)
	switch {
	case err != nil:
		return nil, fmt.Errorf("hold container name %s: %w", name, err)
	case !ok:
		return nil, fmt.Errorf("the container name %q is already in use by a running builder run", name)
	}
	return unlock, nil
}

// volumesLocked runs fn with the volumes lock held exclusive.
func (c *Client) volumesLocked(fn func(vols string) error) error {
	vols := filepath.Join(c.root, volumesDir)
	if err := os.MkdirAll(vols, 0o755); err != nil {
		return fmt.Errorf("create volumes dir: %w", err)
	}
	unlock, _, err := flockFile(filepath.Join(vols, volumesLock), true, true, true)
	if err != nil {
		return fmt.Errorf("lock volumes: %w", err)
	}
	defer unlock()
	return fn(vols)
}

// Volumes lists the named volumes, by name.
func (c *Client) Volumes(ctx context.Context) ([]Volume, error) {
	var out []Volume
	err := c.volumesLocked(func(vols string) error {
		ents, err := os.ReadDir(vols)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !e.IsDir() || !nameRE().MatchString(e.Name()) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			v := Volume{Name: e.Name()}
			if fi, err := e.Info(); err == nil {
				v.Created = fi.ModTime()
			}
			unlock, ok, err := flockFile(filepath.Join(vols, e.Name()), true, false, false)
			if err != nil {
				return fmt.Errorf("volume %s: %w", e.Name(), err)
			}
			if ok {
				unlock()
			}
			v.InUse = !ok
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

// RemoveVolumes removes the named volumes; a volume in use or missing is
// an error (the others are still removed).
func (c *Client) RemoveVolumes(ctx context.Context, names []string) error {
	var errs []error
	err := c.volumesLocked(func(vols string) error {
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !nameRE().MatchString(name) {
				errs = append(errs, fmt.Errorf("remove volume %s: %w", name, ErrNotFound))
				continue
			}
			if err := removeVolume(vols, name); err != nil {
				errs = append(errs, fmt.Errorf("remove volume %s: %w", name, err))
			}
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// PruneVolumes removes every named volume that no running container has
// mounted and returns their names.
func (c *Client) PruneVolumes(ctx context.Context) ([]string, error) {
	vs, err := c.Volumes(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	err = c.volumesLocked(func(vols string) error {
		for _, v := range vs {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := removeVolume(vols, v.Name)
			switch {
			case errors.Is(err, errVolumeInUse), errors.Is(err, ErrNotFound):
			case err != nil:
				return fmt.Errorf("remove volume %s: %w", v.Name, err)
			default:
				removed = append(removed, v.Name)
			}
		}
		return nil
	})
	return removed, err
}

var errVolumeInUse = errors.New("volume is in use by a running container")

// removeVolume renames a volume nobody holds aside, then removes it (with
// the volumes lock held exclusive); leftovers of a crash go too.
func removeVolume(vols, name string) error {
	dir := filepath.Join(vols, name)
	unlock, ok, err := flockFile(dir, true, false, false)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotFound
	case err != nil:
		return err
	case !ok:
		return errVolumeInUse
	}
	aside := filepath.Join(vols, removingVol+name)
	err = os.Rename(dir, aside)
	unlock()
	if err != nil {
		return err
	}
	if ents, err := os.ReadDir(vols); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), removingVol) {
				_ = os.RemoveAll(filepath.Join(vols, e.Name()))
			}
		}
	}
	return os.RemoveAll(aside)
}

// tmpfsOptions are docker's defaults for a tmpfs (nosuid, nodev, noexec),
// changed by exec, suid and dev, then the other options as given.
func tmpfsOptions(opts []string) []string {
	flags := []string{"nosuid", "nodev", "noexec"}
	var data []string
	for _, o := range opts {
		switch o {
		case "exec", "suid", "dev":
			flags = slices.DeleteFunc(flags, func(f string) bool { return f == "no"+o })
		case "noexec", "nosuid", "nodev":
		default:
			data = append(data, o)
		}
	}
	return append(flags, data...)
}
