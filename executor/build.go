package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/fileset"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/parser"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/snapshot/sandbox"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// build is the state of one Build call.
type build struct {
	st     Stores
	opts   Options
	clock  clock
	file   string
	df     *parser.Dockerfile
	rep    Reporter
	global parser.Vars // automatic platform args + meta ARGs
	stages []*stage
	tmp    *lazyDir // the build's temp dir, made when a step first needs one
	sh     *shared  // with the builds of the other platforms (platforms.go)

	ctxFS     fileset.DirFS
	ctxIgnore *fileset.Ignore          // non-nil once contextFS ran
	contexts  map[string]*namedContext // --build-context (contexts.go)

	mu       sync.Mutex
	usedArgs map[string]bool
	bases    map[string]*oci.Image  // store images resolved by reference
	resolved map[string]*imageState // resolveImage's states, by ref and platform
	// records are those of every step of every stage, in order.
	records []cache.Record
	hist    *cache.History // what the last build of this Dockerfile and target did
	// coldCache: the build began with no cache record (speculate.go).
	coldCache bool

	// limits is what the first RUN found it can enforce of opts.Limits
	// (runLimits): none when this machine has no cgroup for it.
	limitsOnce sync.Once
	limits     sandbox.Limits
}

// runLimits are the resource limits of a RUN: opts.Limits, checked once,
// at the first RUN (a build that runs none makes no cgroup). Where they
// cannot be enforced (not root, no delegated cgroup) the build says so
// once and RUN goes without.
func (bd *build) runLimits() sandbox.Limits {
	bd.limitsOnce.Do(func() {
		bd.limits = bd.opts.Limits
		if err := sandbox.CheckLimits(bd.limits); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			bd.warn("RUN steps run without resource limits (memory, cpus, pids): %v", err)
			bd.limits = sandbox.Limits{Pids: -1}
		}
	})
	return bd.limits
}

// stage is one FROM block.
type stage struct {
	idx       int
	def       *instructions.Stage
	name      string // lower-case stage name, "" when unnamed
	base      string // expanded FROM argument
	baseStage *stage
	deps      []*stage
	steps     int  // numbered steps (FROM + filesystem steps)
	inImage   bool // the target or a stage it is FROM: its layers are the image's
	state     *imageState

	once sync.Once // the stage is built once, whoever needs it first
	err  error
}

// Build builds opts' Dockerfile into an image of st.Images and returns it
// untagged. It takes no lock: the caller keeps prune away meanwhile.
func Build(ctx context.Context, st Stores, opts Options) (*Result, error) {
	return buildOne(ctx, st, opts, newShared(false))
}

// buildOne is Build, with what it shares with the builds of other
// platforms (BuildPlatforms).
func buildOne(ctx context.Context, st Stores, opts Options, sh *shared) (*Result, error) {
	if opts.Reporter == nil {
		opts.Reporter = nopReporter{}
	}
	if opts.DockerfileName == "" {
		opts.DockerfileName = "Dockerfile"
	}
	if opts.Network == "" {
		opts.Network = "host"
	}
	if opts.Network != "host" && opts.Network != "none" {
		return nil, fmt.Errorf("%w: --network must be host or none, not %q", ErrUsage, opts.Network)
	}
	if fi, err := os.Stat(opts.ContextDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: context %q is not a directory", ErrUsage, opts.ContextDir)
	}
	df, err := parser.Parse(bytes.NewReader(opts.Dockerfile), opts.DockerfileName)
	if err != nil {
		return nil, err
	}
	tmp := &lazyDir{make: func() (string, error) { return st.Images.TempDir("build-") }}
	defer tmp.remove()

	bd := &build{st: st, opts: opts, clock: newClock(opts.SourceDateEpoch), file: opts.DockerfileName,
		df: df, rep: opts.Reporter, tmp: tmp, sh: sh, usedArgs: map[string]bool{}, hist: st.Cache.OpenHistory(historyID(opts, sh.multi))}
	bd.coldCache = st.Cache.Empty()
	if snapshot.SingleID() {
		bd.warn("this user namespace maps one id only: files of other owners in base images are unpacked as root, and a chown to another id in RUN fails")
	}
	if bd.contexts, err = parseContexts(opts.Contexts); err != nil {
		return nil, err
	}
	if err := bd.resolveGlobalArgs(); err != nil {
		return nil, err
	}
	target, err := bd.plan()
	if err != nil {
		return nil, err
	}
	if _, _, err := bd.contextFS(); err != nil {
		return nil, err
	}
	if checks, err := bd.runChecks(ctx, target); err != nil || opts.Check {
		return &Result{Checks: checks}, err // checks.go
	}
	if err := bd.runStage(ctx, target); err != nil {
		return nil, err
	}
	bd.warnUnusedArgs()
	_ = bd.hist.Save() // a hint for messages: a lost one loses explanations only
	return bd.finish(ctx, target.state)
}

// lex returns a word expander with the Dockerfile's escape token. BuildKit's
// Lex keeps state while it works: one per use, as stages run concurrently.
func (bd *build) lex() *shell.Lex { return bd.df.Lex() }

func (bd *build) warn(format string, a ...any) {
	bd.rep.Report(Event{Kind: Warning, Text: fmt.Sprintf(format, a...)})
}

// resolveGlobalArgs evaluates the ARGs before the first FROM.
func (bd *build) resolveGlobalArgs() error {
	var g parser.Vars
	for _, p := range parser.PlatformArgs(bd.opts.Platform) {
		g = g.Set(p.K, p.V)
	}
	for _, a := range bd.df.MetaArgs {
		for _, kvp := range a.Args {
			if v, ok := bd.opts.BuildArgs[kvp.Key]; ok {
				g = g.Set(kvp.Key, v)
				bd.markUsed(kvp.Key)
				continue
			}
			if kvp.Value != nil {
				v, err := parser.NewExpander(bd.lex(), g).Word(*kvp.Value)
				if err == nil {
					err = parser.CheckVars(g, parser.Var{K: kvp.Key, V: v})
				}
				if err != nil {
					return bd.errAt(&a, err)
				}
				g = g.Set(kvp.Key, v)
			}
			// Declared without a value and not given: unset, as in BuildKit.
		}
	}
	bd.global = g
	return nil
}

func (bd *build) markUsed(k string) {
	bd.mu.Lock()
	bd.usedArgs[k] = true
	bd.mu.Unlock()
}

func (bd *build) warnUnusedArgs() {
	var unused []string
	for k := range bd.opts.BuildArgs {
		if !bd.usedArgs[k] && !parser.IsProxyArg(k) && k != "SOURCE_DATE_EPOCH" && k != "BUILDKIT_DOCKERFILE_CHECK" {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		bd.warn("one or more build-args %v were not consumed", unused)
	}
}

// plan expands FROM lines, finds the target and links the stages it needs.
//
// Stage names follow BuildKit's dockerfile2llb (dispatchStates): a name
// may be reused (the DuplicateStageName check warns at the later stage). A
// FROM names the latest stage of that name before it (the name map holds
// the stages added so far, keyed as FROM wrote it); --target, COPY
// --from and RUN --mount from= name the last stage of that name in the
// whole Dockerfile (looked up once every stage is known, case-folded),
// which must come before the current stage.
func (bd *build) plan() (*stage, error) {
	for i := range bd.df.Stages {
		def := &bd.df.Stages[i]
		s := &stage{idx: i, def: def, name: strings.ToLower(def.Name), steps: 1}
		base, err := parser.NewExpander(bd.lex(), bd.global).Word(def.BaseName)
		if err != nil {
			return nil, bd.errAt(def, err)
		}
		if base == "" {
			return nil, bd.errAt(def, errors.New("base name (FROM) must not be empty"))
		}
		s.base = base
		s.steps += countSteps(def.Commands)
		if prev := bd.stageByName(base, i); prev != nil {
			s.baseStage = prev
		}
		bd.stages = append(bd.stages, s)
	}
	target := bd.stages[len(bd.stages)-1]
	if bd.opts.Target != "" {
		target = bd.stageByName(strings.ToLower(bd.opts.Target), len(bd.stages))
		if target == nil {
			var names []string
			for _, s := range bd.stages {
				if s.name != "" {
					names = append(names, s.name)
				}
			}
			known := "the Dockerfile has no named stages"
			if len(names) > 0 {
				known = "stages: " + strings.Join(names, ", ")
			}
			if near := parser.Suggest(bd.opts.Target, names); near != "" {
				known = fmt.Sprintf("did you mean %q? %s", near, known)
			}
			return nil, fmt.Errorf("%w: target stage %q could not be found (%s)", ErrUsage, bd.opts.Target, known)
		}
	}
	// A stage naming a stage that is not before it fails when BuildKit
	// dispatches it: only if the target needs it.
	dispatchErr := map[*stage]error{}
	for _, s := range bd.stages {
		for _, c := range s.def.Commands {
			if r, ok := c.(*instructions.RunCommand); ok {
				// RUN --mount=from=<stage> needs that stage built first.
				for _, m := range instructions.GetMounts(r) {
					if m.From == "" {
						continue
					}
					from, err := parser.NewExpander(bd.lex(), bd.global).Word(m.From)
					if err != nil {
						return nil, bd.errAt(r, err)
					}
					if later := bd.laterStage(from, s.idx); later != nil && dispatchErr[s] == nil {
						dispatchErr[s] = bd.errAt(r, fmt.Errorf("cannot mount from stage %q to %q, stage needs to be defined before current command", m.From, m.Target))
					}
					if dep := bd.stageRef(from, s.idx); dep != nil {
						s.deps = append(s.deps, dep)
					}
				}
				continue
			}
			cp, ok := c.(*instructions.CopyCommand)
			if !ok || cp.From == "" {
				continue
			}
			// As BuildKit: --from takes no variables (use a stage made with
			// FROM ${ARG} instead) and names an earlier stage or an image.
			if lit, _, err := bd.lex().ProcessWord(cp.From, shell.EnvsFromSlice(nil)); err != nil || lit != cp.From {
				return nil, bd.errAt(cp, errors.New("variable expansion is not supported for --from, define a new stage with FROM using ARG from global parser.Vars as a workaround"))
			}
			if n, err := strconv.Atoi(cp.From); err == nil && (n < 0 || n >= len(bd.stages)) {
				return nil, bd.errAt(cp, fmt.Errorf("invalid stage index %d", n))
			}
			if later := bd.laterStage(cp.From, s.idx); later != nil {
				name := later.name
				if name == "" {
					name = strconv.Itoa(later.idx)
				}
				if dispatchErr[s] == nil {
					dispatchErr[s] = bd.errAt(cp, fmt.Errorf("--from=%s: stage %q needs to be defined before the current stage", cp.From, name))
				}
				continue
			}
			if dep := bd.stageRef(cp.From, s.idx); dep != nil {
				s.deps = append(s.deps, dep)
			}
		}
	}
	if len(dispatchErr) > 0 {
		for _, s := range neededStages(target) { // in Dockerfile order
			if err := dispatchErr[s]; err != nil {
				return nil, err
			}
		}
	}
	for s := target; s != nil; s = s.baseStage {
		s.inImage = true
	}
	return target, nil
}

// stageByName finds the last stage named name defined before index
// before (name as the stage map keys it: lower case, except for FROM).
func (bd *build) stageByName(name string, before int) *stage {
	var found *stage
	for _, s := range bd.stages {
		if s.idx < before && s.name != "" && s.name == name {
			found = s
		}
	}
	return found
}

// stageRef resolves a COPY --from (or RUN --mount from=) value: a stage
// index before cur, or the name of a stage whose last definition is
// before cur; nil otherwise (an image, or a stage laterStage reports).
func (bd *build) stageRef(from string, cur int) *stage {
	if n, err := strconv.Atoi(from); err == nil {
		if n >= 0 && n < cur && n < len(bd.stages) {
			return bd.stages[n]
		}
		return nil
	}
	if s := bd.stageByName(strings.ToLower(from), len(bd.stages)); s != nil && s.idx < cur {
		return s
	}
	return nil
}

// laterStage is the stage a --from value names when that stage is cur
// itself or comes after it (BuildKit: not dispatched yet, an error).
func (bd *build) laterStage(from string, cur int) *stage {
	if n, err := strconv.Atoi(from); err == nil {
		if n >= cur && n < len(bd.stages) {
			return bd.stages[n]
		}
		return nil
	}
	if s := bd.stageByName(strings.ToLower(from), len(bd.stages)); s != nil && s.idx >= cur {
		return s
	}
	return nil
}

// runStage builds s after the stages it needs (each stage once).
func (bd *build) runStage(ctx context.Context, s *stage) error {
	s.once.Do(func() { s.err = bd.buildStage(ctx, s) })
	return s.err
}

// runDeps builds the stages s needs; independent ones run at the same time
// (the stores are safe for concurrent builds), and the first failure
// cancels the others.
func (bd *build) runDeps(ctx context.Context, s *stage) error {
	var deps []*stage
	for _, d := range append([]*stage{s.baseStage}, s.deps...) {
		if d != nil && !slices.Contains(deps, d) {
			deps = append(deps, d)
		}
	}
	if len(deps) == 1 {
		return bd.runStage(ctx, deps[0])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(deps))
	var wg sync.WaitGroup
	for i, d := range deps {
		wg.Go(func() {
			if errs[i] = bd.runStage(ctx, d); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// The failure itself, not the cancellations it caused in its siblings.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// buildStage builds the stages s needs, then s itself.
func (bd *build) buildStage(ctx context.Context, s *stage) error {
	ctx = withStage(ctx, s)
	if done, err := bd.overrideStage(ctx, s); done {
		return err
	}
	if err := bd.runDeps(ctx, s); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := bd.from(ctx, s)
	if err != nil {
		return err
	}
	cmds := slices.Clone(s.def.Commands)
	triggers, err := parser.Triggers(st.img.Config.OnBuild)
	st.img.Config.OnBuild = nil
	if err != nil {
		return bd.errAt(s.def, err)
	}
	s.steps += countSteps(triggers)
	step := 1
	for _, c := range triggers {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := bd.dispatch(ctx, s, st, c, &step); err != nil {
			return bd.triggerErr(s, err)
		}
	}
	for _, c := range cmds {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := bd.dispatch(ctx, s, st, c, &step); err != nil {
			return err
		}
	}
	s.state = st
	return nil
}

// triggerErr places the error of an ONBUILD trigger at the FROM line of
// the stage that ran it (the trigger's own line is in another Dockerfile).
func (bd *build) triggerErr(s *stage, err error) error {
	var pe *parser.Error
	if !errors.As(err, &pe) || len(s.def.Location) == 0 {
		return err
	}
	return &parser.Error{File: bd.file, Line: s.def.Location[0].Start.Line,
		Err: fmt.Errorf("%s: ONBUILD trigger %w", parser.Shorten(s.def.SourceCode), pe.Err)}
}

// countSteps counts the numbered (filesystem) steps among cmds.
func countSteps(cmds []instructions.Command) int {
	n := 0
	for _, c := range cmds {
		switch c.(type) {
		case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand, *instructions.WorkdirCommand:
			n++
		}
	}
	return n
}

// errAt locates err at a command's line: "Dockerfile:7: COPY a /: err".
func (bd *build) errAt(cmd any, err error) error { return parser.At(bd.file, cmd, err) }

func (bd *build) nextStepID() int { return bd.sh.nextStepID() }

// stepName is BuildKit's "[stage 2/5] COPY a /b" progress name, after the
// platform (platformPrefix) when the build has more than one.
func (s *stage) stepName(prefix string, n int, text string) string {
	name := s.name
	if name == "" {
		name = "stage-" + strconv.Itoa(s.idx)
	}
	return fmt.Sprintf("[%s%s %d/%d] %s", prefix, name, n, s.steps, parser.Shorten(text))
}
