package parser

import (
	"runtime"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ProxyArgs are predefined: usable in RUN without an ARG line, and kept out
// of the image history (as Docker does).
var ProxyArgs = []string{
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
}

// IsProxyArg reports whether k is a predefined proxy ARG.
func IsProxyArg(k string) bool { return slices.Contains(ProxyArgs, k) }

// PlatformArgs are the automatic platform ARGs of the global scope: TARGET*
// for target (zero: the host), BUILD* for the host.
func PlatformArgs(target ocispec.Platform) []Var {
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
	return []Var{
		{"TARGETPLATFORM", tplat}, {"TARGETOS", tos}, {"TARGETARCH", tarch},
		{"TARGETVARIANT", tvariant}, {"BUILDPLATFORM", plat}, {"BUILDOS", "linux"},
		{"BUILDARCH", runtime.GOARCH}, {"BUILDVARIANT", variant},
	}
}

// Var is one variable: an ARG or ENV name and its value.
type Var struct{ K, V string }

// Vars is an ordered set of variables (a later Set wins, order kept): the
// ARGs and ENVs a word of the Dockerfile sees.
type Vars []Var

// Get returns the value of k.
func (s Vars) Get(k string) (string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i].K == k {
			return s[i].V, true
		}
	}
	return "", false
}

// Set returns s with k set to v (s itself is not changed).
func (s Vars) Set(k, v string) Vars {
	for i := range s {
		if s[i].K == k {
			out := slices.Clone(s)
			out[i].V = v
			return out
		}
	}
	return append(slices.Clone(s), Var{k, v})
}

// Env is s as KEY=VALUE strings.
func (s Vars) Env() []string {
	out := make([]string, 0, len(s))
	for _, e := range s {
		out = append(out, e.K+"="+e.V)
	}
	return out
}

// Getter is s for shell.Lex.
func (s Vars) Getter() shell.EnvGetter { return shell.EnvsFromSlice(s.Env()) }

// Map is s as a map (nil when empty).
func (s Vars) Map() map[string]string {
	if len(s) == 0 {
		return nil
	}
	m := make(map[string]string, len(s))
	for _, e := range s {
		m[e.K] = e.V
	}
	return m
}

// VarsFromEnv parses KEY=VALUE strings (an image's Config.Env).
func VarsFromEnv(env []string) Vars {
	var s Vars
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		s = s.Set(k, v)
	}
	return s
}

// SetEnv replaces or appends k in a KEY=VALUE list.
func SetEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			out := slices.Clone(env)
			out[i] = k + "=" + v
			return out
		}
	}
	return append(slices.Clone(env), k+"="+v)
}
