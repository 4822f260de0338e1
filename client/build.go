package client

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/builderdev/builder/cache/remote"
	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/imagediff"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The engine's progress types, as the CLI sees them.
type (
	Reporter  = executor.Reporter
	Event     = executor.Event
	EventKind = executor.EventKind
	// DiffReport is what Diff and the reproducibility check find.
	DiffReport = imagediff.Report
)

const (
	StepStart = executor.StepStart
	StepDone  = executor.StepDone
	StepLog   = executor.StepLog
	Warning   = executor.Warning
	CacheMiss = executor.CacheMiss
)

// Layer compressions for BuildOptions.Compression.
const (
	Gzip = layer.Gzip
	Zstd = layer.Zstd
)

// BuildOptions are the engine's options plus what happens to the image
// once it is built.
type BuildOptions struct {
	executor.Options
	Tags    []string // names to tag (and push with Push)
	Outputs []Output // exports, in order, after tagging
	Push    bool     // push the image to the registry of every tag
	// CheckReproducible builds again with no cache in a temporary store
	// and compares; the outputs and the push run only when the two are
	// identical (CI publishes only what passed).
	CheckReproducible bool
	// CheckReporter receives the second build's progress (nil: none).
	CheckReporter Reporter
	// CacheFrom are caches to import (tried in order after the local
	// cache; the engine's Options.CacheFrom is filled from them), CacheTo
	// the caches to export once the image is published.
	CacheFrom, CacheTo []CacheSpec
	// OnBuilt, when set, is called once the image is built and tagged,
	// before the check and the outputs; an error stops the build there.
	OnBuilt func(*BuildResult) error
}

// BuildResult is a built image.
type BuildResult struct {
	executor.Result
	// Tags are the names given to the image in the store. None when the
	// store does not hold every blob of the image (NotKept).
	Tags []string
	// NotKept: the image was pushed, but some of its layers are only in
	// the registry an imported cache came from (mounted there, never
	// downloaded), so the store does not keep it.
	NotKept bool
	// Check is the comparison with the second build (CheckReproducible).
	Check *DiffReport
	// CacheImports and CacheExports say what each --cache-from and
	// --cache-to moved.
	CacheImports, CacheExports []CacheStats
}

// CacheStats is what one imported or exported cache moved.
type CacheStats struct {
	Name    string // "registry REF", "local DIR", "inline"
	Records int
	remote.Stats
}

// CheckError is a reproducibility check that could not be done (the
// second build or the comparison failed), as opposed to one that found
// differences (BuildResult.Check).
type CheckError struct{ Err error }

func (e *CheckError) Error() string { return "check reproducibility: " + e.Err.Error() }
func (e *CheckError) Unwrap() error { return e.Err }

// A layer of an imported cache that turns out missing or corrupt poisons
// its records, and the build runs again without them (the steps before it
// are local hits then). A cache with two such layers is dropped whole, so
// a build runs at most twice per imported cache, plus once.

// build builds the image, optionally checks that it is reproducible, then
// runs its outputs, its push and its cache exports, all under one shared
// lock: no prune can drop the image (untagged without -t) or its bases
// meanwhile. With a check that found differences, it returns the result
// with Check.Identical false and publishes nothing.
//
// The store keeps (tags) the image only when it holds every blob of it.
// Hits from an imported cache leave their layers in the cache until
// something needs them: a RUN or COPY that misses (its parent rootfs), a
// kept image, an output. An image that is only pushed to the registry the
// cache is in has its layers mounted there and never downloaded.
func (c *Client) build(ctx context.Context, opts BuildOptions) (*BuildResult, error) {
	tags := make([]string, 0, len(opts.Tags))
	for _, t := range opts.Tags {
		name, err := oci.NormalizeRef(t)
		if err != nil {
			return nil, fmt.Errorf("%w: invalid tag %q: %v", ErrUsage, t, err)
		}
		tags = append(tags, name)
	}
	if opts.Push && len(tags) == 0 {
		return nil, fmt.Errorf("%w: --push needs at least one -t tag naming the registry", ErrUsage)
	}
	if err := checkCacheTo(opts); err != nil {
		return nil, err
	}
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	sources := c.importCaches(ctx, opts)
	defer func() {
		for _, s := range sources {
			s.Close()
		}
	}()
	eopts := opts.Options
	for _, s := range sources {
		eopts.CacheFrom = append(eopts.CacheFrom, s)
	}
	fetchAll := !opts.Push || len(opts.Outputs) > 0 || opts.CheckReproducible
	var res *executor.Result
	maxRebuilds := 2*len(sources) + 1
	for attempt := 1; ; attempt++ {
		res, err = executor.Build(ctx, c.stores(), eopts)
		if err == nil && fetchAll {
			err = c.fetchLayers(ctx, res.Manifest, sources)
		}
		var be *remote.BlobError
		if err == nil || !errors.As(err, &be) || attempt == maxRebuilds {
			break
		}
		warn(opts.Reporter, "%v: building those steps again", be)
	}
	if err != nil {
		return nil, err
	}
	out := &BuildResult{Result: *res}
	defer func() { out.CacheImports = importStats(sources) }()
	if slices.ContainsFunc(opts.CacheTo, func(s CacheSpec) bool { return s.Type == "inline" }) {
		desc, err := remote.Inline(ctx, c.images, res.Manifest, res.Records)
		if err != nil {
			return nil, err
		}
		out.Manifest, out.ManifestDigest = desc, desc.Digest
	}
	if err := c.tagIfKept(ctx, out, tags); err != nil {
		return nil, err
	}
	if opts.OnBuilt != nil {
		if err := opts.OnBuilt(out); err != nil {
			return out, err
		}
	}
	if opts.CheckReproducible {
		second := opts.Options
		second.Reporter = opts.CheckReporter
		first := *out
		first.Manifest = res.Manifest // the engine's: no inline cache annotation
		rep, err := c.checkReproducible(ctx, second, &first)
		if err != nil {
			return out, &CheckError{err}
		}
		out.Check = rep
		if !rep.Identical {
			return out, nil
		}
	}
	po := PublishOptions{Outputs: opts.Outputs, Push: opts.Push, Registry: opts.Registry}
	err = c.publish(ctx, out.Manifest, tags, po)
	if errors.Is(err, oci.ErrNotFound) && opts.Push {
		// A layer could not be mounted from the cache's repository (the
		// push goes to another registry): download it and push again.
		if err = c.fetchLayers(ctx, out.Manifest, sources); err == nil {
			err = c.publish(ctx, out.Manifest, tags, po)
		}
	}
	if err != nil {
		return out, err
	}
	if out.NotKept {
		if err := c.tagIfKept(ctx, out, tags); err != nil {
			return out, err
		}
	}
	return out, c.exportCaches(ctx, opts, out, sources)
}

// tagIfKept tags the image when the store holds all its blobs.
func (c *Client) tagIfKept(ctx context.Context, out *BuildResult, tags []string) error {
	var m ocispec.Manifest
	if err := c.images.GetJSON(ctx, out.Manifest.Digest, &m); err != nil {
		return fmt.Errorf("read manifest: %w", err)
	}
	for _, l := range m.Layers {
		if !c.images.Has(ctx, l.Digest) {
			out.NotKept = true
			return ctx.Err()
		}
	}
	out.NotKept = false
	for _, name := range tags {
		if err := c.images.Tag(ctx, name, out.Manifest); err != nil {
			return fmt.Errorf("tag %s: %w", name, err)
		}
	}
	out.Tags = tags
	return nil
}

// Publish runs outputs and the push for an image the store holds (by
// name, digest or ID), under the shared lock.
func (c *Client) Publish(ctx context.Context, image string, opts PublishOptions) error {
	unlock, err := c.shared(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	img, err := c.images.Resolve(ctx, image)
	if err != nil {
		return fmt.Errorf("publish %s: %w", image, err)
	}
	var refs []string
	if img.Name != "" {
		refs = []string{img.Name}
	}
	return c.publish(ctx, img.Descriptor, refs, opts)
}

// errNoName is a push of an image that has no name to push to.
var errNoName = errors.New("the image has no name; give a destination reference")
