package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// mountDirKey names a cache mount dir: per id and per base owner and mode,
// as BuildKit keys them.
type mountDirKey struct {
	ID   string `json:"id"`
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	Mode uint32 `json:"mode"`
}

// MountDir returns the persistent directory of a RUN --mount=type=cache
// with this id, owner and mode, creating it on first use. Its content is
// shared by every build of the store and never part of a key.
func (s *Store) MountDir(id string, perm fs.FileMode, uid, gid int) (string, error) {
	name := Key(Inputs{Version: "builder.cache-mount.v1", Step: mountDirKey{ID: id, UID: uid, GID: gid, Mode: uint32(perm)}})
	dir := filepath.Join(s.root, "mounts", name.Encoded())
	if _, err := os.Lstat(dir); err == nil {
		return dir, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("open cache mount %q: %w", id, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("create cache mount %q: %w", id, err)
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

// Mounts returns the number of cache mount dirs and their total size.
func (s *Store) Mounts() (int, int64, error) {
	dirs, err := s.mountDirs()
	var size int64
	for _, d := range dirs {
		size += treeSize(d)
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
		n := treeSize(d)
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

// treeSize sums the sizes of the regular files below dir.
func treeSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
