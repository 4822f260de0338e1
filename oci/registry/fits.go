package registry

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// ImagePlatform is the platform an image config names ("linux/arm64/v8").
func ImagePlatform(cfg ocispec.Image) string {
	return FormatPlatform(ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant})
}

// Fits reports whether an image with config cfg suits the platform want
// (zero: any); a config without an OS is linux.
func Fits(cfg ocispec.Image, want ocispec.Platform) bool {
	if want.Architecture == "" {
		return true
	}
	os := cfg.OS
	if os == "" {
		os = "linux"
	}
	return MatchPlatform(want, ocispec.Platform{OS: os, Architecture: cfg.Architecture, Variant: cfg.Variant})
}

// Picker chooses the entry of an image index for want (oci.Store.ResolvePlatform);
// its error lists the platforms the index has and wraps oci.ErrNotFound.
func Picker(want ocispec.Platform) func([]ocispec.Descriptor) (ocispec.Descriptor, error) {
	return func(m []ocispec.Descriptor) (ocispec.Descriptor, error) {
		return pickManifest(ocispec.Index{Manifests: m}, want)
	}
}
