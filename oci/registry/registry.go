// Package registry pulls images from and pushes images to OCI/Docker
// registries, and manages registry logins in the docker config file.
//
// It is the only importer of go-containerregistry, which it uses for
// transport and auth only (reference parsing, the /v2/ ping, basic and
// bearer token auth); credentials come from the docker config file and its
// credential helpers (docker/cli's config package). The registry protocol
// itself is spoken here, so
// every blob is streamed in constant memory straight into (or out of) the
// oci.Store, and no ggcr type leaves the package.
//
// Lifecycle of a pull: parse ref -> ping and authenticate -> GET the
// manifest (an index is resolved to Options.Platform) -> fetch each missing
// blob into a store ingest, verified by digest and size on Commit -> write
// the manifest blob -> tag ref. A failed pull leaves no partial blob: an
// ingest that was not committed is removed.
//
// Lifecycle of a push: HEAD each blob -> mount it from another repository
// of the same registry known to hold it, or upload it (POST, PATCH, PUT) ->
// PUT the manifest last, so a reader never sees a manifest whose blobs are
// missing.
//
// Transient failures (5xx, 429 with Retry-After, connection resets and
// refusals) are retried with capped exponential backoff, at most
// maxAttempts times per operation.
package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrUnauthorized is returned (wrapped) when the registry rejects the
// credentials, or asks for credentials and none are configured.
var ErrUnauthorized = errors.New("unauthorized")

// Options of one registry operation. The zero value pulls for
// linux/GOARCH, verifies TLS and reads credentials from the default
// docker config directory.
type Options struct {
	// Platform selects the image of a manifest list or OCI index; the
	// zero value means linux/runtime.GOARCH. When set explicitly, a
	// single-platform image that does not match is an error.
	Platform ocispec.Platform
	// Insecure lists registries ("host" or "host:port") that may be
	// reached over plain HTTP or HTTPS without certificate verification.
	// localhost and 127.0.0.0/8 may always use plain HTTP.
	Insecure []string
	// TLSVerify, when false, makes every registry insecure as above.
	TLSVerify *bool
	// ConfigDir is the docker config dir (config.json); empty means
	// $DOCKER_CONFIG, else ~/.docker.
	ConfigDir string
	// Progress, when set, receives one event per blob once it is done.
	// Calls are serialized.
	Progress func(BlobEvent)
}

// BlobStatus says what happened to one blob.
type BlobStatus string

const (
	BlobDone    BlobStatus = "done"    // transferred
	BlobSkipped BlobStatus = "skipped" // already there (local store for pull, registry for push)
	BlobMounted BlobStatus = "mounted" // mounted from another repository of the registry
)

// BlobEvent reports one finished blob of a pull or push.
type BlobEvent struct {
	Op        string // "pull" or "push"
	Ref       string // the reference being pulled or pushed
	Digest    digest.Digest
	MediaType string
	Size      int64
	Status    BlobStatus
	From      string // for BlobMounted: the source repository
}

// ParsePlatform parses "os/arch[/variant]" (e.g. "linux/arm64",
// "linux/arm/v7"); a bare "arch" means linux/arch.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "/")
	var p ocispec.Platform
	switch len(parts) {
	case 1: // "linux" (the host's arch) or "arm64" (linux)
		p.OS, p.Architecture = "linux", parts[0]
		if knownOS(parts[0]) {
			p = DefaultPlatform()
			p.OS = parts[0]
		}
	case 2:
		p.OS, p.Architecture = parts[0], parts[1]
	case 3:
		p.OS, p.Architecture, p.Variant = parts[0], parts[1], parts[2]
	default:
		return p, fmt.Errorf("parse platform %q: want os/arch[/variant]", s)
	}
	for _, f := range parts {
		if f == "" || strings.ContainsAny(f, " \t,") {
			return p, fmt.Errorf("parse platform %q: want os/arch[/variant]", s)
		}
	}
	return normalizePlatform(p), nil
}

func knownOS(s string) bool {
	switch s {
	case "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "plan9":
		return true
	}
	return false
}

// FormatPlatform is the "os/arch[/variant]" form of p.
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// DefaultPlatform is linux/runtime.GOARCH (with the arm variant v7).
func DefaultPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

// configDir is opts.ConfigDir, else $DOCKER_CONFIG, else ~/.docker.
func (o Options) configDir() (string, error) {
	if o.ConfigDir != "" {
		return o.ConfigDir, nil
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find docker config dir: %w", err)
	}
	return filepath.Join(home, ".docker"), nil
}

// insecure reports whether registry host may skip TLS (verification).
func (o Options) insecure(host string) bool {
	if o.TLSVerify != nil && !*o.TLSVerify {
		return true
	}
	for _, h := range o.Insecure {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://"), "/")
		if h == host {
			return true
		}
		// "host" without a port covers every port of that host.
		if !strings.Contains(h, ":") {
			if hn, _, ok := strings.Cut(host, ":"); ok && hn == h {
				return true
			}
		}
	}
	return false
}
