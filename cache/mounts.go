package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/builderdev/builder/internal/dirsize"
)

// mountDirKey names a cache mount dir: per id and per base owner and mode,
// as BuildKit keys them, and per base content when the mount starts from
// a stage (from=, source=), as BuildKit keys it by id and base ref.
type mountDirKey struct {
	ID   string `json:"id"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	Mode uint32 `json:"mode"`
	Base string `json:"base,omitempty"`
}

// MountBase is the content a cache mount dir starts from (RUN
// --mount=type=cache,from=STAGE,source=DIR): Key names that content (the
// same key, the same dir), Fill writes it into a new, empty dir.
type MountBase struct {
	Key  string
	Fill func(dir string) error
}

// MountDir returns the persistent directory of a RUN --mount=type=cache
// with this id, owner and mode (and base, when not nil), creating it on
// first use. Its content is shared by every build of the store and never
// part of a key. A dir with a base is filled before it appears: two builds
// creating it at once never see a half-filled one.
func (s *Store) MountDir(id string, perm fs.FileMode, uid, gid int, base *MountBase) (string, error) {
	k := mountDirKey{ID: id, UID: uid, GID: gid, Mode: uint32(perm)}
	if base != nil {
		k.Base = base.Key
	}
	name := Key(Inputs{Version: "builder.cache-mount.v1", Step: k})
	dir := filepath.Join(s.root, "mounts", name.Encoded())
	if _, err := os.Lstat(dir); err == nil {
		return dir, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("open cache mount %q: %w", id, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("create cache mount %q: %w", id, err)
	}
	if base != nil {
		return dir, s.fillMountDir(id, dir, base)
	}
	// Mkdir is atomic: of two builds creating it at once, one makes it.
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return dir, nil
		}
		return "", fmt.Errorf("create cache mount %q: %w", id, err)
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		return "", fmt.Errorf("create cache mount %q: %w", id, err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		return "", fmt.Errorf("create cache mount %q: %w", id, err)
	}
	return dir, nil
}

// fillMountDir makes dir from base in a temp dir beside it, then renames
// it into place; the loser of a race drops its copy.
func (s *Store) fillMountDir(id, dir string, base *MountBase) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fill-")
	if err != nil {
		return fmt.Errorf("create cache mount %q: %w", id, err)
	}
	if err := base.Fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("fill cache mount %q: %w", id, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Lstat(dir); serr == nil {
			return nil
		}
		return fmt.Errorf("create cache mount %q: %w", id, err)
	}
	return nil
}

// Mounts returns the number of cache mount dirs and their total size.
func (s *Store) Mounts() (int, int64, error) {
	dirs, err := s.mountDirs()
	var size int64
	for _, d := range dirs {
		size += dirsize.Of(d)
	}
	return len(dirs), size, err
}

// RemoveMounts deletes every cache mount dir; call it only while no build
// runs (under the store's exclusive lock). It returns what it freed.
func (s *Store) RemoveMounts() (int, int64, error) {
	dirs, err := s.mountDirs()
	if err != nil {
		return 0, 0, err
	}
	var size int64
	for i, d := range dirs {
		n := dirsize.Of(d)
		if err := os.RemoveAll(d); err != nil {
			return i, size, fmt.Errorf("remove cache mount: %w", err)
		}
		size += n
	}
	return len(dirs), size, nil
}

func (s *Store) mountDirs() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "mounts"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list cache mounts: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join(s.root, "mounts", e.Name()))
		}
	}
	return out, nil
}
