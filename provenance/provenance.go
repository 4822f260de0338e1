// Package provenance writes the SLSA v1 provenance of a build as an
// in-toto statement, in the shape BuildKit gives it (its buildType, its
// request and metadata fields), so that tools that read BuildKit's
// attestations read ours:
//
//	data, _ := provenance.Statement(provenance.Build{Mode: provenance.Min, ...})
//
// The statement is stored as BuildKit stores it (package client does the
// writing): a layer of media type MediaType, annotated with its predicate
// type, in an attestation manifest (platform unknown/unknown) that the
// image index lists next to the image, annotated with the reference type
// and the digest of the image manifest it describes.
//
// What goes in, by mode (BuildKit's docs/attestations/slsa-definitions.md):
// both modes name the Dockerfile (path and digest), the target, the base
// images with their digests (resolvedDependencies), the git source and
// commit of the context when known (metadata vcs), the platforms and
// builder's version; min leaves out build args and labels (and says the
// request is incomplete), max adds them, the ids (never the values) of the
// secrets and ssh agents, and the Dockerfile itself.
package provenance

import (
	"encoding/json"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Names of BuildKit's attestation layout.
const (
	StatementType = "https://in-toto.io/Statement/v0.1"
	PredicateType = "https://slsa.dev/provenance/v1"
	// BuildType is BuildKit's: it says how to read the predicate.
	BuildType = "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md"
	// MediaType of the statement layer.
	MediaType = "application/vnd.in-toto+json"
	// AnnotationPredicateType, on the layer, names the predicate type.
	AnnotationPredicateType = "in-toto.io/predicate-type"
	// On the index's entry of the attestation manifest: what it is and
	// the digest of the image manifest it is about.
	AnnotationReferenceType   = "vnd.docker.reference.type"
	AnnotationReferenceDigest = "vnd.docker.reference.digest"
	ReferenceTypeAttestation  = "attestation-manifest"
	// BuilderID is runDetails.builder.id unless Build.BuilderID is set.
	BuilderID = "https://github.com/builderdev/builder"
)

// Mode is how much the statement tells.
type Mode string

const (
	Min Mode = "min"
	Max Mode = "max"
)

// Build is what a build tells about itself.
type Build struct {
	Mode           Mode
	DockerfileName string // path as given (configSource.path)
	Dockerfile     []byte
	Target         string
	BuildArgs      map[string]string // max only
	Labels         map[string]string // max only
	Secrets, SSH   []string          // ids, max only
	Bases          []Base
	VCS            *VCS
	BuilderID      string // default BuilderID
	BuilderVersion string
	Platform       ocispec.Platform // of the image
	Started        time.Time
	Finished       time.Time
	InvocationID   string
	Subjects       []Subject
}

// Base is an image the build used, resolved to a manifest.
type Base struct {
	Ref      string // normalized: docker.io/library/busybox:latest
	Platform *ocispec.Platform
	Digest   digest.Digest
}

// Subject is what the statement is about: the image manifest, by name.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// VCS is the version control source of the build context.
type VCS struct {
	Source   string // remote URL, credentials removed
	Revision string // commit
}

// The statement, as BuildKit writes it (its types in
// solver/llbsolver/provenance/types, with the SLSA v1 fields).
type statement struct {
	Type          string    `json:"_type"`
	PredicateType string    `json:"predicateType"`
	Subject       []Subject `json:"subject"`
	Predicate     predicate `json:"predicate"`
}

type predicate struct {
	BuildDefinition buildDefinition `json:"buildDefinition"`
	RunDetails      runDetails      `json:"runDetails"`
}

type buildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   externalParameters   `json:"externalParameters"`
	InternalParameters   internalParameters   `json:"internalParameters"`
	ResolvedDependencies []resourceDescriptor `json:"resolvedDependencies,omitempty"`
}

type externalParameters struct {
	ConfigSource configSource `json:"configSource"`
	Request      request      `json:"request"`
}

type configSource struct {
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
	Path   string            `json:"path,omitempty"`
}

type request struct {
	Frontend string            `json:"frontend,omitempty"`
	Args     map[string]string `json:"args,omitempty"`
	Secrets  []idRef           `json:"secrets,omitempty"`
	SSH      []idRef           `json:"ssh,omitempty"`
	Locals   []local           `json:"locals,omitempty"`
}

type idRef struct {
	ID string `json:"id"`
}

type local struct {
	Name string `json:"name"`
}

type internalParameters struct {
	BuilderPlatform string `json:"builderPlatform"`
	TargetPlatform  string `json:"targetPlatform,omitempty"`
}

type resourceDescriptor struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}

type runDetails struct {
	Builder  builder   `json:"builder"`
	Metadata *metadata `json:"metadata,omitempty"`
}

type builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

type metadata struct {
	InvocationID     string           `json:"invocationID,omitempty"`
	StartedOn        *time.Time       `json:"startedOn,omitempty"`
	FinishedOn       *time.Time       `json:"finishedOn,omitempty"`
	BuildKitMetadata buildkitMetadata `json:"buildkit_metadata"`
	Completeness     completeness     `json:"buildkit_completeness"`
}

type buildkitMetadata struct {
	VCS    map[string]string `json:"vcs,omitempty"`
	Source *source           `json:"source,omitempty"`
}

type source struct {
	Infos []sourceInfo `json:"infos,omitempty"`
}

type sourceInfo struct {
	Filename string `json:"filename,omitempty"`
	Language string `json:"language,omitempty"`
	Data     []byte `json:"data,omitempty"` // base64 in JSON
}

type completeness struct {
	Request              bool `json:"request"`
	ResolvedDependencies bool `json:"resolvedDependencies"`
}

// Statement returns the in-toto statement of b, as JSON.
func Statement(b Build) ([]byte, error) {
	if b.Mode != Min && b.Mode != Max {
		return nil, fmt.Errorf("provenance: mode must be min or max, not %q", b.Mode)
	}
	if len(b.Subjects) == 0 {
		return nil, fmt.Errorf("provenance: no subject")
	}
	args := map[string]string{}
	if b.Target != "" {
		args["target"] = b.Target
	}
	req := request{Frontend: "dockerfile.v0", Locals: []local{{Name: "context"}, {Name: "dockerfile"}}}
	complete := true
	if b.Mode == Max {
		for k, v := range b.BuildArgs {
			args["build-arg:"+k] = v
		}
		for k, v := range b.Labels {
			args["label:"+k] = v
		}
		for _, id := range sorted(b.Secrets) {
			req.Secrets = append(req.Secrets, idRef{ID: id})
		}
		for _, id := range sorted(b.SSH) {
			req.SSH = append(req.SSH, idRef{ID: id})
		}
	} else if len(b.BuildArgs) > 0 || len(b.Labels) > 0 {
		complete = false // as BuildKit: min drops them, and says so
	}
	if len(args) > 0 {
		req.Args = args
	}
	name := b.DockerfileName
	if name == "" {
		name = "Dockerfile"
	}
	d := digest.FromBytes(b.Dockerfile)
	bd := buildDefinition{
		BuildType: BuildType,
		ExternalParameters: externalParameters{
			ConfigSource: configSource{Path: name, Digest: map[string]string{d.Algorithm().String(): d.Encoded()}},
			Request:      req,
		},
		InternalParameters: internalParameters{
			BuilderPlatform: runtime.GOOS + "/" + runtime.GOARCH,
			TargetPlatform:  formatPlatform(b.Platform),
		},
	}
	for _, base := range b.Bases {
		bd.ResolvedDependencies = append(bd.ResolvedDependencies, resourceDescriptor{
			URI:    PURL(base.Ref, base.Platform),
			Digest: map[string]string{base.Digest.Algorithm().String(): base.Digest.Encoded()},
		})
	}
	md := &metadata{
		InvocationID: b.InvocationID,
		// The context is a local dir: its files are not named one by one.
		Completeness: completeness{Request: complete, ResolvedDependencies: false},
	}
	if !b.Started.IsZero() {
		t := b.Started.UTC()
		md.StartedOn = &t
	}
	if !b.Finished.IsZero() {
		t := b.Finished.UTC()
		md.FinishedOn = &t
	}
	if b.VCS != nil {
		md.BuildKitMetadata.VCS = map[string]string{"source": b.VCS.Source, "revision": b.VCS.Revision}
	}
	if b.Mode == Max {
		md.BuildKitMetadata.Source = &source{Infos: []sourceInfo{{Filename: name, Language: "Dockerfile", Data: b.Dockerfile}}}
	}
	id := b.BuilderID
	if id == "" {
		id = BuilderID
	}
	var version map[string]string
	if b.BuilderVersion != "" {
		version = map[string]string{"builder": b.BuilderVersion}
	}
	st := statement{
		Type:          StatementType,
		PredicateType: PredicateType,
		Subject:       b.Subjects,
		Predicate: predicate{
			BuildDefinition: bd,
			RunDetails:      runDetails{Builder: builder{ID: id, Version: version}, Metadata: md},
		},
	}
	return json.Marshal(st)
}

func sorted(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

func formatPlatform(p ocispec.Platform) string {
	if p.OS == "" {
		return ""
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// PURL is the package URL of an image reference, as BuildKit names images
// (its util/purl with packageurl-go's escaping):
// pkg:docker/NAMESPACE/NAME@TAG?digest=D&platform=OS%2FARCH, with the
// familiar name (docker.io/library/ dropped).
func PURL(ref string, p *ocispec.Platform) string {
	name, dgst, _ := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag = name[:i], name[i+1:]
	}
	if dgst == "" && tag == "" {
		tag = "latest"
	}
	if rest, ok := strings.CutPrefix(name, "docker.io/"); ok {
		name = strings.TrimPrefix(rest, "library/")
	}
	out := "pkg:docker/"
	segs := strings.Split(name, "/")
	for _, s := range segs[:len(segs)-1] {
		out += url.QueryEscape(s) + "/"
	}
	out += url.PathEscape(segs[len(segs)-1])
	if tag != "" {
		out += "@" + url.PathEscape(tag)
	}
	var q []string
	if dgst != "" {
		q = append(q, "digest="+url.PathEscape(dgst))
	}
	if p != nil && p.OS != "" {
		q = append(q, "platform="+url.PathEscape(formatPlatform(*p)))
	}
	if len(q) > 0 {
		out += "?" + strings.Join(q, "&")
	}
	return out
}
