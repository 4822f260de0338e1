package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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
	// Platforms, when more than one, makes a multi-platform image: one
	// manifest per platform in an image index (index.go); one is
	// Options.Platform.
	Platforms []ocispec.Platform
	// OnBuilt, when set, is called once the image is built and tagged,
	// before the check and the outputs; an error stops the build there.
	OnBuilt func(*BuildResult) error
	// SSH are the agents RUN --mount=type=ssh may use (--ssh).
	SSH []SSHSpec
	// Provenance, when set, attaches a provenance attestation: the image
	// is then published as an image index (attest.go).
	Provenance  *Provenance
	Annotations []Annotation // --annotation
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
	// Index is the image index that holds the image and its attestations
	// (BuildOptions.Provenance): what is tagged, exported and pushed.
	Index *ocispec.Descriptor
	// Check is the comparison with the second build (CheckReproducible).
	Check *DiffReport
	// Platforms are the images of a multi-platform build, in the order
	// asked (Result then describes their index).
	Platforms []executor.Result
	// CacheImports and CacheExports say what each --cache-from and
	// --cache-to moved.
	CacheImports, CacheExports []CacheStats
}

// CacheStats is what one imported or exported cache moved.
type CacheStats struct {
	Name    string // "registry REF", "local DIR", "inline"
	Records int
	remote.Stats
	// Streamed layers were uploaded while the build packed them (not
	// counted in Stats, which is what the export itself moved).
	Streamed      int
	StreamedBytes int64
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
	if opts.HitsOnly && (opts.CheckReproducible || slices.ContainsFunc(opts.Outputs, func(o Output) bool {
		return o.Type == "local" || o.Type == "tar" // they apply layers: ids of the user namespace
	})) {
		return nil, ErrNotCached
	}
	started := time.Now()
	if err := checkPlatforms(opts); err != nil {
		return nil, err
	}
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	agents, err := c.openSSH(ctx, opts.SSH)
	if err != nil {
		return nil, err
	}
	if agents != nil {
		defer agents.Close()
		opts.Options.SSH = agents
	}
	if err := c.gitContext(ctx, &opts.Options); err != nil {
		return nil, err
	}
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
	stream := streamCaches(ctx, opts)
	defer stream.close()
	if stream != nil {
		eopts.LayerSink = stream.sink
	}
	fetchAll := !opts.Push || len(opts.Outputs) > 0 || opts.CheckReproducible
	var res *executor.Result
	var plats []executor.Result
	maxRebuilds := 2*len(sources) + 1
	for attempt := 1; ; attempt++ {
		res, plats, err = c.buildEngine(ctx, eopts, opts.Platforms)
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
	out := &BuildResult{Result: *res, Platforms: plats}
	defer func() { out.CacheImports = importStats(sources) }()
	if slices.ContainsFunc(opts.CacheTo, func(s CacheSpec) bool { return s.Type == "inline" }) {
		desc, err := remote.Inline(ctx, c.images, res.Manifest, res.Records)
		if err != nil {
			return nil, err
		}
		out.Manifest, out.ManifestDigest = desc, desc.Digest
	}
	if err := c.attach(ctx, opts, out, started); err != nil {
		return nil, err
	}
	if err := c.tagIfKept(ctx, out, tags, len(opts.Outputs) == 0); err != nil {
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
	po := PublishOptions{Outputs: opts.Outputs, Push: opts.Push, Registry: opts.Registry, Reporter: opts.Reporter}
	err = c.publish(ctx, out.top(), tags, po)
	if errors.Is(err, oci.ErrNotFound) && opts.Push {
		// A layer could not be mounted from the cache's repository (the
		// push goes to another registry): download it and push again.
		if err = c.fetchLayers(ctx, out.Manifest, sources); err == nil {
			err = c.publish(ctx, out.top(), tags, po)
		}
	}
	if err != nil {
		return out, err
	}
	if out.NotKept {
		if err := c.tagIfKept(ctx, out, tags, len(opts.Outputs) == 0); err != nil {
			return out, err
		}
	}
	return out, c.exportCaches(ctx, opts, out, sources, stream)
}

// top is what is tagged and published: the index when there is one.
func (r *BuildResult) top() ocispec.Descriptor {
	if r.Index != nil {
		return *r.Index
	}
	return r.Manifest
}

// tagIfKept tags the image when the store holds all its blobs.
// With no tags, keepUntagged records the image without a name (a build
// with neither -t nor -o, whose ID is all the user has of it).
func (c *Client) tagIfKept(ctx context.Context, out *BuildResult, tags []string, keepUntagged bool) error {
	layers, err := c.layersOf(ctx, out.Manifest)
	if err != nil {
		return err
	}
	for _, l := range layers {
		if !c.images.Has(ctx, l.Digest) {
			out.NotKept = true
			return ctx.Err()
		}
	}
	out.NotKept = false
	if len(tags) == 0 {
		if !keepUntagged {
			return nil
		}
		// Untagged, as `docker build` without -t: the ID it prints names
		// the image for inspect, tag, save and run until a prune.
		return c.images.Keep(ctx, out.top())
	}
	for _, name := range tags {
		if err := c.images.Tag(ctx, name, out.top()); err != nil {
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
	top := img.Descriptor
	if img.Index != nil {
		top = *img.Index // published whole when the store holds it whole (publish)
	}
	return c.publish(ctx, top, refs, opts)
}

// errNoName is a push of an image that has no name to push to.
var errNoName = errors.New("the image has no name; give a destination reference")
