package registry

import (
	"encoding/json"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// FuzzManifest decodes a registry response as pull does: the media type
// sniffed from the body and Content-Type, an index resolved to a platform
// (itself parsed from a --platform string), a manifest decoded and its
// descriptors checked. No panic; what is accepted is what pull may use.
func FuzzManifest(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte, ctype, platform string) {
		want := DefaultPlatform()
		if platform != "" {
			p, err := ParsePlatform(platform)
			if err != nil {
				return
			}
			if FormatPlatform(p) == "" || strings.ContainsAny(p.OS+p.Architecture+p.Variant, "/ \t,") {
				t.Errorf("ParsePlatform(%q) = %+v", platform, p)
			}
			want = p
		}
		mt := sniffMediaType(raw, ctype)
		switch {
		case isIndexType(mt):
			var idx ocispec.Index
			if err := json.Unmarshal(raw, &idx); err != nil {
				return
			}
			child, err := pickManifest(idx, want)
			if err != nil {
				return
			}
			if child.Platform == nil || !matchPlatform(want, *child.Platform) {
				t.Errorf("picked %+v for %+v", child.Platform, want)
			}
			if err := checkDigest(child.Digest); err == nil && child.Digest.Validate() != nil {
				t.Errorf("checkDigest accepted %q", child.Digest)
			}
		case isManifestType(mt):
			var m ocispec.Manifest
			if err := json.Unmarshal(raw, &m); err != nil {
				return
			}
			if err := checkManifest(m); err != nil {
				return
			}
			for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
				if d.Digest.Validate() != nil || d.Digest.Algorithm() != "sha256" || d.Size < 0 {
					t.Errorf("checkManifest accepted %+v", d)
				}
			}
		}
	})
}
