package registry

import (
	"fmt"
	"slices"
	"strings"

	"github.com/builderdev/builder/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// normalizePlatform maps the usual aliases to GOARCH names and drops
// default variants (arm64/v8, amd64/v1), as containerd's platforms does.
func normalizePlatform(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	if p.Variant != "" && !strings.HasPrefix(p.Variant, "v") {
		p.Variant = "v" + p.Variant
	}
	switch p.Architecture {
	case "x86_64", "x86-64", "amd64":
		p.Architecture = "amd64"
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		if p.Variant == "v8" || p.Variant == "v8.0" {
			p.Variant = ""
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "i386", "i686":
		p.Architecture = "386"
	}
	return p
}

// MatchPlatform reports whether an image for have runs on want (aliases
// and default variants normalized; an empty variant in want accepts any).
func MatchPlatform(want, have ocispec.Platform) bool { return matchPlatform(want, have) }

// matchPlatform reports whether have satisfies want. An empty variant in
// want accepts any variant.
func matchPlatform(want, have ocispec.Platform) bool {
	want, have = normalizePlatform(want), normalizePlatform(have)
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	v := have.Variant
	if v == "" && have.Architecture == "arm" {
		v = "v7"
	}
	return v == want.Variant
}

// pickManifest returns the entry of an index for want. The error lists the
// platforms the index has.
func pickManifest(idx ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, error) {
	var avail []string
	for _, m := range idx.Manifests {
		p := m.Platform
		if p == nil || p.OS == "unknown" || p.Architecture == "unknown" {
			continue // attestation manifests and the like
		}
		if matchPlatform(want, *p) {
			return m, nil
		}
		if s := FormatPlatform(normalizePlatform(*p)); !slices.Contains(avail, s) {
			avail = append(avail, s)
		}
	}
	list := strings.Join(avail, ", ")
	if list == "" {
		list = "none"
	}
	return ocispec.Descriptor{}, fmt.Errorf("no image for platform %s (available: %s): %w",
		FormatPlatform(want), list, oci.ErrNotFound)
}
