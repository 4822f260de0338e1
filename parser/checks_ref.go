package parser

import (
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/builderdev/builder/internal/refgrammar"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image references and platforms as the build checks read them (BuildKit
// uses distribution/reference and containerd/platforms; these follow
// their documented grammars, without the dependencies).

// The reference grammar of the distribution spec:
//
//	reference        := name [ ":" tag ] [ "@" digest ]
//	name             := [domain '/'] path-component ['/' path-component]*
//	domain           := host [':' port]; host: domain-component ['.' domain-component]* | '[' IPv6 ']'
//	domain-component := /[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]/
//	path-component   := /[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*/
//	tag              := /[\w][\w.-]{0,127}/
//	digest           := /[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}/
//
// validReference reports whether s is an image reference Docker accepts
// (ParseNormalizedNamed): the grammar (whose path components are lower
// case: an upper case first component can only be a registry host), a
// name of at most 255 characters, no bare 64-hex ID, and sha256/sha512
// digests of their size. A hand scanner of the grammar (checked against
// its regular expression in the tests): compiling that expression was a
// tenth of a fully cached build.
func validReference(s string) bool {
	if len(s) == 64 && isHex(s, false) {
		return false
	}
	rest, dgst, hasDigest := strings.Cut(s, "@")
	if hasDigest && !validDigest(dgst) {
		return false
	}
	name := rest
	last := name[strings.LastIndexByte(name, '/')+1:]
	if i := strings.IndexByte(last, ':'); i >= 0 {
		name = rest[:len(rest)-len(last)+i]
		if !refgrammar.ValidTag(last[i+1:]) {
			return false
		}
	}
	if len(name) > 255 {
		return false
	}
	comps := strings.Split(name, "/")
	for i, c := range comps {
		if !refgrammar.ValidPathComponent(c) && (i > 0 || len(comps) == 1 || !refgrammar.ValidDomain(c)) {
			return false
		}
	}
	if alg, hex, ok := strings.Cut(dgst, ":"); ok {
		switch alg {
		case "sha256":
			return len(hex) == 64
		case "sha512":
			return len(hex) == 128
		}
	}
	return true
}

// isHex: s is hex digits, lower case only unless upper.
func isHex(s string, upper bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || upper && 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// validDigest: an algorithm ([A-Za-z][A-Za-z0-9]* joined by one of
// "-_+."), ":" and at least 32 hex digits.
func validDigest(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	if !ok || len(hex) < 32 || !isHex(hex, true) || alg == "" {
		return false
	}
	atStart := true
	for i := 0; i < len(alg); i++ {
		c := alg[i]
		switch {
		case 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z':
			atStart = false
		case '0' <= c && c <= '9':
			if atStart {
				return false
			}
		case c == '-' || c == '_' || c == '+' || c == '.':
			if atStart {
				return false
			}
			atStart = true
		default:
			return false
		}
	}
	return !atStart
}

var (
	knownOS    = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos"}
	knownArch  = []string{"386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64", "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "ppc64", "ppc64le", "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm"}
	platformRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]+$`) })
)

// parsePlatform reads an "os[/arch[/variant]]" or "arch" specifier,
// normalized (x86_64 is amd64, aarch64 arm64, ...); ok false when it is
// not one.
func parsePlatform(s string) (ocispec.Platform, bool) {
	parts := strings.Split(s, "/")
	for _, p := range parts {
		if !platformRe().MatchString(p) {
			return ocispec.Platform{}, false
		}
	}
	var p ocispec.Platform
	switch len(parts) {
	case 1:
		if os := normalizeOS(parts[0]); slices.Contains(knownOS, os) {
			p = hostPlatform()
			p.OS = os
			return p, true
		}
		p.Architecture, p.Variant = normalizeArch(parts[0], "")
		if !slices.Contains(knownArch, p.Architecture) {
			return p, false
		}
		p.OS = runtime.GOOS
	case 2:
		p.OS = normalizeOS(parts[0])
		p.Architecture, p.Variant = normalizeArch(parts[1], "")
	case 3:
		p.OS = normalizeOS(parts[0])
		p.Architecture, p.Variant = normalizeArch(parts[1], parts[2])
	default:
		return p, false
	}
	return p, true
}

func normalizeOS(os string) string {
	os = strings.ToLower(os)
	if os == "macos" {
		return "darwin"
	}
	return os
}

// normalizeArch gives the canonical architecture and variant.
func normalizeArch(arch, variant string) (string, string) {
	arch, variant = strings.ToLower(arch), strings.ToLower(variant)
	switch arch {
	case "i386":
		return "386", ""
	case "x86_64", "x86-64", "amd64":
		if variant == "v1" {
			variant = ""
		}
		return "amd64", variant
	case "aarch64", "arm64":
		if variant == "8" || variant == "v8" || variant == "v8.0" {
			variant = ""
		}
		return "arm64", variant
	case "armhf":
		return "arm", "v7"
	case "armel":
		return "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			variant = "v7"
		case "5", "6", "8":
			variant = "v" + variant
		}
		return "arm", variant
	}
	return arch, variant
}

// hostPlatform is the platform a build targets by default.
func hostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

// formatPlatform prints a platform normalized: "linux/arm/v7".
func formatPlatform(p ocispec.Platform) string {
	p.Architecture, p.Variant = normalizeArch(p.Architecture, p.Variant)
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
