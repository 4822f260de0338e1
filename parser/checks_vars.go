package parser

import (
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	bkparser "github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/suggest"
	"github.com/moby/patternmatcher"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// scope is a stage's state as the rules on its instructions see it,
// instruction after instruction: what BuildKit's dispatchState holds.
type scope struct {
	known      bool     // the base image's ENV is known: UndefinedVar can be told
	env        Vars     // what $VARS see: the image ENV, ARG values, ENV values
	declared   []string // ARGs declared in the stage (or the one it is built on)
	shell      []string // SHELL of the image
	os         string   // of the stage's platform
	workdirSet bool     // a WORKDIR of this Dockerfile ran in the stage
	// The last CMD, ENTRYPOINT and HEALTHCHECK of the stage (not of the
	// one it is built on): MultipleInstructionsDisallowed.
	cmd, entrypoint, healthcheck []bkparser.Range
}

// nonEnvArgs are ARGs BuildKit never puts in the environment.
var nonEnvArgs = []string{"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"}

// dispatchRules walk the instructions of the stages the build runs, each
// stage starting from the scope of its base: InvalidBaseImagePlatform,
// then per instruction UndefinedVar, JSONArgsRecommended,
// LegacyKeyValueFormat, SecretsUsedInArgOrEnv,
// MultipleInstructionsDisallowed, WorkdirRelativePath, ExposeProtoCasing,
// ExposeInvalidFormat and CopyIgnoredFile.
func (c *checker) dispatchRules() {
	run := c.opts.Stages
	if run == nil {
		for i := range c.d.Stages {
			run = append(run, i)
		}
	}
	run = slices.Sorted(slices.Values(run))
	bases := make([]*scope, len(c.d.Stages))
	for _, i := range run {
		bases[i] = c.baseScope(i)
	}
	ignore := c.ignoreMatcher()
	final := make([]*scope, len(c.d.Stages))
	for _, i := range run {
		sc := bases[i]
		if sc == nil { // built on a stage: its final scope
			sc = &scope{os: "linux"}
			if p := c.baseStage(i); p >= 0 && final[p] != nil {
				parent := final[p]
				sc = &scope{known: parent.known, env: slices.Clone(parent.env), declared: slices.Clone(parent.declared),
					shell: parent.shell, os: parent.os, workdirSet: parent.workdirSet}
			}
		}
		// ONBUILD triggers run first, located at the FROM line: the base
		// image's, or the ONBUILD instructions of the stage it is built on.
		st := c.d.Stages[i]
		var triggers []string
		if p := c.baseStage(i); p >= 0 {
			for _, cmd := range c.d.Stages[p].Commands {
				if ob, ok := cmd.(*instructions.OnbuildCommand); ok {
					triggers = append(triggers, ob.Expression)
				}
			}
		} else {
			triggers = c.opts.Bases[i].OnBuild
		}
		if cmds, err := Triggers(triggers); err == nil {
			for _, cmd := range cmds {
				c.dispatch(sc, cmd, st.Location, ignore)
			}
		}
		for _, cmd := range st.Commands {
			c.dispatch(sc, cmd, cmd.Location(), ignore)
		}
		final[i] = sc
	}
}

// baseStage is the index of the earlier stage stage i is built on, or -1.
func (c *checker) baseStage(i int) int {
	base, err := NewExpander(c.lex, c.global).Word(c.d.Stages[i].BaseName)
	if err != nil {
		return -1
	}
	found := -1
	for j := range i {
		if n := c.d.Stages[j].Name; n != "" && n == base { // as the engine: FROM names it in lower case
			found = j
		}
	}
	return found
}

// baseScope is the scope a stage starts with when it is built on scratch
// or an image (InvalidBaseImagePlatform checked), nil when on a stage.
func (c *checker) baseScope(i int) *scope {
	if c.baseStage(i) >= 0 {
		return nil
	}
	st := c.d.Stages[i]
	base, _ := NewExpander(c.lex, c.global).Word(st.BaseName)
	if strings.EqualFold(base, "scratch") { // as the engine
		return &scope{known: true, env: Vars{{"PATH", defaultPath}}, os: platformOS(c.opts.Platform)}
	}
	img, ok := c.opts.Bases[i]
	if !ok {
		return &scope{os: platformOS(c.opts.Platform)}
	}
	sc := &scope{known: true, env: VarsFromEnv(img.Env), shell: img.Shell, os: platformOS(img.Platform)}
	if _, ok := sc.env.Get("PATH"); !ok && sc.os != "windows" {
		sc.env = sc.env.Set("PATH", defaultPath)
	}
	want := img.Wanted
	if want.Architecture == "" {
		want = hostPlatform()
	}
	got := img.Platform
	if got.OS == "" {
		got.OS = "linux"
	}
	if !img.Empty && (want.OS != got.OS || want.Architecture != got.Architecture) {
		c.lint.Run(&linter.RuleInvalidBaseImagePlatform, st.Location,
			linter.RuleInvalidBaseImagePlatform.Format(base, formatPlatform(want), formatPlatform(got)))
	}
	return sc
}

// defaultPath is the PATH of a stage whose image has none (BuildKit's).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func platformOS(p ocispec.Platform) string {
	if p.OS == "" {
		return "linux"
	}
	return p.OS
}

// dispatch checks one instruction, located at loc, and applies it to sc.
func (c *checker) dispatch(sc *scope, cmd instructions.Command, loc []bkparser.Range, ignore *patternmatcher.PatternMatcher) {
	lint := c.lint.WithMergedConfigFromComments(cmd.Comments())
	x := NewExpander(c.lex, sc.env)
	// expand is a word as the instruction will see it, reporting the
	// names it uses that are neither set nor declared.
	expand := func(w string) (string, error) {
		v, unset, err := x.word(w)
		if err == nil {
			c.undefined(sc, unset, loc, lint)
		}
		return v, err
	}
	// The words BuildKit expands, left as they are (the engine expands
	// them when it runs the instruction).
	keep := func(w string) (string, error) {
		_, err := expand(w)
		return w, err
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if _, isArg := cmd.(*instructions.ArgCommand); !isArg && ex.Expand(keep) != nil {
			return
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		raw := shell.NewLex('\\')
		raw.SkipProcessQuotes = true
		x.SetLex(raw)
		err := ex.ExpandRaw(keep)
		x.SetLex(c.lex)
		if err != nil {
			return
		}
	}
	// Values below are expanded silently: Expand above reported them.
	quiet := func(w string) string {
		v, _, err := NewExpander(c.lex, sc.env).word(w)
		if err != nil {
			return w
		}
		return v
	}
	name := cmd.Name()
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		set := make([]Var, 0, len(cmd.Env))
		for _, e := range cmd.Env {
			if e.NoDelim {
				lint.Run(&linter.RuleLegacyKeyValueFormat, loc, linter.RuleLegacyKeyValueFormat.Format(name))
			}
			k := quiet(e.Key)
			c.secret(lint, "ENV", k, loc)
			set = append(set, Var{k, quiet(e.Value)})
		}
		if CheckVars(sc.env, set...) != nil {
			sc.known = false
			return
		}
		for _, v := range set {
			sc.env = sc.env.Set(v.K, v.V)
		}
	case *instructions.LabelCommand:
		for _, l := range cmd.Labels {
			if l.NoDelim {
				lint.Run(&linter.RuleLegacyKeyValueFormat, loc, linter.RuleLegacyKeyValueFormat.Format(name))
			}
		}
	case *instructions.ArgCommand:
		c.arg(sc, cmd, loc, lint)
	case *instructions.CmdCommand:
		usedOnce(lint, &sc.cmd, name, loc)
		c.shellForm(sc, lint, cmd.PrependShell, name, loc)
	case *instructions.EntrypointCommand:
		usedOnce(lint, &sc.entrypoint, name, loc)
		c.shellForm(sc, lint, cmd.PrependShell, name, loc)
	case *instructions.HealthCheckCommand:
		usedOnce(lint, &sc.healthcheck, name, loc)
	case *instructions.ShellCommand:
		sc.shell = cmd.Shell
	case *instructions.WorkdirCommand:
		p := quiet(cmd.Path)
		if !sc.workdirSet && !isAbs(p, sc.os) {
			lint.Run(&linter.RuleWorkdirRelativePath, loc, linter.RuleWorkdirRelativePath.Format(p))
		}
		sc.workdirSet = true
	case *instructions.ExposeCommand:
		for _, p := range cmd.Ports {
			words, err := x.Words(p)
			if err != nil {
				return
			}
			for _, w := range words {
				exposeRules(lint, w, loc)
			}
		}
	case *instructions.CopyCommand:
		if cmd.From == "" {
			for _, src := range cmd.SourcePaths {
				copyIgnored(lint, ignore, "Copy", quiet(src), loc)
			}
		}
	case *instructions.AddCommand:
		for _, src := range cmd.SourcePaths {
			if src = quiet(src); !IsURL(src) && !IsGitURL(src) {
				copyIgnored(lint, ignore, "Add", src, loc)
			}
		}
	}
}

// undefined reports UndefinedVar for names neither set nor declared
// (declared ARGs without a value are not reported).
func (c *checker) undefined(sc *scope, unset map[string]struct{}, loc []bkparser.Range, lint *linter.Linter) {
	if !sc.known {
		return
	}
	for _, k := range sortedKeys(unset) {
		if slices.Contains(sc.declared, k) || slices.Contains(nonEnvArgs, k) {
			continue
		}
		hint, _ := suggest.Search(k, sc.env.Keys(), runtime.GOOS != "windows")
		lint.Run(&linter.RuleUndefinedVar, loc, linter.RuleUndefinedVar.Format(k, hint))
	}
}

// arg declares the ARGs of cmd in sc as BuildKit's dispatchArg does: a
// build arg's value, else the default (expanded in the scope so far:
// UndefinedVar), else the global ARG of that name.
func (c *checker) arg(sc *scope, cmd *instructions.ArgCommand, loc []bkparser.Range, lint *linter.Linter) {
	for _, a := range cmd.Args {
		c.secret(lint, "ARG", a.Key, loc)
		var val *string
		if v, ok := c.opts.BuildArgs[a.Key]; ok {
			val = &v
		} else if a.Value != nil {
			v, unset, err := NewExpander(c.lex, sc.env).word(*a.Value)
			if err != nil {
				sc.known = false
				return
			}
			c.undefined(sc, unset, loc, lint)
			val = &v
		} else if v, ok := c.global.Get(a.Key); ok {
			val = &v
		}
		if val != nil && !slices.Contains(nonEnvArgs, a.Key) {
			if CheckVars(sc.env, Var{a.Key, *val}) != nil {
				sc.known = false
				return
			}
			sc.env = sc.env.Set(a.Key, *val)
		}
		sc.declared = append(sc.declared, a.Key)
	}
}

// shellForm: JSONArgsRecommended for a CMD or ENTRYPOINT in shell form
// run by the default shell.
func (c *checker) shellForm(sc *scope, lint *linter.Linter, shellForm bool, name string, loc []bkparser.Range) {
	if shellForm && len(sc.shell) == 0 {
		lint.Run(&linter.RuleJSONArgsRecommended, loc, linter.RuleJSONArgsRecommended.Format(name))
	}
}

// usedOnce: MultipleInstructionsDisallowed, at the earlier instruction
// (the one that has no effect).
func usedOnce(lint *linter.Linter, prev *[]bkparser.Range, name string, loc []bkparser.Range) {
	if *prev != nil {
		lint.Run(&linter.RuleMultipleInstructionsDisallowed, *prev, linter.RuleMultipleInstructionsDisallowed.Format(name))
	}
	*prev = loc
}

// secretTokens and publicTokens are the words of a name, between
// underscores or at its ends, that make SecretsUsedInArgOrEnv report it
// (unless one of publicTokens is there too), case-insensitive.
var (
	secretTokens = []string{"apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"}
	publicTokens = []string{"public", "file", "version"}
)

func (c *checker) secret(lint *linter.Linter, instruction, key string, loc []bkparser.Range) {
	hasWord := func(words []string) bool {
		for _, part := range strings.Split(strings.ToLower(key), "_") {
			if slices.Contains(words, part) {
				return true
			}
		}
		return false
	}
	if hasWord(secretTokens) && !hasWord(publicTokens) {
		lint.Run(&linter.RuleSecretsUsedInArgOrEnv, loc, linter.RuleSecretsUsedInArgOrEnv.Format(instruction, key))
	}
}

// isAbs: an absolute path for a stage of that OS (Windows: with or without
// a drive letter).
func isAbs(p, os string) bool {
	if os != "windows" {
		return path.IsAbs(p)
	}
	p = strings.ReplaceAll(p, "/", `\`)
	if len(p) >= 2 && p[1] == ':' {
		p = p[2:]
	}
	return strings.HasPrefix(p, `\`)
}

// exposeRules: ExposeProtoCasing and ExposeInvalidFormat for one EXPOSE
// word ("[ip:][hostport:]port[-end][/proto]"); a word the build refuses
// (no port, unknown proto) is left to it.
func exposeRules(lint *linter.Linter, spec string, loc []bkparser.Range) {
	parts := strings.Split(spec, ":")
	n := len(parts)
	var ip, hostPort string
	switch {
	case n == 2:
		hostPort = parts[0]
	case n > 2:
		ip, hostPort = strings.Join(parts[:n-2], ":"), parts[n-2]
	}
	port, proto, _ := strings.Cut(parts[n-1], "/")
	if port == "" {
		return
	}
	switch strings.ToLower(proto) {
	case "", "tcp", "udp", "sctp":
	default:
		return
	}
	if proto != strings.ToLower(proto) {
		lint.Run(&linter.RuleExposeProtoCasing, loc, linter.RuleExposeProtoCasing.Format(spec))
	}
	if ip != "" || hostPort != "" {
		lint.Run(&linter.RuleExposeInvalidFormat, loc, linter.RuleExposeInvalidFormat.Format(spec))
	}
}

// ignoreMatcher compiles the .dockerignore patterns for CopyIgnoredFile;
// nil when there are none, or when some re-include files ("!x"): whether
// a source is excluded cannot be told from its name then.
func (c *checker) ignoreMatcher() *patternmatcher.PatternMatcher {
	if len(c.opts.Ignore) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(c.opts.Ignore)
	if err != nil || pm.Exclusions() {
		return nil
	}
	return pm
}

// copyIgnored: CopyIgnoredFile for a source of the context that the
// .dockerignore excludes, itself or through a parent. The context root
// ("." or "/") counts only when a pattern excludes everything ("*").
func copyIgnored(lint *linter.Linter, pm *patternmatcher.PatternMatcher, verb, src string, loc []bkparser.Range) {
	if pm == nil {
		return
	}
	src = filepath.ToSlash(filepath.Clean(src))
	if src == "." || src == "/" {
		all := false
		for _, p := range pm.Patterns() {
			switch p.String() {
			case "*", "**", "**/*":
				all = all || !p.Exclusion()
			}
		}
		if !all {
			return
		}
	}
	if ok, err := pm.MatchesOrParentMatches(src); err == nil && ok {
		lint.Run(&linter.RuleCopyIgnoredFile, loc, linter.RuleCopyIgnoredFile.Format(verb, src))
	}
}
