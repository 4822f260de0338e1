package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/builderdev/builder/parser"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// dispatch applies one instruction to st. Every error carries the line.
func (bd *build) dispatch(ctx context.Context, s *stage, st *imageState, cmd instructions.Command, step *int) error {
	st.line = parser.Line(cmd)
	st.origin = fmt.Sprintf("%s:%d", bd.file, st.line)
	env, err := bd.expandCmd(st, cmd)
	if err != nil {
		return bd.errAt(cmd, err)
	}
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		msg := "ENV"
		for _, e := range c.Env {
			st.img.Config.Env = parser.SetEnv(st.img.Config.Env, e.Key, e.Value)
			delete(st.argWins, e.Key)
			msg += " " + e.Key + "=" + e.Value
		}
		st.addHistory(msg)
	case *instructions.LabelCommand:
		msg := "LABEL"
		if st.img.Config.Labels == nil {
			st.img.Config.Labels = map[string]string{}
		}
		for _, l := range c.Labels {
			st.img.Config.Labels[l.Key] = l.Value
			msg += " " + l.Key + "=" + l.Value
		}
		st.addHistory(msg)
	case *instructions.MaintainerCommand:
		st.img.Author = c.Maintainer
		st.addHistory("MAINTAINER " + c.Maintainer)
	case *instructions.ExposeCommand:
		err = bd.expose(st, c, env)
	case *instructions.UserCommand:
		st.img.Config.User = c.User
		st.addHistory("USER " + c.User)
	case *instructions.VolumeCommand:
		if st.img.Config.Volumes == nil {
			st.img.Config.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return bd.errAt(cmd, errors.New("VOLUME specified can not be an empty string"))
			}
			st.img.Config.Volumes[v] = struct{}{}
		}
		st.addHistory(fmt.Sprintf("VOLUME %v", c.Volumes))
	case *instructions.StopSignalCommand:
		if err = parser.CheckSignal(c.Signal); err == nil {
			st.img.Config.StopSignal = c.Signal
			st.addHistory("STOPSIGNAL " + c.Signal)
		}
	case *instructions.ShellCommand:
		st.img.Config.Shell = slices.Clone(c.Shell)
		st.addHistory(fmt.Sprintf("SHELL %v", c.Shell))
	case *instructions.CmdCommand:
		args := c.CmdLine
		if c.PrependShell {
			args = withShell(st, args)
		}
		st.img.Config.Cmd = args
		// BuildKit's dispatchCmd sets ArgsEscaped on every CMD, shell or
		// exec form; nothing else (ENTRYPOINT, RUN) sets or clears it,
		// so it also comes down from a base image or stage.
		st.img.Config.ArgsEscaped = true //nolint:staticcheck // deprecated in OCI, kept by Docker and BuildKit
		st.cmdSet = true
		st.addHistory(fmt.Sprintf("CMD %q", args))
	case *instructions.EntrypointCommand:
		args := c.CmdLine
		if c.PrependShell {
			args = withShell(st, args)
		}
		st.img.Config.Entrypoint = args
		if !st.cmdSet {
			st.img.Config.Cmd = nil
		}
		st.addHistory(fmt.Sprintf("ENTRYPOINT %q", args))
	case *instructions.HealthCheckCommand:
		h := *c.Health
		st.img.Config.Healthcheck = &dockerspec.HealthcheckConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
		st.addHistory(fmt.Sprintf("HEALTHCHECK %+v", *st.img.Config.Healthcheck))
	case *instructions.OnbuildCommand:
		st.img.Config.OnBuild = append(st.img.Config.OnBuild, c.Expression)
	case *instructions.ArgCommand:
		err = bd.arg(st, c)
	case *instructions.WorkdirCommand:
		err = bd.workdir(ctx, s, st, c, step)
	case *instructions.CopyCommand:
		err = bd.copy(ctx, s, st, c, step)
	case *instructions.AddCommand:
		err = bd.add(ctx, s, st, c, step)
	case *instructions.RunCommand:
		err = bd.run(ctx, s, st, c, step)
	default:
		err = fmt.Errorf("instruction %s is not supported", strings.ToUpper(cmd.Name()))
	}
	if err != nil {
		return bd.errAt(cmd, err)
	}
	return nil
}

// expandCmd expands the words of cmd in place, within the expansion
// bounds (expand.go), and returns the parser.Vars they saw. ARG values are
// expanded as arg sets them.
func (bd *build) expandCmd(st *imageState, cmd instructions.Command) (parser.Vars, error) {
	env := st.expandEnv()
	x := parser.NewExpander(bd.lex(), env)
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if _, isArg := cmd.(*instructions.ArgCommand); !isArg {
			if err := ex.Expand(x.Word); err != nil {
				return nil, err
			}
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Heredoc bodies (COPY <<EOF): BuildKit expands them with a '\'
		// lexer that keeps quotes, whatever the escape directive says.
		raw := shell.NewLex('\\')
		raw.SkipProcessQuotes = true
		x.SetLex(raw)
		if err := ex.ExpandRaw(x.Word); err != nil {
			return nil, err
		}
	}
	if c, ok := cmd.(*instructions.EnvCommand); ok && len(c.Env) > 0 {
		set := make([]parser.Var, 0, len(c.Env))
		for _, e := range c.Env {
			set = append(set, parser.Var{K: e.Key, V: e.Value})
		}
		if err := parser.CheckVars(env, set...); err != nil {
			return nil, err
		}
	}
	return env, nil
}

// expandEnv is what $VARS see: the image ENV and the ARGs in parser.Vars, the
// later of the two winning for a name both set (BuildKit's build state).
func (st *imageState) expandEnv() parser.Vars {
	out := slices.Clone(st.args)
	for _, e := range parser.VarsFromEnv(st.img.Config.Env) {
		if !st.argWins[e.K] {
			out = out.Set(e.K, e.V)
		}
	}
	return out
}

func withShell(st *imageState, args []string) []string {
	sh := st.img.Config.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(sh), strings.Join(args, " "))
}

// arg declares ARGs in the stage parser.Vars (BuildKit's dispatchArg rules).
func (bd *build) arg(st *imageState, c *instructions.ArgCommand) error {
	var commit []string
	for _, a := range c.Args {
		var val *string
		if v, ok := bd.opts.BuildArgs[a.Key]; ok {
			val = &v
		} else if a.Value != nil {
			v, err := parser.NewExpander(bd.lex(), st.expandEnv()).Word(*a.Value)
			if err != nil {
				return err
			}
			val = &v
		} else if v, ok := bd.global.Get(a.Key); ok {
			val = &v
		}
		bd.markUsed(a.Key)
		s := a.Key
		if val != nil {
			if err := parser.CheckVars(st.expandEnv(), parser.Var{K: a.Key, V: *val}); err != nil {
				return err
			}
			st.args = st.args.Set(a.Key, *val)
			if st.argWins == nil {
				st.argWins = map[string]bool{}
			}
			st.argWins[a.Key] = true // set after any earlier ENV of that name
			s += "=" + *val
		}
		// Without a value the ARG stays unset: ${A-x} gives x, RUN has no A.
		st.argDefs = append(st.argDefs, parser.Var{K: a.Key, V: derefOr(val, "")})
		commit = append(commit, s)
	}
	st.addHistory("ARG " + strings.Join(commit, " "))
	return nil
}

func derefOr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

func (bd *build) expose(st *imageState, c *instructions.ExposeCommand, env parser.Vars) error {
	var ports []string
	x := parser.NewExpander(bd.lex(), env)
	for _, p := range c.Ports {
		words, err := x.Words(p)
		if err != nil {
			return err
		}
		for _, w := range words {
			ps, err := parser.ParsePorts(w)
			if err != nil {
				return err
			}
			ports = append(ports, ps...)
		}
	}
	if st.img.Config.ExposedPorts == nil {
		st.img.Config.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range ports {
		st.img.Config.ExposedPorts[p] = struct{}{}
	}
	st.addHistory(fmt.Sprintf("EXPOSE %v", ports))
	return nil
}
