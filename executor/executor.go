// Package executor plans the stages of a Dockerfile, computes cache keys,
// runs steps and writes the image config and manifest. It is the only glue
// between parser, cache, layer, snapshot, sandbox and oci.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrUsage marks errors caused by bad arguments (exit code 2).
var ErrUsage = errors.New("usage error")

// Builder owns the stores of one state directory.
type Builder struct {
	Store     *oci.Store
	Snapshots *snapshot.Store
	Cache     *cache.Store
	log       *slog.Logger
}

// Open opens (creating when missing) the state directory root.
func Open(ctx context.Context, root string, log *slog.Logger) (*Builder, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	st, err := oci.Open(ctx, root)
	if err != nil {
		return nil, err
	}
	sn, err := snapshot.Open(ctx, filepath.Join(root, "snapshots"))
	if err != nil {
		return nil, err
	}
	c, err := cache.Open(ctx, filepath.Join(root, "cache"))
	if err != nil {
		return nil, err
	}
	return &Builder{Store: st, Snapshots: sn, Cache: c, log: log}, nil
}

// Close releases the stores (this process's work dir under <root>/tmp).
// The Builder must not be used after Close.
func (b *Builder) Close() error { return b.Store.Close() }

// Output is one export of the built image.
type Output struct {
	Type string // "oci", "docker", "oci-layout", "local", "image"
	Dest string // path; for "image", the name to tag (and push)
	Push bool   // "image" only: push Dest to its registry
}

// Options of one build. The zero value is not useful: ContextDir and a
// Dockerfile are required.
type Options struct {
	ContextDir     string
	Dockerfile     []byte // contents
	DockerfileName string // for messages, e.g. "Dockerfile"
	// DockerignorePath, when set, is the ignore file (else <context>/.dockerignore).
	DockerignorePath string
	Tags             []string
	Target           string
	BuildArgs        map[string]string
	Labels           map[string]string
	Compression      layer.Compression
	NoCache          bool
	NoCacheFilter    []string // stage names whose steps skip the cache
	Network          string   // "host" (default) or "none"
	Outputs          []Output
	// SourceDateEpoch, when set, clamps file mtimes and sets every created time.
	SourceDateEpoch *time.Time
	Reporter        Reporter
	// Pull re-resolves base image tags against their registries (only
	// missing blobs are fetched); without it a stored base is used as is.
	Pull bool
	// Platform of the image (zero: the host's): picks base images from
	// indexes and sets the TARGET* platform ARGs.
	Platform ocispec.Platform
	// Push uploads the image to the registry of every tag after the build.
	Push bool
	// Registry: TLS, credentials and blob progress for pulls and pushes.
	Registry RegistryOptions
	// Secrets maps RUN --mount=type=secret ids to their content (--secret);
	// it never enters a layer, a cache key or the history, and is on disk
	// (in the store's tmp) only while a RUN that mounts it runs.
	Secrets map[string][]byte
}

// Result of a successful build.
type Result struct {
	ManifestDigest digest.Digest
	ImageID        digest.Digest // config digest
	Tags           []string
	Manifest       ocispec.Descriptor // of ManifestDigest, in the store
	// LayerSteps[i] is the Dockerfile line that made layer i
	// ("Dockerfile:3"), "" for the layers of the base image.
	LayerSteps []string
	// Bases are the store images the build resolved (FROM, COPY --from,
	// RUN --mount=from=), by the reference the Dockerfile gave.
	Bases map[string]*oci.Image
}

// Reporter receives progress events. Implementations must be safe for
// concurrent use.
type Reporter interface {
	Report(Event)
}

// EventKind tells what an Event is about.
type EventKind int

const (
	StepStart EventKind = iota // a step began
	StepDone                   // a step finished (Err set on failure)
	StepLog                    // output of a RUN
	Warning                    // a build warning (Text)
)

// Event is one progress event.
type Event struct {
	Kind     EventKind
	ID       int    // step number, unique in the build
	Name     string // "[stage 2/5] COPY a /b"
	Cached   bool
	Duration time.Duration
	Err      error
	Data     []byte // StepLog
	Text     string // Warning
}

type nopReporter struct{}

func (nopReporter) Report(Event) {}
