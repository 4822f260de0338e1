package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MountDir returns the persistent directory of a RUN --mount=type=cache
// with this id, creating it (mode perm, owned by uid:gid) on first use. Its
// content is shared by every build of the store and never part of a key.
func (s *Store) MountDir(id string, perm fs.FileMode, uid, gid int) (string, error) {
	sum := sha256.Sum256([]byte(id))
	dir := filepath.Join(s.root, "mounts", hex.EncodeToString(sum[:]))
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
