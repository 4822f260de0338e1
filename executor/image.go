package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/parser"
	"github.com/builderdev/builder/snapshot"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// historyComment marks history entries we wrote, like BuildKit's.
const historyComment = "builder.dockerfile.v0"

// imageState is a stage's image as its instructions are applied.
type imageState struct {
	img       dockerspec.DockerOCIImage
	layers    []ocispec.Descriptor
	chain     digest.Digest   // chain ID of layers, "" when there are none
	key       digest.Digest   // cache key of the last step (identity of the rootfs)
	args      parser.Vars     // ARGs declared in this stage, with values
	argDefs   []parser.Var    // declared ARGs in order (for RUN history)
	argWins   map[string]bool // ARGs set after the last ENV of the same name
	cmdSet    bool
	created   *time.Time // time of the newest layer added by this build
	fromStage bool
	// origin is where the instruction being dispatched is ("Dockerfile:3");
	// steps[i] is where layer i came from ("" for the base image's).
	origin string
	line   int // its line alone (progress events)
	steps  []string
	// lastHit: the last filesystem step of this stage was a cache hit
	// (for explaining why the next one misses).
	lastHit bool
	// records are the cache records of the steps that made this state,
	// stages it was built on included.
	records []cache.Record
	// newest bounds the mtimes of the rootfs (Unix seconds): the base
	// image's created time, then the newest time of each layer added.
	// RUN output is stamped after it (see stampRunTimes).
	newest int64
}

// clone deep-copies st (the image config through JSON).
func (st *imageState) clone() *imageState {
	out := *st
	data, _ := json.Marshal(st.img)
	out.img = dockerspec.DockerOCIImage{}
	_ = json.Unmarshal(data, &out.img)
	out.layers = append([]ocispec.Descriptor(nil), st.layers...)
	out.steps = slices.Clone(st.steps)
	out.records = slices.Clone(st.records)
	// A stage built on another inherits its ARGs (BuildKit; documented in
	// the Dockerfile reference), but not whether CMD was set.
	out.args = slices.Clone(st.args)
	out.argDefs = slices.Clone(st.argDefs)
	out.argWins = maps.Clone(st.argWins)
	out.cmdSet = false
	return &out
}

// addLayer appends a layer and its history entry.
func (st *imageState) addLayer(desc ocispec.Descriptor, diffID digest.Digest, createdBy string, created time.Time) {
	st.layers = append(st.layers, desc)
	st.steps = append(st.steps, st.origin)
	st.img.RootFS.DiffIDs = append(st.img.RootFS.DiffIDs, diffID)
	st.chain = snapshot.ChainID(st.chain, diffID)
	c := created.UTC()
	st.img.History = append(st.img.History, ocispec.History{Created: &c, CreatedBy: createdBy, Comment: historyComment})
	if st.created == nil || c.After(*st.created) {
		st.created = &c
	}
}

// addHistory records a metadata-only step.
func (st *imageState) addHistory(createdBy string) {
	st.img.History = append(st.img.History, ocispec.History{CreatedBy: createdBy, Comment: historyComment, EmptyLayer: true})
}

// scratchImage is the config a FROM scratch stage starts from: BuildKit's
// emptyImage (frontend/dockerfile/dockerfile2llb/image.go): the platform's
// os/architecture/os.version/os.features/variant, rootfs type "layers",
// WorkingDir "/" and, except on Windows, the default PATH. No history.
func scratchImage(plat ocispec.Platform) dockerspec.DockerOCIImage {
	var img dockerspec.DockerOCIImage
	img.Platform = ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if plat.Architecture != "" {
		img.Platform = ocispec.Platform{OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant,
			OSVersion: plat.OSVersion, OSFeatures: slices.Clone(plat.OSFeatures)}
	}
	img.RootFS = ocispec.RootFS{Type: "layers"}
	img.Config.WorkingDir = "/"
	if img.OS != "windows" {
		img.Config.Env = []string{"PATH=" + defaultPath}
	}
	return img
}

// from makes the initial state of a stage: scratch, an earlier stage, or an
// image of the store.
func (bd *build) from(ctx context.Context, s *stage) (*imageState, error) {
	start := time.Now()
	id := bd.nextStepID()
	name := s.stepName(bd.stagePrefix(s), 1, "FROM "+s.base)
	rep := bd.rep
	if !bd.sh.firstFrom(name) {
		rep = nopReporter{} // the same FROM of another platform's build: one vertex
	}
	line := 0
	if len(s.def.Location) > 0 {
		line = s.def.Location[0].Start.Line
	}
	rep.Report(Event{Kind: StepStart, ID: id, Name: name, Line: line})
	st, err := bd.fromBase(ctx, s)
	if err != nil {
		err = bd.errAt(s.def, err)
	} else if _, ok := parser.VarsFromEnv(st.img.Config.Env).Get("PATH"); !ok && st.img.OS != "windows" {
		// As BuildKit (dispatchStages): every stage's image has a PATH,
		// except on Windows.
		st.img.Config.Env = append(st.img.Config.Env, "PATH="+defaultPath)
	}
	rep.Report(Event{Kind: StepDone, ID: id, Name: name, Line: line, Duration: time.Since(start), Err: err})
	return st, err
}

func (bd *build) fromBase(ctx context.Context, s *stage) (*imageState, error) {
	plat, err := bd.stagePlatform(s)
	if err != nil {
		return nil, err
	}
	switch {
	case s.baseStage != nil:
		st := s.baseStage.state.clone()
		st.fromStage = true
		return st, nil
	case strings.EqualFold(s.base, "scratch"):
		return &imageState{img: scratchImage(plat), key: digest.FromString("scratch")}, nil
	}
	if nc := bd.namedContext(s.base); nc != nil {
		return bd.contextState(ctx, nc, plat)
	}
	img, err := bd.resolveImage(ctx, s.base, plat)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// resolveImage loads an image of the store (pulled when needed, see
// baseImage) as a state.
func (bd *build) resolveImage(ctx context.Context, ref string, plat ocispec.Platform) (*imageState, error) {
	// The build checks and the stage's FROM ask for the same image: read
	// the store once, and give each caller its own copy.
	key := strings.Join([]string{ref, plat.OS, plat.Architecture, plat.Variant, plat.OSVersion}, "\x00")
	bd.mu.Lock()
	st := bd.resolved[key]
	bd.mu.Unlock()
	if st == nil {
		var err error
		if st, err = bd.readImage(ctx, ref, plat); err != nil {
			return nil, err
		}
		bd.mu.Lock()
		if bd.resolved == nil {
			bd.resolved = map[string]*imageState{}
		}
		bd.resolved[key] = st
		bd.mu.Unlock()
	}
	out := st.clone()
	out.cmdSet = st.cmdSet
	return out, nil
}

// readImage reads resolveImage's image from the store.
func (bd *build) readImage(ctx context.Context, ref string, plat ocispec.Platform) (*imageState, error) {
	im, err := bd.baseImage(ctx, ref, plat)
	if err != nil {
		return nil, err
	}
	var cfg dockerspec.DockerOCIImage
	if err := bd.st.Images.GetJSON(ctx, im.Manifest.Config.Digest, &cfg); err != nil {
		return nil, fmt.Errorf("read config of %s: %w", ref, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(im.Manifest.Layers) {
		return nil, fmt.Errorf("image %s: %d layers but %d diff_ids", ref, len(im.Manifest.Layers), len(cfg.RootFS.DiffIDs))
	}
	st := &imageState{img: cfg, layers: append([]ocispec.Descriptor(nil), im.Manifest.Layers...), key: im.Descriptor.Digest,
		steps: make([]string, len(im.Manifest.Layers))}
	if cfg.Created != nil {
		st.newest = cfg.Created.Unix()
	}
	for _, d := range cfg.RootFS.DiffIDs {
		st.chain = snapshot.ChainID(st.chain, d)
	}
	if st.img.OS == "" {
		st.img.OS = "linux"
	}
	return st, nil
}

// finish writes the config and manifest of the target stage's image.
func (bd *build) finish(ctx context.Context, st *imageState) (*Result, error) {
	img := st.img
	if len(bd.opts.Labels) > 0 {
		if img.Config.Labels == nil {
			img.Config.Labels = map[string]string{}
		}
		maps.Copy(img.Config.Labels, bd.opts.Labels)
	}
	created := bd.clock.imageTime(st.created, img.Created)
	img.Created = &created
	for i := range img.History {
		if img.History[i].Created == nil || bd.clock.rewritesHistory() && img.History[i].Comment == historyComment {
			c := created
			img.History[i].Created = &c
		}
	}
	if n := len(img.History); bd.clock.rewritesHistory() && n > 0 {
		// As BuildKit's exporter: the image was created when its last
		// history entry was, which is the base's when this build added none.
		last := *img.History[n-1].Created
		img.Created = &last
	}
	cfgData, err := oci.ConfigJSON(img)
	if err != nil {
		return nil, fmt.Errorf("write image config: %w", err)
	}
	cfgDesc, err := bd.st.Images.PutJSON(ctx, ocispec.MediaTypeImageConfig, json.RawMessage(cfgData))
	if err != nil {
		return nil, fmt.Errorf("write image config: %w", err)
	}
	layers := st.layers
	if layers == nil {
		layers = []ocispec.Descriptor{}
	}
	man := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    layers,
	}
	manDesc, err := bd.st.Images.PutJSON(ctx, ocispec.MediaTypeImageManifest, man)
	if err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	manDesc.Platform = &ocispec.Platform{OS: img.OS, Architecture: img.Architecture, Variant: img.Variant}
	res := &Result{ManifestDigest: manDesc.Digest, ImageID: cfgDesc.Digest, Manifest: manDesc,
		LayerSteps: slices.Clone(st.steps), Bases: bd.baseImages(), Records: slices.Clone(st.records)}
	mine := map[digest.Digest]bool{}
	for _, r := range st.records {
		mine[r.Key] = true
	}
	bd.mu.Lock()
	defer bd.mu.Unlock()
	for _, r := range bd.records {
		if !mine[r.Key] {
			mine[r.Key] = true
			res.StageRecords = append(res.StageRecords, r)
		}
	}
	return res, nil
}
