package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/cache/remote"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CacheSpec is one --cache-to or --cache-from value (see cache/remote).
type CacheSpec = remote.Spec

// ParseCacheSpec reads a --cache-to (export) or --cache-from value, as
// docker buildx spells them.
func ParseCacheSpec(s string, export bool) (CacheSpec, error) {
	return remote.ParseSpec(s, export)
}

// checkCacheTo refuses exports that cannot be made as asked: layers are
// exported as the build compressed them.
func checkCacheTo(opts BuildOptions) error {
	built := opts.Compression
	if built == "" {
		built = layer.Gzip
	}
	for _, sp := range opts.CacheTo {
		if sp.Compression != "" && sp.Compression != string(built) {
			return fmt.Errorf("%w: --cache-to %s,compression=%s: the layers are %s (set --compression %s)",
				ErrUsage, sp, sp.Compression, built, sp.Compression)
		}
		if sp.Type == "inline" && !opts.Push && len(opts.Outputs) == 0 {
			warn(opts.Reporter, "--cache-to type=inline: the cache travels inside the image; push it (--push) for another runner to use it")
		}
	}
	return nil
}

// importCaches opens the --cache-from caches; one that cannot be read is
// a warning and a build without it, never a failure.
func (c *Client) importCaches(ctx context.Context, opts BuildOptions) []*remote.Source {
	if opts.NoCache {
		return nil
	}
	var out []*remote.Source
	for _, sp := range opts.CacheFrom {
		src, err := remote.Import(ctx, sp, remote.Stores{Images: c.images, Cache: c.cache}, opts.Registry)
		if err != nil {
			if ctx.Err() == nil {
				warn(opts.Reporter, "%v: building without it", err)
			}
			continue
		}
		out = append(out, src)
	}
	return out
}

// fetchLayers brings the layers of the manifest man that are only in an
// imported cache into the store.
func (c *Client) fetchLayers(ctx context.Context, man ocispec.Descriptor, sources []*remote.Source) error {
	layers, err := c.layersOf(ctx, man)
	if err != nil {
		return err
	}
	var missing []digest.Digest
	for _, l := range layers {
		missing = append(missing, l.Digest)
	}
	return c.fetch(ctx, missing, sources)
}

// fetchParallel is how many layers fetch downloads at once: each
// download also decompresses to verify the diffID, one core's work.
const fetchParallel = 3

// fetch brings each of layers that the store lacks from the first imported
// cache that has it, a few at a time. It tries them all, so that one
// rebuild follows every unusable layer found, and returns the first error
// in layer order.
func (c *Client) fetch(ctx context.Context, layers []digest.Digest, sources []*remote.Source) error {
	errs := make([]error, len(layers))
	sem := make(chan struct{}, fetchParallel)
	var wg sync.WaitGroup
	for i, d := range layers {
		if c.images.Has(ctx, d) {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = c.fetchOne(ctx, d, sources)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(slices.DeleteFunc(errs, func(e error) bool { return e == nil })...)
}

// fetchOne brings layer d from the first cache that has it and can give it.
func (c *Client) fetchOne(ctx context.Context, d digest.Digest, sources []*remote.Source) error {
	var first error
	for _, s := range sources {
		if !s.Has(d) {
			continue
		}
		err := s.Fetch(ctx, d)
		if err == nil {
			return nil
		}
		first = cmp.Or(first, err)
	}
	if first != nil {
		return first
	}
	return fmt.Errorf("layer %s: %w", d, oci.ErrNotFound)
}

// exportCaches writes the --cache-to caches (inline is in the image
// already); it finds there the layers stream sent during the build, once
// the uploads still under way have ended. A layer the destination neither
// holds nor can mount is fetched from the imported caches first. An
// export that fails fails the build, as in buildx, unless its spec says
// ignore-error=true.
func (c *Client) exportCaches(ctx context.Context, opts BuildOptions, out *BuildResult, sources []*remote.Source, stream *cacheStream) error {
	if err := stream.wait(ctx); err != nil {
		return err
	}
	for _, sp := range opts.CacheTo {
		recs := out.Records
		if sp.Max {
			recs = append(slices.Clone(out.Records), out.StageRecords...)
		}
		if sp.Type == "inline" {
			out.CacheExports = append(out.CacheExports, CacheStats{Name: sp.String(), Records: len(out.Records)})
			continue
		}
		st, err := c.exportCache(ctx, sp, recs, opts, sources)
		if err != nil {
			if !sp.IgnoreError {
				return err
			}
			warn(opts.Reporter, "%v (ignore-error=true: the build goes on)", err)
			continue
		}
		cs := CacheStats{Name: sp.String(), Records: len(recs), Stats: st}
		cs.Streamed, cs.StreamedBytes = stream.streamed(sp, recs)
		out.CacheExports = append(out.CacheExports, cs)
	}
	return nil
}

func (c *Client) exportCache(ctx context.Context, sp CacheSpec, recs []cache.Record, opts BuildOptions, sources []*remote.Source) (remote.Stats, error) {
	st, err := remote.Export(ctx, sp, c.images, recs, opts.Registry)
	if err == nil || !errors.Is(err, oci.ErrNotFound) {
		return st, err
	}
	if ferr := c.fetch(ctx, remote.Missing(ctx, c.images, recs), sources); ferr != nil {
		return st, fmt.Errorf("%w (fetching its layers: %v)", err, ferr)
	}
	return remote.Export(ctx, sp, c.images, recs, opts.Registry)
}

func importStats(sources []*remote.Source) []CacheStats {
	out := make([]CacheStats, 0, len(sources))
	for _, s := range sources {
		out = append(out, CacheStats{Name: s.String(), Records: s.Len(), Stats: s.Stats()})
	}
	return out
}

// warn reports a build warning.
func warn(rep Reporter, format string, a ...any) {
	if rep != nil {
		rep.Report(Event{Kind: Warning, Text: fmt.Sprintf(format, a...)})
	}
}
