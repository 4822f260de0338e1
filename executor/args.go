package executor

import (
	"runtime"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// proxyArgs are predefined: usable in RUN without an ARG line, and kept out
// of the image history (as Docker does).
var proxyArgs = []string{
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

func isProxyArg(k string) bool { return slices.Contains(proxyArgs, k) }

// platformArgs are the automatic platform ARGs of the global scope: TARGET*
// for target (zero: the host), BUILD* for the host.
func platformArgs(target ocispec.Platform) []kv {
	plat := "linux/" + runtime.GOARCH
	variant := ""
	if runtime.GOARCH == "arm" {
		variant = "v7"
		plat += "/v7"
	}
	tplat, tos, tarch, tvariant := plat, "linux", runtime.GOARCH, variant
	if target.Architecture != "" {
		tos, tarch, tvariant = target.OS, target.Architecture, target.Variant
		tplat = tos + "/" + tarch
		if tvariant != "" {
			tplat += "/" + tvariant
		}
	}
	return []kv{
		{"TARGETPLATFORM", tplat}, {"TARGETOS", tos}, {"TARGETARCH", tarch},
		{"TARGETVARIANT", tvariant}, {"BUILDPLATFORM", plat}, {"BUILDOS", "linux"},
		{"BUILDARCH", runtime.GOARCH}, {"BUILDVARIANT", variant},
	}
}

type kv struct{ k, v string }

// scope is an ordered set of variables (later set wins, order kept).
type scope []kv

func (s scope) get(k string) (string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i].k == k {
			return s[i].v, true
		}
	}
	return "", false
}

func (s scope) set(k, v string) scope {
	for i := range s {
		if s[i].k == k {
			out := slices.Clone(s)
			out[i].v = v
			return out
		}
	}
	return append(slices.Clone(s), kv{k, v})
}

func (s scope) env() []string {
	out := make([]string, 0, len(s))
	for _, e := range s {
		out = append(out, e.k+"="+e.v)
	}
	return out
}

func (s scope) getter() shell.EnvGetter { return shell.EnvsFromSlice(s.env()) }

func (s scope) toMap() map[string]string {
	if len(s) == 0 {
		return nil
	}
	m := make(map[string]string, len(s))
	for _, e := range s {
		m[e.k] = e.v
	}
	return m
}

// envScope parses KEY=VALUE strings (image Config.Env) into a scope.
func envScope(env []string) scope {
	var s scope
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		s = s.set(k, v)
	}
	return s
}

// setEnv replaces or appends k in a KEY=VALUE list.
func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			out := slices.Clone(env)
			out[i] = k + "=" + v
			return out
		}
	}
	return append(slices.Clone(env), k+"="+v)
}
