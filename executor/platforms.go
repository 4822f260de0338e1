package executor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/oci/registry"
	"github.com/builderdev/builder/snapshot/sandbox"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Multi-platform builds. BuildPlatforms plans and runs the Dockerfile once
// per platform, all at the same time, and the builds share their steps: a
// step's cache key is the content key of its inputs (the parent rootfs,
// the instruction, the ARGs in scope, the platform its RUN executes for),
// so a step that does not depend on the target (a FROM
// --platform=$BUILDPLATFORM stage before any ARG TARGET*) has the same key
// in every build. The first build to reach a key runs the step; the others
// wait for it and take its record, so it runs once and is reported once,
// as one BuildKit vertex. Steps that do depend on the target run once per
// target; a RUN for a platform the host cannot execute runs under QEMU
// user-mode emulation (sandbox.CanRun), checked before it starts.

// shared is what the builds of one BuildPlatforms (or Build) call share.
type shared struct {
	multi bool // more than one platform: step names carry the platform
	pulls pullCache

	mu    sync.Mutex
	seq   int                       // step IDs, unique across the builds
	steps map[digest.Digest]*flight // by cache key: run once, by the first
	froms map[string]bool           // FROM steps reported, by name
	// remote maps the layers of imported-cache hits to their cache, until
	// fetched.
	remote map[digest.Digest]CacheSource
}

func newShared(multi bool) *shared {
	return &shared{multi: multi, steps: map[digest.Digest]*flight{}, froms: map[string]bool{}, remote: map[digest.Digest]CacheSource{}}
}

func (sh *shared) nextStepID() int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.seq++
	return sh.seq
}

// flight is one step, run by the first build that reached its key.
type flight struct {
	done chan struct{}
	rec  cache.Record // what the step produced or hit (when err is nil)
	err  error
}

// join returns the flight of key and whether the caller leads it (runs
// the step, then calls finish).
func (sh *shared) join(key digest.Digest) (*flight, bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if f := sh.steps[key]; f != nil {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	sh.steps[key] = f
	return f, true
}

// finish publishes the leader's outcome: the record its step appended to st.
func (f *flight) finish(st *imageState, err error) {
	f.err = err
	if err == nil && len(st.records) > 0 {
		f.rec = st.records[len(st.records)-1]
	}
	close(f.done)
}

// follow waits for the leader of the same step and applies its record to
// st. In a multi-platform build the step is the leader's vertex and is not
// reported again; in a single build (two stages with the same step) it is
// reported as cached.
func (bd *build) follow(ctx context.Context, s *stage, st *imageState, step int, fs fsStep, f *flight, key digest.Digest) error {
	id, name, start := 0, "", fs.start
	if !bd.sh.multi {
		id, name = bd.nextStepID(), s.stepName("", step, fs.text)
		if start.IsZero() {
			start = time.Now()
		}
		bd.rep.Report(Event{Kind: StepStart, ID: id, Name: name})
	}
	var err error
	select {
	case <-f.done:
		err = f.err
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		bd.applyRecord(st, f.rec, fs.createdBy)
		st.key = key
		st.lastHit = true
	}
	if !bd.sh.multi {
		bd.rep.Report(Event{Kind: StepDone, ID: id, Name: name, Cached: err == nil, Duration: time.Since(start), Err: err})
	}
	return err
}

// firstFrom reports whether no build reported the FROM step name yet.
func (sh *shared) firstFrom(name string) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	first := !sh.froms[name]
	sh.froms[name] = true
	return first
}

// stagePrefix is the platform part of a step name in a multi-platform
// build, as BuildKit writes it: "linux/amd64 " (the platform the stage's
// steps run for).
func (bd *build) stagePrefix(s *stage) string {
	if !bd.sh.multi {
		return ""
	}
	if s.baseStage != nil {
		return bd.stagePrefix(s.baseStage) // FROM a stage: that stage's platform
	}
	p, err := bd.stagePlatform(s)
	if err != nil || p.Architecture == "" {
		p = registry.DefaultPlatform()
	}
	return registry.FormatPlatform(p) + " "
}

// platformPrefix is stagePrefix for a step of st, followed, as BuildKit
// does, by "->arm64" when the stage declares a TARGETPLATFORM that is not
// its own platform ("linux/amd64->arm64 ": a cross-compiling step).
func (bd *build) platformPrefix(st *imageState) string {
	if !bd.sh.multi {
		return ""
	}
	own := execPlatform(st)
	out := registry.FormatPlatform(own)
	if v, ok := st.args.Get("TARGETPLATFORM"); ok {
		if t, err := registry.ParsePlatform(v); err == nil {
			switch {
			case t.OS == own.OS && t.Architecture != own.Architecture:
				out += "->" + t.Architecture
				if t.Variant != "" {
					out += "/" + t.Variant
				}
			case t.OS != own.OS:
				out += "->" + registry.FormatPlatform(t)
			}
		}
	}
	return out + " "
}

// execPlatform is the platform the binaries of st's rootfs are for: the
// platform of its image config (a base image's, the stage's FROM
// --platform, the build's target), the host's when the config has none.
// A RUN executes for it, and its key says so.
func execPlatform(st *imageState) ocispec.Platform {
	if st.img.Architecture == "" {
		return registry.DefaultPlatform()
	}
	os := st.img.OS
	if os == "" {
		os = "linux"
	}
	p := ocispec.Platform{OS: os, Architecture: st.img.Architecture, Variant: st.img.Variant}
	if n, err := registry.ParsePlatform(registry.FormatPlatform(p)); err == nil {
		p = n // arm64/v8 is arm64, x86_64 is amd64
	}
	return p
}

// checkExec fails a RUN for plat that this host can neither run natively
// nor emulate, saying the command that fixes it.
func checkExec(plat ocispec.Platform) error {
	if plat.OS != "" && plat.OS != "linux" {
		return fmt.Errorf("RUN for %s: only linux binaries can run here", registry.FormatPlatform(plat))
	}
	if plat.Architecture == runtime.GOARCH {
		return nil
	}
	_, err := sandbox.CanRun(plat.Architecture)
	return err
}

// BuildPlatforms builds opts' Dockerfile for each of plats (opts.Platform
// is ignored) at the same time, sharing the steps that do not depend on
// the target, and returns one image per platform, in the order of plats.
// The first failure cancels the other builds.
func BuildPlatforms(ctx context.Context, st Stores, opts Options, plats []ocispec.Platform) ([]*Result, error) {
	if len(plats) == 0 {
		return nil, fmt.Errorf("%w: no platform to build", ErrUsage)
	}
	seen := map[string]bool{}
	for _, p := range plats {
		name := registry.FormatPlatform(p)
		if seen[name] {
			return nil, fmt.Errorf("%w: --platform lists %s twice", ErrUsage, name)
		}
		seen[name] = true
	}
	if len(plats) == 1 {
		opts.Platform = plats[0]
		res, err := Build(ctx, st, opts)
		if err != nil {
			return nil, err
		}
		return []*Result{res}, nil
	}
	if opts.Reporter == nil {
		opts.Reporter = nopReporter{}
	}
	opts.Reporter = &onceWarnings{Reporter: opts.Reporter, seen: map[string]bool{}}
	sh := newShared(true)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]*Result, len(plats))
	errs := make([]error, len(plats))
	// As many platforms at a time as there are cores (at least two). A
	// waiting build leads no step, so the builds it would follow are
	// running: no deadlock.
	slots := make(chan struct{}, max(runtime.NumCPU(), 2))
	var wg sync.WaitGroup
	for i, p := range plats {
		o := opts
		o.Platform = p
		wg.Go(func() {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			if out[i], errs[i] = buildOne(ctx, st, o, sh); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// The failure itself, not the cancellations it caused in the others.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// onceWarnings passes each warning once: every platform's build finds the
// same ones.
type onceWarnings struct {
	Reporter
	mu   sync.Mutex
	seen map[string]bool
}

func (r *onceWarnings) Report(e Event) {
	if e.Kind == Warning {
		r.mu.Lock()
		dup := r.seen[e.Text]
		r.seen[e.Text] = true
		r.mu.Unlock()
		if dup {
			return
		}
	}
	r.Reporter.Report(e)
}
