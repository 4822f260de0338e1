// Package remote exports a build's cache records and their layer blobs to
// a registry or a directory, and imports them on another machine (a fresh
// CI runner), so that a build there hits the cache the first time.
//
// # Format
//
// A cache is a plain OCI image manifest that any registry stores:
//
//	config   application/vnd.builder.cache.v1+json: {"version", "keyVersion", "records": [...]}
//	         each record: cache key -> layer digest, size, media type, diffID, created, newest
//	layers   the layer blobs the records name, each once, in record order
//
// type=registry pushes it to ref (blobs first, the manifest last, so two
// exporters racing on one ref leave one whole cache); type=local writes it
// into an OCI layout directory (blobs first, index.json last) under the
// name builder/cache:latest; type=inline puts the config's JSON into the
// pushed image's manifest as the annotation dev.builder.cache.v1, so the
// image itself carries the cache of its own steps.
//
// # Import
//
// Import reads the manifest and the records (one or two small requests)
// and nothing else. The engine looks keys up in them (Lookup) and calls
// Fetch for a layer only when something needs its bytes: a RUN or COPY
// that misses needs its parent rootfs, a kept image needs its layers. A
// fetched blob is verified against its digest and its diffID in the same
// pass as the download, and only then are its records written to the
// local cache, where prune treats them as local ones. A blob that is
// missing or corrupt poisons its records (Lookup misses them from then
// on) and Fetch returns a *BlobError, on which the caller rebuilds.
package remote

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/builderdev/builder/cache"
	"github.com/opencontainers/go-digest"
)

// Media types and names of the format.
const (
	ConfigMediaType  = "application/vnd.builder.cache.v1+json"
	FormatVersion    = "builder.cache.v1"
	InlineAnnotation = "dev.builder.cache.v1"
	localName        = "builder/cache:latest"
)

// Spec is one --cache-to or --cache-from value, as docker buildx spells
// them: type=registry,ref=REF[,mode=min|max][,compression=gzip|zstd],
// type=local,dest=DIR (export) or src=DIR (import), type=inline.
type Spec struct {
	Type        string // "registry", "local" or "inline"
	Ref         string // registry
	Dir         string // local
	Max         bool   // mode=max: every step of every stage built
	Compression string // export: must match the build's layers ("" = any)
	IgnoreError bool   // export: a failure is a warning, not a failed build
}

// String is the spec as progress names it ("registry REF", "local DIR").
func (s Spec) String() string {
	switch s.Type {
	case "registry":
		return "registry " + s.Ref
	case "local":
		return "local " + s.Dir
	}
	return s.Type
}

// ParseSpec reads a --cache-to (export) or --cache-from value. A bare
// value with no '=' is a registry ref, as buildx takes it.
func ParseSpec(s string, export bool) (Spec, error) {
	var sp Spec
	if !strings.Contains(s, "=") {
		return Spec{Type: "registry", Ref: s}, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return sp, fmt.Errorf("malformed cache spec %q: want key=value pairs", s)
		}
		switch strings.TrimSpace(k) {
		case "type":
			sp.Type = v
		case "ref":
			sp.Ref = v
		case "dest":
			if !export {
				return sp, fmt.Errorf("cache spec %q: dest= is for --cache-to (import with src=)", s)
			}
			sp.Dir = v
		case "src":
			if export {
				return sp, fmt.Errorf("cache spec %q: src= is for --cache-from (export with dest=)", s)
			}
			sp.Dir = v
		case "mode":
			if !export {
				return sp, fmt.Errorf("cache spec %q: mode= is for --cache-to", s)
			}
			switch v {
			case "min":
			case "max":
				sp.Max = true
			default:
				return sp, fmt.Errorf("cache spec %q: mode must be min or max", s)
			}
		case "compression":
			if v != "gzip" && v != "zstd" {
				return sp, fmt.Errorf("cache spec %q: compression must be gzip or zstd", s)
			}
			sp.Compression = v
		case "ignore-error":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return sp, fmt.Errorf("cache spec %q: ignore-error must be true or false", s)
			}
			sp.IgnoreError = b
		case "oci-mediatypes", "image-manifest", "compression-level", "force-compression":
			// buildx options that need nothing here: the format is always
			// an OCI image manifest, layers are exported as built.
		default:
			return sp, fmt.Errorf("cache spec %q: unknown key %q", s, k)
		}
	}
	switch sp.Type {
	case "registry":
		if sp.Ref == "" {
			return sp, fmt.Errorf("cache spec %q: type=registry needs ref=", s)
		}
	case "local":
		if sp.Dir == "" {
			want := "src="
			if export {
				want = "dest="
			}
			return sp, fmt.Errorf("cache spec %q: type=local needs %s", s, want)
		}
	case "inline":
		if sp.Max {
			return sp, fmt.Errorf("cache spec %q: type=inline exports the image's own steps only (mode=min)", s)
		}
	case "":
		return sp, fmt.Errorf("cache spec %q: type= is required (registry, local or inline)", s)
	default:
		return sp, fmt.Errorf("cache spec %q: type must be registry, local or inline", s)
	}
	return sp, nil
}

// config is the cache manifest's config blob (and the inline annotation).
type config struct {
	Version    string         `json:"version"`
	KeyVersion string         `json:"keyVersion"`
	Records    []cache.Record `json:"records"`
}

func encodeConfig(recs []cache.Record) ([]byte, error) {
	if recs == nil {
		recs = []cache.Record{}
	}
	return json.Marshal(config{Version: FormatVersion, KeyVersion: cache.Version, Records: recs})
}

// decodeConfig reads records written by this format and key version; a
// record that is not well formed makes the whole cache unusable (it was
// not written by a builder).
func decodeConfig(data []byte) ([]cache.Record, error) {
	var c config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode cache records: %w", err)
	}
	if c.Version != FormatVersion {
		return nil, fmt.Errorf("cache format %q, this builder reads %q", c.Version, FormatVersion)
	}
	if c.KeyVersion != cache.Version {
		return nil, fmt.Errorf("cache keys of version %q, this builder makes %q (written by another builder version)", c.KeyVersion, cache.Version)
	}
	for _, r := range c.Records {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("cache record %s: %w", r.Key, err)
		}
		if r.Layer != "" && (r.MediaType == "" || r.DiffID == "") {
			return nil, fmt.Errorf("cache record %s: layer without media type or diffID", r.Key)
		}
	}
	return c.Records, nil
}

// layers lists the distinct layer blobs of recs, in record order.
func layers(recs []cache.Record) []cache.Record {
	var out []cache.Record
	seen := map[digest.Digest]bool{}
	for _, r := range recs {
		if r.Layer == "" || seen[r.Layer] {
			continue
		}
		seen[r.Layer] = true
		out = append(out, r)
	}
	return out
}
