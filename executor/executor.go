// Package executor is the build engine: it plans the stages of a Dockerfile,
// computes each step's cache key, runs the steps that miss (RUN in the
// sandbox over a snapshot, COPY/ADD streamed from a file tree into a layer)
// and writes the image config and manifest. It is the only glue between
// parser, fileset, cache, layer, snapshot, sandbox and oci.
//
// One call is one build:
//
//	res, err := executor.Build(ctx, executor.Stores{Images: st, Snapshots: sn, Cache: c}, opts)
//
// Build takes no lock, tags nothing and exports nothing: the caller (package
// client) holds the store lock for the whole build and publishes the result.
// Everything the build writes is crash-safe on its own: blobs are verified
// and renamed into place, snapshots are committed by rename, and a cache
// record is written last, so a killed build leaves at worst unreferenced
// files that the next open or prune removes.
package executor

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/layer"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/oci/registry"
	"github.com/builderdev/builder/parser"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/snapshot/sandbox"
	"github.com/builderdev/builder/source/git"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrUsage marks errors caused by bad arguments (exit code 2).
var ErrUsage = errors.New("usage error")

// ErrNotCached is returned by a build with Options.HitsOnly at the first
// step that would have to run, or rootfs that would have to be unpacked.
var ErrNotCached = errors.New("a step is not cached")

// Stores are the on-disk stores of one state directory that a build reads
// and writes. All three are safe for concurrent builds.
type Stores struct {
	Images    *oci.Store      // blobs, manifests, configs (base images and results)
	Snapshots *snapshot.Store // unpacked layers by chain ID
	Cache     *cache.Store    // step records, context stat caches, cache mounts
	Git       *git.Store      // fetched git trees by commit (nil: no git sources)
}

// Options of one build. ContextDir and Dockerfile are required; every other
// zero value is a default.
type Options struct {
	ContextDir     string
	Dockerfile     []byte // contents
	DockerfileName string // for messages (default "Dockerfile")
	// DockerignorePath, when set, is the ignore file (else <context>/.dockerignore).
	DockerignorePath string
	Target           string
	BuildArgs        map[string]string
	Labels           map[string]string
	Compression      layer.Compression // default gzip
	NoCache          bool
	NoCacheFilter    []string // stage names whose steps skip the cache
	Network          string   // "host" (default) or "none"
	// SourceDateEpoch, when set, clamps file mtimes and sets every created
	// time (see clock).
	SourceDateEpoch *time.Time
	Reporter        Reporter // default: none
	// Pull re-resolves base image tags against their registries (only
	// missing blobs are fetched); without it a stored base is used as is.
	Pull bool
	// Platform of the image (zero: the host's): picks base images from
	// indexes and sets the TARGET* platform ARGs.
	Platform ocispec.Platform
	// Registry: TLS, credentials and blob progress for pulls of base images.
	Registry registry.Options
	// Secrets maps RUN --mount=type=secret ids to their content (--secret);
	// it never enters a layer, a cache key or the history, and is on disk
	// (in the store's tmp) only while a RUN that mounts it runs.
	Secrets map[string][]byte
	// SSH lends agents to RUN --mount=type=ssh (--ssh); nil: none.
	SSH SSHAgents
	// CacheFrom are imported caches, asked in order after the local cache
	// misses (not with NoCache).
	CacheFrom []CacheSource
	// Explain makes a CacheMiss event list every input that differs from
	// the last build of this Dockerfile and target, not only the first.
	Explain bool
	// ExpectCached fails the build at the first step that would run.
	ExpectCached bool
	// Limits bound the memory, CPU and process count of each RUN (zero:
	// the sandbox's default pids limit only).
	Limits sandbox.Limits
	// AllowInsecure lets RUN --security=insecure run with every capability
	// and no seccomp filter (--allow security.insecure); without it such a
	// RUN is an error.
	AllowInsecure bool
	// Contexts are the named contexts (--build-context NAME=VALUE, as
	// docker buildx): a directory, docker-image://REF,
	// oci-layout://DIR[:TAG|@DIGEST], an http(s) tarball or a git URL.
	Contexts map[string]string
	// ContextSource, when set, is where ContextDir came from (a git URL
	// fetched into it): it names the history of this build, which then
	// spans the commits the URL's ref moves through.
	ContextSource string
	// HitsOnly builds only from the cache: the first step that would run
	// (or rootfs that would be unpacked) fails the build with ErrNotCached.
	// A user's build tries this first, outside a user namespace, whose
	// re-exec costs more than a fully cached build (cmd/builder).
	HitsOnly bool
	// Check runs the build checks only (`build --check`): the checks of
	// every stage (of the target's, with Target), base images resolved,
	// nothing built; Result.Checks holds the warnings.
	Check bool
	// LayerSink, when set, is asked for an upload for each layer the build
	// packs (nil: none); see LayerUpload. inImage says the step is one of
	// the target image's stages (the target and the stages it is FROM),
	// whose layers a mode=min cache holds (client streams layers to a
	// --cache-to registry this way). It is called in the step, which it
	// must not hold up: no I/O.
	LayerSink func(inImage bool) LayerUpload
}

// LayerUpload is one layer blob's upload, fed by a goroutine of the engine
// that follows the blob into the store (oci.BlobWriter.Follow), so that
// packing never waits for it. Lifecycle, every call from that goroutine:
// Write gets the compressed bytes in order as they are stored (none if
// the step fails early), then exactly one of Commit, with the blob's
// digest once the store has it, or Abort: the step failed, or a Write
// returned an error (which drops the upload). The step does not wait for
// either: an upload may run on after its step, and after Build returned;
// whoever gives uploads out waits for them to end (the client's cache
// export) and bounds them with its own context. An upload that fails
// never fails the build.
type LayerUpload interface {
	io.Writer
	Commit(d digest.Digest) error
	Abort()
}

// CheckWarning is a build check's warning (parser.Dockerfile.Check).
type CheckWarning = parser.Warning

// CacheSource is an imported cache (package cache/remote): another place
// to look a step's key up. A hit appends the step's layer without its
// bytes; Fetch brings the blob into Stores.Images, verified, only when
// something needs it (unpacking a rootfs), and writes the records of that
// blob to the local cache.
type CacheSource interface {
	String() string // "registry REF", for progress
	Lookup(key digest.Digest) (cache.Record, bool)
	Fetch(ctx context.Context, layer digest.Digest) error
}

// SSHAgents are the SSH agents a build may forward, by id (package
// sshforward). Listen makes a socket under dir, owned by uid:gid with mode
// perm, that forwards to agent id until stop; the RUN sees that socket,
// never a key.
type SSHAgents interface {
	Has(id string) bool
	Listen(id, dir string, uid, gid int, perm fs.FileMode) (path string, stop func() error, err error)
}

// Result of a successful build: an image in Stores.Images, not yet tagged.
type Result struct {
	ManifestDigest digest.Digest
	ImageID        digest.Digest      // config digest
	Manifest       ocispec.Descriptor // of ManifestDigest, with its platform
	// LayerSteps[i] is the Dockerfile line that made layer i
	// ("Dockerfile:3"), "" for the layers of the base image.
	LayerSteps []string
	// Bases are the store images the build resolved (FROM, COPY --from,
	// RUN --mount=from=), by the reference the Dockerfile gave.
	Bases map[string]*oci.Image
	// Records are the cache records of the image's steps, in order (what
	// --cache-to mode=min exports); StageRecords those of the other
	// stages built (mode=max adds them).
	Records, StageRecords []cache.Record
	// Checks are the build checks' warnings, with Options.Check (a build
	// reports them as Lint events).
	Checks []CheckWarning
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
	CacheMiss                  // why a step runs (Text), before it runs
	Lint                       // a build check's warning (Check), before any step
)

// Event is one progress event.
type Event struct {
	Kind     EventKind
	ID       int    // step number, unique in the build
	Name     string // "[stage 2/5] COPY a /b"
	Line     int    // StepStart, StepDone: the instruction's Dockerfile line
	Cached   bool
	From     string // a hit from an imported cache: which (CacheSource.String)
	Duration time.Duration
	// Layer is the layer blob a StepDone step made or found (none when
	// it only changed the config).
	Layer digest.Digest
	Err   error
	Data  []byte // StepLog
	Text  string // Warning
	// Check is the warning of a Lint event.
	Check *CheckWarning
}

type nopReporter struct{}

func (nopReporter) Report(Event) {}
