package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/internal/dirsize"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PruneOptions select what Prune removes. The zero value removes the
// untagged images, and the cache records, snapshots and blobs that no
// tagged image needs.
type PruneOptions struct {
	All         bool          // also records of layers that images use, and every snapshot
	KeepStorage int64         // keep up to this many bytes of cache blobs (oldest go first)
	Until       time.Duration // only cache entries older than this
}

// PruneReport says what Prune removed.
type PruneReport struct {
	Records, Snapshots, Blobs int
	Images                    int // untagged images dropped from index.json
	Mounts                    int // RUN --mount=type=cache dirs (--all only)
	GitTrees                  int // fetched git trees (cache/git)
	Reclaimed                 int64
}

// Prune removes cache and unreferenced data under the exclusive store lock.
func (c *Client) Prune(ctx context.Context, opts PruneOptions) (PruneReport, error) {
	var rep PruneReport
	unlock, err := c.exclusive(ctx)
	if err != nil {
		return rep, err
	}
	defer unlock()
	// Untagged images (a build without -t) go first, as docker's prune
	// removes dangling images; their blobs then go with the cache.
	if rep.Images, err = c.images.DropUntagged(ctx); err != nil {
		return rep, err
	}
	used, err := c.images.InUse(ctx)
	if err != nil {
		return rep, err
	}
	blobs, err := c.images.Blobs(ctx)
	if err != nil {
		return rep, err
	}
	size := map[digest.Digest]int64{}
	for _, bl := range blobs {
		size[bl.Digest] = bl.Size
	}
	recs, err := c.cache.Records(ctx)
	if err != nil {
		return rep, err
	}
	var cand, keep []cache.Record
	cutoff := time.Now().Add(-opts.Until)
	for _, r := range recs {
		removable := opts.All || (r.Layer != "" && !used[r.Layer])
		if removable && opts.Until > 0 {
			if t, err := time.Parse(time.RFC3339Nano, r.Created); err == nil && t.After(cutoff) {
				removable = false
			}
		}
		if removable {
			cand = append(cand, r)
		} else {
			keep = append(keep, r)
		}
	}
	if opts.KeepStorage > 0 {
		// Newest candidates stay while the cache fits.
		sort.Slice(cand, func(i, j int) bool { return cand[i].Created > cand[j].Created })
		var total int64
		var drop []cache.Record
		for _, r := range cand {
			if total+size[r.Layer] <= opts.KeepStorage {
				total += size[r.Layer]
				keep = append(keep, r)
			} else {
				drop = append(drop, r)
			}
		}
		cand = drop
	}
	for _, r := range cand {
		if err := c.cache.Remove(ctx, r.Key); err != nil {
			return rep, err
		}
		rep.Records++
	}
	needed := map[digest.Digest]bool{}
	for d := range used {
		needed[d] = true
	}
	for _, r := range keep {
		if r.Layer != "" {
			needed[r.Layer] = true
		}
	}
	for _, bl := range blobs {
		if needed[bl.Digest] {
			continue
		}
		if err := c.images.DeleteBlob(ctx, bl.Digest); err != nil {
			return rep, err
		}
		rep.Blobs++
		rep.Reclaimed += bl.Size
	}
	keepChains, err := c.imageChains(ctx)
	if err != nil {
		return rep, err
	}
	snaps, err := c.snaps.List(ctx)
	if err != nil {
		return rep, err
	}
	// Children before parents: a prune that dies halfway never leaves a
	// snapshot whose parent is gone.
	depth := snapshotDepths(snaps)
	sort.SliceStable(snaps, func(i, j int) bool { return depth[snaps[i].Chain] > depth[snaps[j].Chain] })
	for _, s := range snaps {
		if !opts.All && keepChains[s.Chain] {
			continue
		}
		n := dirsize.Of(s.Dir)
		if err := c.snaps.Delete(ctx, s.Chain); err != nil {
			return rep, err
		}
		rep.Snapshots++
		rep.Reclaimed += n
	}
	if _, err := c.snaps.RemoveOrphans(ctx); err != nil {
		return rep, err
	}
	// Fetched git trees are a cache of the network, never referenced by
	// an image or a record: every prune drops them.
	trees, freed, err := c.git.Remove()
	rep.GitTrees += trees
	rep.Reclaimed += freed
	if err != nil {
		return rep, err
	}
	if opts.All {
		n, size, err := c.cache.RemoveMounts()
		rep.Mounts += n
		rep.Reclaimed += size
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// snapshotDepths returns how many ancestors each listed snapshot has.
func snapshotDepths(snaps []snapshot.Info) map[digest.Digest]int {
	parent := map[digest.Digest]digest.Digest{}
	for _, s := range snaps {
		parent[s.Chain] = s.Parent
	}
	depth := map[digest.Digest]int{}
	for _, s := range snaps {
		n := 0
		for p := s.Parent; p != "" && n <= len(snaps); p = parent[p] {
			n++
		}
		depth[s.Chain] = n
	}
	return depth
}

// imageChains returns the chain IDs of every prefix of every image's layers.
func (c *Client) imageChains(ctx context.Context) (map[digest.Digest]bool, error) {
	imgs, err := c.images.Images(ctx)
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]bool{}
	for _, im := range imgs {
		var chain digest.Digest
		for _, d := range im.Config.RootFS.DiffIDs {
			chain = snapshot.ChainID(chain, d)
			out[chain] = true
		}
	}
	return out, nil
}

// Usage is what the store holds (builder df).
type Usage struct {
	Images, Records, Snapshots, Blobs int
	Mounts                            int   // RUN --mount=type=cache dirs
	ImageBytes, CacheBytes            int64 // blobs of images; blobs only the cache needs
	SnapshotBytes, OtherBytes         int64 // unpacked snapshots; blobs nothing needs
	MountBytes                        int64 // cache mount content (prune --all frees it)
	GitTrees                          int   // fetched git trees (every prune frees them)
	GitBytes                          int64
	Reclaimable                       int64 // what `prune` would free
}

// DiskUsage reports what the store holds.
func (c *Client) DiskUsage(ctx context.Context) (Usage, error) {
	var u Usage
	unlock, err := c.shared(ctx)
	if err != nil {
		return u, err
	}
	defer unlock()
	imgs, err := c.images.Images(ctx)
	if err != nil {
		return u, err
	}
	u.Images = len(imgs)
	used, err := c.images.InUse(ctx)
	if err != nil {
		return u, err
	}
	recs, err := c.cache.Records(ctx)
	if err != nil {
		return u, err
	}
	u.Records = len(recs)
	cached := map[digest.Digest]bool{}
	for _, r := range recs {
		if r.Layer != "" {
			cached[r.Layer] = true
		}
	}
	blobs, err := c.images.Blobs(ctx)
	if err != nil {
		return u, err
	}
	u.Blobs = len(blobs)
	for _, bl := range blobs {
		switch {
		case used[bl.Digest]:
			u.ImageBytes += bl.Size
		case cached[bl.Digest]:
			u.CacheBytes += bl.Size
		default:
			u.OtherBytes += bl.Size
		}
	}
	keepChains, err := c.imageChains(ctx)
	if err != nil {
		return u, err
	}
	snaps, err := c.snaps.List(ctx)
	if err != nil {
		return u, err
	}
	u.Snapshots = len(snaps)
	for _, s := range snaps {
		n := dirsize.Of(s.Dir)
		u.SnapshotBytes += n
		if !keepChains[s.Chain] {
			u.Reclaimable += n
		}
	}
	u.Reclaimable += u.CacheBytes + u.OtherBytes
	u.Mounts, u.MountBytes, err = c.cache.Mounts()
	if err != nil {
		return u, err
	}
	u.GitTrees, u.GitBytes, err = c.git.Usage()
	u.Reclaimable += u.GitBytes
	return u, err
}

// Check verifies the store: every record's blob present and intact, every
// image's blobs present and intact, every snapshot's parent chain present.
// It returns the problems found (none: the store is consistent). A corrupt
// blob is removed as it is reported.
func (c *Client) Check(ctx context.Context) ([]string, error) {
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var problems []string
	verified := map[digest.Digest]error{}
	verify := func(d digest.Digest) error {
		if err, ok := verified[d]; ok {
			return err
		}
		err := c.images.VerifyBlob(ctx, d)
		if err != nil && !errors.Is(err, oci.ErrNotFound) && ctx.Err() == nil {
			// A blob that does not hash to its name is of no use: drop it,
			// so that the records using it become misses and the next
			// build makes it again (a hit only stats a blob).
			if derr := c.images.DeleteBlob(ctx, d); derr == nil {
				err = fmt.Errorf("%w (removed)", err)
			}
		}
		verified[d] = err
		return err
	}
	recs, err := c.cache.Records(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.Layer == "" {
			continue
		}
		if err := verify(r.Layer); err != nil {
			problems = append(problems, fmt.Sprintf("cache record %s: layer %s: %v", r.Key.Encoded()[:12], r.Layer, err))
		}
	}
	imgs, err := c.images.Images(ctx)
	if err != nil {
		return nil, err
	}
	for _, im := range imgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, d := range append([]digest.Digest{im.Descriptor.Digest, im.Manifest.Config.Digest}, layerDigests(im.Manifest.Layers)...) {
			if err := verify(d); err != nil {
				problems = append(problems, fmt.Sprintf("image %s: %v", im.Name, err))
			}
		}
	}
	snaps, err := c.snaps.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		if _, err := c.snaps.Lowers(ctx, s.Chain); err != nil {
			problems = append(problems, fmt.Sprintf("snapshot %s: %v", s.ID, err))
		}
	}
	return problems, nil
}

func layerDigests(ls []ocispec.Descriptor) []digest.Digest {
	out := make([]digest.Digest, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Digest)
	}
	return out
}
