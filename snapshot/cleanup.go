package snapshot

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// cleanup removes what dead processes left in active/ and tmp/.
//
// Several builder processes share the store, so Open must not remove the
// active dirs of a build running next to it. Every name in active/ and tmp/
// starts with its owner's pid; an entry is garbage when that process is gone
// (or when the name has no pid, which no builder makes). Each entry is first
// claimed by renaming it to a name of our own pid, so that two processes
// opening the store at once never work on the same entry, and a crash while
// removing leaves an entry that the next Open claims again.
//
// A dead owner's commit marker names an id dir it may have put in place
// without linking it from by-chain; that dir is removed unless its chain ID
// link points at it.
//
// Only an unreadable active/ or tmp/ fails Open: an entry that cannot be
// removed now is left for the next Open, rather than stopping every build
// over garbage.
func (s *Store) cleanup(ctx context.Context) error {
	for _, dir := range []string{s.path(activeDir), s.path(tmpDir)} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			if pid, ok := ownerPID(e.Name()); ok && pidAlive(pid) {
				continue
			}
			_ = s.reap(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// reap claims and removes one leftover entry.
func (s *Store) reap(path string) error {
	claimed := filepath.Join(s.path(tmpDir), ownerPrefix()+"gc-"+newID()+"-"+filepath.Base(path))
	if err := os.Rename(path, claimed); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // another process claimed it first
		}
		return err
	}
	if strings.HasSuffix(path, commitSuffix) {
		if err := s.reapCommit(claimed, filepath.Base(path)); err != nil {
			return err
		}
	}
	return os.RemoveAll(claimed)
}

// reapCommit removes the id dir named by a dead owner's commit marker unless
// it was linked. name is the marker's original name, which the dir's owner
// file must hold.
func (s *Store) reapCommit(marker, name string) error {
	b, err := os.ReadFile(marker)
	if err != nil {
		return err
	}
	id := string(b)
	if !validID(id) {
		return nil
	}
	owner, err := os.ReadFile(s.path(id, ownerName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // never placed, or already dropped
	}
	if err != nil {
		return err
	}
	if string(owner) != name {
		return nil // the id now belongs to another commit
	}
	chain, err := os.ReadFile(s.path(id, chainName))
	if err != nil {
		return err
	}
	if d := digest.Digest(chain); d.Validate() == nil {
		if link, err := os.Readlink(s.path(byChainDir, d.Encoded())); err == nil && link == "../"+id {
			return nil
		}
	}
	return s.discard(id)
}
