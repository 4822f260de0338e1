package parser

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	bkparser "github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/suggest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Build checks: BuildKit's Dockerfile linter rules (linter.Rule*: their
// names, URLs and messages), run as BuildKit's dockerfile2llb runs them,
// over a parsed Dockerfile before anything is built. Rules that look at
// the Dockerfile only check every stage; rules on instructions check the
// stages the build runs (every stage for `build --check`, as BuildKit's
// lint request), walking each stage's variables in scope (checks_vars.go)
// from the facts the engine resolved first: the base images' ENV, SHELL
// and platform, and the .dockerignore patterns.
//
// Which rules run is BuildKit's configuration: the `# check=` directive
// (skip=Rule1,Rule2|all; error=true; experimental=Rule|all), replaced as
// a whole by the BUILDKIT_DOCKERFILE_CHECK build arg, narrowed by a
// `# check=` comment right before an instruction. Experimental rules run
// only when named; deprecated ones never.

// Warning is a build check's finding: a rule and where it applies.
type Warning struct {
	Line        int // first line of the instruction; 0 when unknown
	EndLine     int // its last line (>= Line)
	Rule        string
	Message     string
	Description string // the rule's description
	URL         string // the rule's documentation ("" for some)
}

// Short is BuildKit's one-line form: "Rule: message (line N)".
func (w Warning) Short() string { return linter.LintFormatShort(w.Rule, w.Message, w.Line) }

// ErrChecks is wrapped by the error of checks that found warnings when
// the configuration says error=true: the build stops before any step.
var ErrChecks = errors.New("lint violation found")

// CheckOptions are the facts of one build that the checks need.
type CheckOptions struct {
	// File names the Dockerfile in errors ("Dockerfile").
	File string
	// BuildArgs are the --build-arg values. BUILDKIT_DOCKERFILE_CHECK
	// among them replaces the Dockerfile's `# check=` directive.
	BuildArgs map[string]string
	// Platform is the target platform (zero: the host's).
	Platform ocispec.Platform
	// Target is the --target stage ("": the last).
	Target string
	// Stages are the indexes of the stages the build runs: the rules on
	// instructions check those only. Nil checks every stage (--check).
	Stages []int
	// Bases are the base images of the stages built FROM an image, by
	// stage index, as the engine resolved them. A stage whose image is
	// missing is not checked for UndefinedVar (its ENV is unknown) nor
	// InvalidBaseImagePlatform.
	Bases map[int]BaseImage
	// Ignore are the patterns of the context's .dockerignore.
	Ignore []string
}

// BaseImage is what the checks need of a resolved base image.
type BaseImage struct {
	Env   []string // its config's ENV
	Shell []string // its config's SHELL
	// Platform is its config's; Wanted the one asked for (FROM
	// --platform, else the build's; zero: the host's).
	Platform, Wanted ocispec.Platform
	// Empty: an image without layers, which BuildKit takes as scratch.
	Empty bool
	// OnBuild are its ONBUILD triggers (run first in the stage).
	OnBuild []string
}

// checker is one run of the checks.
type checker struct {
	d      *Dockerfile
	opts   CheckOptions
	lint   *linter.Linter
	lex    *shell.Lex // one for the whole run: a Lex is not safe for concurrent use, the checks run in one goroutine
	out    []Warning
	global Vars            // the global scope: automatic platform ARGs, then the meta ARGs
	metaed map[string]bool // names of the meta ARGs (declared, with a value or not)
}

// Check runs the build checks and returns their warnings, in BuildKit's
// order. With check error=true and warnings, the error wraps ErrChecks;
// a malformed check configuration is an error too. An instruction that
// would fail to expand is skipped: the build reports it.
func (d *Dockerfile) Check(opts CheckOptions) ([]Warning, error) {
	if opts.File == "" {
		opts.File = "Dockerfile"
	}
	cfg, err := d.checkConfig(opts)
	if err != nil {
		return nil, err
	}
	c := &checker{d: d, opts: opts, lex: d.Lex()}
	cfg.Warn = c.warn
	c.lint = linter.New(cfg)
	c.parseRules()
	c.stageRules()
	c.globalScope()
	c.defaultArgRules()
	c.fromRules()
	c.dispatchRules()
	if !cfg.ReturnAsError || len(c.out) == 0 {
		return c.out, nil
	}
	var rules []string
	for _, w := range c.out {
		if !slices.Contains(rules, w.Rule) {
			rules = append(rules, w.Rule)
		}
	}
	sort.Strings(rules)
	return c.out, &Error{File: opts.File, Err: fmt.Errorf("%w for rules: %s", ErrChecks, strings.Join(rules, ", "))}
}

// checkConfig is BUILDKIT_DOCKERFILE_CHECK when set, else the `# check=`
// directive.
func (d *Dockerfile) checkConfig(opts CheckOptions) (*linter.Config, error) {
	if v, ok := opts.BuildArgs["BUILDKIT_DOCKERFILE_CHECK"]; ok {
		cfg, err := linter.ParseLintOptions(v)
		if err != nil {
			return nil, fmt.Errorf("failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: %w", err)
		}
		return cfg, nil
	}
	v, _, loc, _ := bkparser.ParseDirective("check", d.data)
	cfg, err := linter.ParseLintOptions(v)
	if err != nil {
		return nil, &Error{File: opts.File, Line: firstLine(loc), Err: fmt.Errorf("failed to parse check options: %w", err)}
	}
	return cfg, nil
}

func (c *checker) warn(rule, description, url, msg string, loc []bkparser.Range) {
	w := Warning{Line: firstLine(loc), Rule: rule, Message: msg, Description: description, URL: url}
	w.EndLine = w.Line
	for _, r := range loc {
		w.EndLine = max(w.EndLine, r.Start.Line, r.End.Line)
	}
	c.out = append(c.out, w)
}

// parseRules are those BuildKit runs while it parses: NoEmptyContinuation,
// then, instruction by instruction, StageNameCasing, FromAsCasing,
// MaintainerDeprecated and InvalidDefinitionDescription (the instructions
// package runs these given a linter; the stages it returns again are
// dropped).
func (c *checker) parseRules() {
	for _, w := range c.d.res.Warnings {
		if w.URL == linter.RuleNoEmptyContinuation.URL && w.Location != nil {
			c.lint.Run(&linter.RuleNoEmptyContinuation, []bkparser.Range{*w.Location}, linter.RuleNoEmptyContinuation.Format())
		}
	}
	_, _, _ = instructions.Parse(c.d.res.AST, c.lint)
}

// reservedStageNames are names a stage should not take (ReservedStageName).
var reservedStageNames = []string{"context", "scratch"}

// stageRules: ReservedStageName, DuplicateStageName and
// ConsistentInstructionCasing, over every stage.
func (c *checker) stageRules() {
	seen := map[string]bool{}
	for _, st := range c.d.Stages {
		if st.Name == "" {
			continue
		}
		if slices.Contains(reservedStageNames, st.Name) {
			c.lint.Run(&linter.RuleReservedStageName, st.Location, linter.RuleReservedStageName.Format(st.Name))
		}
		if seen[st.Name] {
			c.lint.Run(&linter.RuleDuplicateStageName, st.Location, linter.RuleDuplicateStageName.Format(st.Name))
		}
		seen[st.Name] = true
	}
	// The casing of the majority of the instructions that are all lower
	// or all upper case (a tie is upper case); every instruction not in
	// that casing is reported.
	lower, upper := 0, 0
	count := func(name string) {
		switch name {
		case strings.ToLower(name):
			lower++
		case strings.ToUpper(name):
			upper++
		}
	}
	for _, st := range c.d.Stages {
		count(st.OrigCmd)
		for _, cmd := range st.Commands {
			count(cmd.Name())
		}
	}
	check := func(name string, loc []bkparser.Range) {
		want, fits := "uppercase", strings.ToUpper(name) == name
		if lower > upper {
			want, fits = "lowercase", strings.ToLower(name) == name
		}
		if !fits {
			c.lint.Run(&linter.RuleConsistentInstructionCasing, loc, linter.RuleConsistentInstructionCasing.Format(name, want))
		}
	}
	for _, st := range c.d.Stages {
		check(st.OrigCmd, st.Location)
		for _, cmd := range st.Commands {
			check(cmd.Name(), cmd.Location())
		}
	}
}

// automaticArgs are the global ARGs every build has (BuildKit's
// defaultArgs), each replaced by a build arg of the same name.
func (c *checker) automaticArgs() Vars {
	var g Vars
	p := PlatformArgs(c.opts.Platform)
	target := c.opts.Target
	if target == "" {
		if target = c.d.Stages[len(c.d.Stages)-1].Name; target == "" {
			target = "default"
		}
	}
	p = append(p, Var{"BUILDOSVERSION", ""}, Var{"TARGETOSVERSION", ""}, Var{"TARGETSTAGE", target})
	for _, v := range p {
		if o, ok := c.opts.BuildArgs[v.K]; ok {
			v.V = o
		}
		g = g.Set(v.K, v.V)
	}
	return g
}

// metaArgs adds the meta ARGs to g: a build arg's value (when buildArgs
// has it), else the default expanded in the scope so far.
func (c *checker) metaArgs(g Vars, buildArgs map[string]string) (Vars, bool) {
	for _, a := range c.d.MetaArgs {
		for _, kv := range a.Args {
			if v, ok := buildArgs[kv.Key]; ok {
				g = g.Set(kv.Key, v)
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, err := NewExpander(c.lex, g).Word(*kv.Value)
			if err != nil || CheckVars(g, Var{kv.Key, v}) != nil {
				return g, false
			}
			g = g.Set(kv.Key, v)
		}
	}
	return g, true
}

// globalScope is what FROM lines see: the automatic ARGs and the meta
// ARGs with the build args.
func (c *checker) globalScope() {
	c.global, _ = c.metaArgs(c.automaticArgs(), c.opts.BuildArgs)
	c.metaed = map[string]bool{}
	for _, a := range c.d.MetaArgs {
		for _, kv := range a.Args {
			c.metaed[kv.Key] = true
		}
	}
}

// defaultArgRules: InvalidDefaultArgInFrom, each FROM expanded with the
// meta ARGs' defaults (no build arg) must name an image.
func (c *checker) defaultArgRules() {
	g, ok := c.metaArgs(c.automaticArgs(), nil)
	if !ok {
		return
	}
	for _, st := range c.d.Stages {
		v, err := NewExpander(c.lex, g).Word(st.BaseName)
		if err != nil {
			return // as BuildKit: the build reports it
		}
		if !validReference(v) {
			c.lint.Run(&linter.RuleInvalidDefaultArgInFrom, st.Location, linter.RuleInvalidDefaultArgInFrom.Format(st.BaseName))
		}
	}
}

// fromRules: UndefinedArgInFrom for the name and --platform of every
// FROM, RedundantTargetPlatform and FromPlatformFlagConstDisallowed for
// its --platform.
func (c *checker) fromRules() {
	keys := c.global.Keys()
	for k := range c.metaed {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	undeclared := func(unset map[string]struct{}, loc []bkparser.Range, lint *linter.Linter) {
		for _, k := range sortedKeys(unset) {
			if slices.Contains(keys, k) {
				continue
			}
			hint, _ := suggest.Search(k, keys, true)
			lint.Run(&linter.RuleUndefinedArgInFrom, loc, linter.RuleUndefinedArgInFrom.Format(k, hint))
		}
	}
	for _, st := range c.d.Stages {
		lint := c.lint.WithMergedConfigFromComments(st.Comments)
		x := NewExpander(c.lex, c.global)
		res, err := x.matches(st.BaseName)
		undeclared(res.Unmatched, st.Location, lint)
		if err != nil || st.Platform == "" {
			continue
		}
		res, err = x.matches(st.Platform)
		undeclared(res.Unmatched, st.Location, lint)
		if err != nil {
			continue
		}
		// Exactly $TARGETPLATFORM, giving its value: the default anyway.
		if _, ok := res.Matched["TARGETPLATFORM"]; ok && len(res.Matched) == 1 && len(res.Unmatched) == 0 {
			if v, _ := c.global.Get("TARGETPLATFORM"); v == res.Result {
				lint.Run(&linter.RuleRedundantTargetPlatform, st.Location, linter.RuleRedundantTargetPlatform.Format(st.Platform))
			}
		}
		// A constant platform, unless the stage name says which one.
		if len(res.Matched) == 0 && len(res.Unmatched) == 0 {
			if p, ok := parsePlatform(res.Result); ok && !strings.Contains(st.Name, p.OS) && !strings.Contains(st.Name, p.Architecture) {
				lint.Run(&linter.RuleFromPlatformFlagConstDisallowed, st.Location, linter.RuleFromPlatformFlagConstDisallowed.Format(res.Result))
			}
		}
	}
}

// matches expands w within the bounds and says which names it used.
func (x *Expander) matches(w string) (shell.ProcessWordResult, error) {
	if err := x.check(w); err != nil {
		return shell.ProcessWordResult{}, err
	}
	res, err := x.lex.ProcessWordWithMatches(w, x.env)
	if err != nil {
		return res, err
	}
	return res, x.account(w, int64(len(res.Result)))
}

// Keys are the names of s, in order.
func (s Vars) Keys() []string {
	keys := make([]string, len(s))
	for i, e := range s {
		keys[i] = e.K
	}
	return keys
}

func sortedKeys(m map[string]struct{}) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
