package parser

import (
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"

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
var referenceRe = sync.OnceValue(func() *regexp.Regexp {
	domainComp := `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	host := `(?:` + domainComp + `(?:\.` + domainComp + `)*|\[[a-fA-F0-9:]+\])`
	domain := host + `(?::[0-9]+)?`
	pathComp := `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
	name := `(?:` + domain + `/)?` + pathComp + `(?:/` + pathComp + `)*`
	tag := `[\w][\w.-]{0,127}`
	dgst := `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	return regexp.MustCompile(`^(` + name + `)(?::` + tag + `)?(?:@(` + dgst + `))?$`)
})

var hex64 = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-f0-9]{64}$`) })

// validReference reports whether s is an image reference Docker accepts
// (ParseNormalizedNamed): the grammar (whose path components are lower
// case: an upper case first component can only be a registry host), a
// name of at most 255 characters, no bare 64-hex ID, and sha256/sha512
// digests of their size.
func validReference(s string) bool {
	if hex64().MatchString(s) {
		return false
	}
	m := referenceRe().FindStringSubmatch(s)
	if m == nil || len(m[1]) > 255 {
		return false
	}
	if alg, hex, ok := strings.Cut(m[2], ":"); ok {
		switch alg {
		case "sha256":
			return len(hex) == 64
		case "sha512":
			return len(hex) == 128
		}
	}
	return true
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
