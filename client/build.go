package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/imagediff"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
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
	// OnBuilt, when set, is called once the image is built and tagged,
	// before the check and the outputs; an error stops the build there.
	OnBuilt func(*BuildResult) error
}

// BuildResult is a built, tagged image.
type BuildResult struct {
	executor.Result
	Tags []string // normalized names given
	// Check is the comparison with the second build (CheckReproducible).
	Check *DiffReport
}

// CheckError is a reproducibility check that could not be done (the
// second build or the comparison failed), as opposed to one that found
// differences (BuildResult.Check).
type CheckError struct{ Err error }

func (e *CheckError) Error() string { return "check reproducibility: " + e.Err.Error() }
func (e *CheckError) Unwrap() error { return e.Err }

// Build builds the image, tags it, optionally checks that it is
// reproducible, then runs its outputs and push, all under one shared lock:
// no prune can drop the image (untagged without -t) or its bases meanwhile.
// With a check that found differences, it returns the result with
// Check.Identical false and publishes nothing.
func (c *Client) Build(ctx context.Context, opts BuildOptions) (*BuildResult, error) {
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
	unlock, err := c.shared(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res, err := executor.Build(ctx, c.stores(), opts.Options)
	if err != nil {
		return nil, err
	}
	out := &BuildResult{Result: *res}
	for _, name := range tags {
		if err := c.images.Tag(ctx, name, res.Manifest); err != nil {
			return nil, fmt.Errorf("tag %s: %w", name, err)
		}
		out.Tags = append(out.Tags, name)
	}
	if opts.OnBuilt != nil {
		if err := opts.OnBuilt(out); err != nil {
			return out, err
		}
	}
	if opts.CheckReproducible {
		second := opts.Options
		second.Reporter = opts.CheckReporter
		rep, err := c.checkReproducible(ctx, second, out)
		if err != nil {
			return out, &CheckError{err}
		}
		out.Check = rep
		if !rep.Identical {
			return out, nil
		}
	}
	return out, c.publish(ctx, out, PublishOptions{Outputs: opts.Outputs, Push: opts.Push, Registry: opts.Registry})
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
	res := &BuildResult{Result: executor.Result{ManifestDigest: img.Descriptor.Digest, Manifest: img.Descriptor}}
	if img.Name != "" {
		res.Tags = []string{img.Name}
	}
	return c.publish(ctx, res, opts)
}

// errNoName is a push of an image that has no name to push to.
var errNoName = errors.New("the image has no name; give a destination reference")
