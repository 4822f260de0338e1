package provenance

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPURL(t *testing.T) {
	amd64 := &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm := &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}
	for _, tc := range []struct {
		ref  string
		p    *ocispec.Platform
		want string
	}{
		{"busybox:latest", amd64, "pkg:docker/busybox@latest?platform=linux%2Famd64"},
		{"docker.io/library/alpine:3.17", arm, "pkg:docker/alpine@3.17?platform=linux%2Farm%2Fv7"},
		{"docker.io/me/app", nil, "pkg:docker/me/app@latest"},
		{"localhost:5000/team/app:v1", amd64, "pkg:docker/localhost%3A5000/team/app@v1?platform=linux%2Famd64"},
		{"busybox@sha256:" + strings.Repeat("a", 64), amd64, "pkg:docker/busybox?digest=sha256:" + strings.Repeat("a", 64) + "&platform=linux%2Famd64"},
	} {
		if got := PURL(tc.ref, tc.p); got != tc.want {
			t.Errorf("PURL(%q) = %s, want %s", tc.ref, got, tc.want)
		}
	}
}

// TestModes: min leaves out build args, labels, secret and ssh ids and
// says the request is incomplete; max has them (ids only) and the Dockerfile.
func TestModes(t *testing.T) {
	b := Build{
		DockerfileName: "Dockerfile", Dockerfile: []byte("FROM busybox\n"), Target: "app",
		BuildArgs: map[string]string{"V": "1"}, Labels: map[string]string{"l": "x"},
		Secrets: []string{"tok"}, SSH: []string{"default"},
		Bases:    []Base{{Ref: "busybox:latest", Digest: digest.FromString("m")}},
		Subjects: []Subject{{Name: "_", Digest: map[string]string{"sha256": digest.FromString("i").Encoded()}}},
	}
	type doc struct {
		Predicate struct {
			BuildDefinition struct {
				ExternalParameters struct {
					ConfigSource struct {
						Digest map[string]string `json:"digest"`
					} `json:"configSource"`
					Request struct {
						Args    map[string]string `json:"args"`
						Secrets []idRef           `json:"secrets"`
						SSH     []idRef           `json:"ssh"`
					} `json:"request"`
				} `json:"externalParameters"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Metadata struct {
					BuildKitMetadata struct {
						Source *source `json:"source"`
					} `json:"buildkit_metadata"`
					Completeness completeness `json:"buildkit_completeness"`
				} `json:"metadata"`
			} `json:"runDetails"`
		} `json:"predicate"`
	}
	get := func(m Mode) doc {
		b.Mode = m
		data, err := Statement(b)
		if err != nil {
			t.Fatal(err)
		}
		var d doc
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	mn, mx := get(Min), get(Max)
	rq := mn.Predicate.BuildDefinition.ExternalParameters.Request
	if len(rq.Args) != 1 || rq.Args["target"] != "app" || rq.Secrets != nil || rq.SSH != nil ||
		mn.Predicate.RunDetails.Metadata.Completeness.Request || mn.Predicate.RunDetails.Metadata.BuildKitMetadata.Source != nil {
		t.Errorf("min: %+v", mn)
	}
	rq = mx.Predicate.BuildDefinition.ExternalParameters.Request
	if rq.Args["build-arg:V"] != "1" || rq.Args["label:l"] != "x" || len(rq.Secrets) != 1 || rq.Secrets[0].ID != "tok" || len(rq.SSH) != 1 ||
		!mx.Predicate.RunDetails.Metadata.Completeness.Request || mx.Predicate.RunDetails.Metadata.BuildKitMetadata.Source == nil {
		t.Errorf("max: %+v", mx)
	}
	if got := mn.Predicate.BuildDefinition.ExternalParameters.ConfigSource.Digest["sha256"]; got != digest.FromBytes(b.Dockerfile).Encoded() {
		t.Errorf("Dockerfile digest %s", got)
	}
	b.Mode = "full"
	if _, err := Statement(b); err == nil {
		t.Error("mode full: no error")
	}
}
