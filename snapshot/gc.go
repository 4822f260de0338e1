package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/opencontainers/go-digest"
)

// List returns every committed snapshot linked from by-chain.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	ents, err := os.ReadDir(s.path(byChainDir))
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []Info
	for _, e := range ents {
		chain := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if chain.Validate() != nil {
			continue
		}
		info, err := s.Stat(ctx, chain)
		if err != nil {
			continue
		}
		out = append(out, info)
	}
	return out, nil
}

// Delete removes the committed snapshot of chainID. The caller makes sure
// no other snapshot has it as a parent (delete children first). The link
// goes first, so a crash leaves at worst an unlinked dir for RemoveOrphans.
func (s *Store) Delete(ctx context.Context, chainID digest.Digest) error {
	info, err := s.Stat(ctx, chainID)
	if err != nil {
		return err
	}
	if err := os.Remove(s.path(byChainDir, chainID.Encoded())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete snapshot %s: %w", chainID, err)
	}
	if err := s.discard(info.ID); err != nil {
		return fmt.Errorf("delete snapshot %s: %w", chainID, err)
	}
	return nil
}

// RemoveOrphans deletes committed dirs that no by-chain link names (left by
// a crash between placing and linking, or during Delete). Call it only
// while no build can commit (under the store's exclusive lock).
func (s *Store) RemoveOrphans(ctx context.Context) (int, error) {
	linked := map[string]bool{}
	infos, err := s.List(ctx)
	if err != nil {
		return 0, err
	}
	for _, i := range infos {
		linked[i.ID] = true
	}
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return 0, fmt.Errorf("remove orphan snapshots: %w", err)
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() || !validID(e.Name()) || linked[e.Name()] {
			continue
		}
		if err := s.discard(e.Name()); err != nil {
			return n, fmt.Errorf("remove orphan snapshot %s: %w", e.Name(), err)
		}
		n++
	}
	return n, nil
}
