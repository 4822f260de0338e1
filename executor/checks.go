package executor

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/builderdev/builder/parser"
)

// runChecks runs the Dockerfile's build checks (parser.Dockerfile.Check)
// before any step, as BuildKit does while it converts the Dockerfile: the
// base images of the stages to check are resolved first (pulled when
// needed; the stages find them again in the store), so that the rules
// that need them see their ENV, SHELL and platform. Each warning is a Lint
// event. With check error=true and warnings the build stops here.
//
// A build checks the stages it runs; Options.Check checks every stage (or
// the target's, with Target) and, where a base cannot be resolved, checks
// the rest and returns that error with the warnings.
func (bd *build) runChecks(ctx context.Context, target *stage) ([]CheckWarning, error) {
	all := bd.opts.Check && bd.opts.Target == ""
	var run []*stage
	if all {
		run = bd.stages
	} else {
		run = neededStages(target)
	}
	opts := parser.CheckOptions{File: bd.file, BuildArgs: bd.opts.BuildArgs, Platform: bd.opts.Platform,
		Target: bd.opts.Target, Bases: map[int]parser.BaseImage{}}
	var baseErr error
	for _, s := range run {
		if !all {
			opts.Stages = append(opts.Stages, s.idx)
		}
		if s.baseStage != nil || strings.EqualFold(s.base, "scratch") {
			continue
		}
		b, err := bd.checkBase(ctx, s)
		if errors.Is(err, errNoBase) {
			continue
		}
		if err != nil && !bd.opts.Check {
			return nil, err
		}
		if err != nil {
			baseErr = firstErr(baseErr, err)
			continue
		}
		opts.Bases[s.idx] = b
	}
	if _, ig, err := bd.contextFS(); err == nil {
		opts.Ignore = ig.Patterns()
	}
	ws, err := bd.df.Check(opts)
	for i := range ws {
		bd.rep.Report(Event{Kind: Lint, Check: &ws[i]})
	}
	return ws, firstErr(baseErr, err)
}

// errNoBase: the stage's base has no image config to check against.
var errNoBase = errors.New("no base image config")

// checkBase resolves the base image of s for the checks.
func (bd *build) checkBase(ctx context.Context, s *stage) (parser.BaseImage, error) {
	plat, err := bd.stagePlatform(s)
	if err != nil {
		return parser.BaseImage{}, bd.errAt(s.def, err)
	}
	var st *imageState
	if nc := bd.namedContext(s.base); nc != nil {
		// --build-context NAME: an image context is its image; a tree
		// has no config to check against (made only when the stage runs).
		if nc.kind != "image" && nc.kind != "oci-layout" {
			return parser.BaseImage{}, errNoBase
		}
		st, err = bd.contextState(ctx, nc, plat)
	} else {
		st, err = bd.resolveImage(ctx, s.base, plat)
	}
	if err != nil {
		return parser.BaseImage{}, bd.errAt(s.def, err)
	}
	cfg := st.img
	return parser.BaseImage{Env: cfg.Config.Env, Shell: cfg.Config.Shell, Platform: cfg.Platform, Wanted: plat,
		Empty: len(cfg.RootFS.DiffIDs) == 0, OnBuild: cfg.Config.OnBuild}, nil
}

// neededStages are the stages a build of target runs, in Dockerfile order.
func neededStages(target *stage) []*stage {
	needed := map[*stage]bool{}
	todo := []*stage{target}
	for len(todo) > 0 {
		s := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if s == nil || needed[s] {
			continue
		}
		needed[s] = true
		todo = append(append(todo, s.baseStage), s.deps...)
	}
	var out []*stage
	for s := range needed {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *stage) int { return a.idx - b.idx })
	return out
}

// firstErr is the first non-nil error.
func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
