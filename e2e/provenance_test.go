//go:build linux

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
)

// checkSLSAv1 validates an in-toto statement carrying a SLSA v1 provenance
// predicate against the fields the schema requires
// (https://slsa.dev/spec/v1.0/provenance): the statement's type, subjects
// and predicate type; buildDefinition.buildType (a URI),
// externalParameters (an object), resolvedDependencies (resource
// descriptors with well-formed digests); runDetails.builder.id (a URI);
// metadata (RFC 3339 times in order). It returns the decoded statement.
func checkSLSAv1(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("statement is not JSON: %v", err)
	}
	fail := func(format string, a ...any) { t.Helper(); t.Errorf("SLSA v1: "+format, a...) }
	obj := func(v any, path string, required bool) map[string]any {
		t.Helper()
		m, ok := v.(map[string]any)
		if !ok && (v != nil || required) {
			fail("%s: want an object, got %T", path, v)
		}
		return m
	}
	uri := func(v any, path string) {
		t.Helper()
		s, _ := v.(string)
		if u, err := url.Parse(s); s == "" || err != nil || u.Scheme == "" {
			fail("%s: %q is not a URI", path, s)
		}
	}
	hexRE := regexp.MustCompile(`^[0-9a-f]+$`)
	digestSet := func(v any, path string) {
		t.Helper()
		m := obj(v, path, true)
		if len(m) == 0 {
			fail("%s: empty digest set", path)
		}
		for alg, h := range m {
			s, _ := h.(string)
			if !hexRE.MatchString(s) || alg == "sha256" && len(s) != 64 || alg == "sha1" && len(s) != 40 {
				fail("%s.%s: %q is not a %s digest", path, alg, s, alg)
			}
		}
	}
	resource := func(v any, path string) {
		t.Helper()
		m := obj(v, path, true)
		if m["uri"] == nil && m["digest"] == nil && m["content"] == nil {
			fail("%s: a resource descriptor needs uri, digest or content", path)
		}
		if m["uri"] != nil {
			uri(m["uri"], path+".uri")
		}
		if m["digest"] != nil {
			digestSet(m["digest"], path+".digest")
		}
	}
	if typ := st["_type"]; typ != "https://in-toto.io/Statement/v0.1" && typ != "https://in-toto.io/Statement/v1" {
		fail("_type = %v", typ)
	}
	if st["predicateType"] != "https://slsa.dev/provenance/v1" {
		fail("predicateType = %v", st["predicateType"])
	}
	subjects, _ := st["subject"].([]any)
	if len(subjects) == 0 {
		fail("no subject")
	}
	for i, s := range subjects {
		m := obj(s, fmt.Sprintf("subject[%d]", i), true)
		if name, _ := m["name"].(string); name == "" {
			fail("subject[%d]: no name", i)
		}
		digestSet(m["digest"], fmt.Sprintf("subject[%d].digest", i))
	}
	pred := obj(st["predicate"], "predicate", true)
	bd := obj(pred["buildDefinition"], "buildDefinition", true)
	uri(bd["buildType"], "buildDefinition.buildType")
	obj(bd["externalParameters"], "buildDefinition.externalParameters", true)
	obj(bd["internalParameters"], "buildDefinition.internalParameters", false)
	if deps := bd["resolvedDependencies"]; deps != nil {
		list, ok := deps.([]any)
		if !ok {
			fail("resolvedDependencies: want an array")
		}
		for i, d := range list {
			resource(d, fmt.Sprintf("resolvedDependencies[%d]", i))
		}
	}
	rd := obj(pred["runDetails"], "runDetails", true)
	b := obj(rd["builder"], "runDetails.builder", true)
	uri(b["id"], "runDetails.builder.id")
	if v := obj(b["version"], "runDetails.builder.version", false); v != nil {
		for k, x := range v {
			if _, ok := x.(string); !ok {
				fail("runDetails.builder.version.%s: want a string", k)
			}
		}
	}
	if md := obj(rd["metadata"], "runDetails.metadata", false); md != nil {
		if v, ok := md["invocationID"]; ok {
			if _, ok := v.(string); !ok {
				fail("metadata.invocationID: want a string")
			}
		}
		var times []time.Time
		for _, k := range []string{"startedOn", "finishedOn"} {
			if v, ok := md[k]; ok {
				s, _ := v.(string)
				tm, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					fail("metadata.%s: %q is not an RFC 3339 time", k, s)
				}
				times = append(times, tm)
			}
		}
		if len(times) == 2 && times[1].Before(times[0]) {
			fail("metadata: finishedOn before startedOn")
		}
	}
	return st
}

// at walks a decoded JSON value by keys and indexes.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func skopeoRaw(t *testing.T, ref string) map[string]any {
	t.Helper()
	out, err := exec.Command(needTool(t, "skopeo"), "inspect", "--raw", "--tls-verify=false", ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v", ref, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("skopeo inspect --raw %s: %v\n%s", ref, err, out)
	}
	return m
}

// TestProvenance: a pushed build (provenance mode=min by default, as
// buildx) is an index holding the image and an attestation manifest in
// BuildKit's layout, as skopeo sees it in the registry; the statement
// validates as SLSA v1 and names the Dockerfile digest, the base image
// digest, the context's git commit (remote credentials masked) and no
// build arg; mode=max adds the build args, labels and secret ids (never a
// value); annotations land on the manifest and the index; without
// provenance the image is a manifest, and a docker archive skips the
// attestation with a warning.
func TestProvenance(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	git := needTool(t, "git")
	dockerfile := "FROM busybox\nARG GREETING\nRUN --mount=type=secret,id=tok echo \"$GREETING\" > /g\n"
	ctx := writeContext(t, map[string]string{"Dockerfile": dockerfile})
	for _, args := range [][]string{
		{"init", "-q"},
		{"remote", "add", "origin", "https://ci:t0ken-in-url@git.example/app.git"},
		{"add", "Dockerfile"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one"},
	} {
		if out, err := exec.Command(git, append([]string{"-C", ctx}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	commit, err := exec.Command(git, "-C", ctx, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "tok")
	const secretValue = "s3cr3t-v4lue"
	if err := os.WriteFile(secret, []byte(secretValue), 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"build", "--secret", "id=tok,src=" + secret, "--build-arg", "GREETING=hello", "--label", "team=core", ctx}
	baseDigest, _ := regInspect(t, e, "busybox")
	dfDigest := sha256.Sum256([]byte(dockerfile))

	ref := reg + "/app:v1"
	e.mustRun(append(common, "-t", ref, "--push",
		"--annotation", "org.opencontainers.image.title=app", "--annotation", "index:org.opencontainers.image.description=the app")...)

	// The registry holds an index: the image and its attestation manifest.
	idx := skopeoRaw(t, "docker://"+ref)
	manifests, _ := idx["manifests"].([]any)
	if idx["mediaType"] != "application/vnd.oci.image.index.v1+json" || len(manifests) != 2 {
		t.Fatalf("pushed %v with %d manifests, want an OCI index of 2", idx["mediaType"], len(manifests))
	}
	if at(idx, "annotations", "org.opencontainers.image.description") != "the app" {
		t.Errorf("index annotations: %v", idx["annotations"])
	}
	imgDigest, _ := at(manifests, 0, "digest").(string)
	att := manifests[1]
	if at(att, "annotations", "vnd.docker.reference.type") != "attestation-manifest" ||
		at(att, "annotations", "vnd.docker.reference.digest") != imgDigest ||
		at(att, "platform", "os") != "unknown" || at(att, "platform", "architecture") != "unknown" {
		t.Errorf("attestation entry: %v", att)
	}
	img := skopeoRaw(t, "docker://"+reg+"/app@"+imgDigest)
	if at(img, "annotations", "org.opencontainers.image.title") != "app" {
		t.Errorf("manifest annotations: %v", img["annotations"])
	}
	attMan := skopeoRaw(t, "docker://"+reg+"/app@"+at(att, "digest").(string))
	if at(attMan, "layers", 0, "mediaType") != "application/vnd.in-toto+json" ||
		at(attMan, "layers", 0, "annotations", "in-toto.io/predicate-type") != "https://slsa.dev/provenance/v1" {
		t.Errorf("attestation manifest: %v", attMan)
	}

	// builder inspect --provenance prints the statement.
	raw := e.mustRun("inspect", "--provenance", ref).stdout
	st := checkSLSAv1(t, []byte(raw))
	pred := st["predicate"]
	for _, c := range []struct {
		what string
		got  any
		want any
	}{
		{"subject digest", at(st, "subject", 0, "digest", "sha256"), strings.TrimPrefix(imgDigest, "sha256:")},
		{"subject name", at(st, "subject", 0, "name"), "pkg:docker/" + strings.Replace(strings.TrimSuffix(ref, ":v1"), "127.0.0.1:", "127.0.0.1%3A", 1) + "@v1?platform=linux%2F" + runtimeArch(t, e)},
		{"Dockerfile digest", at(pred, "buildDefinition", "externalParameters", "configSource", "digest", "sha256"), hex.EncodeToString(dfDigest[:])},
		{"Dockerfile path", at(pred, "buildDefinition", "externalParameters", "configSource", "path"), "Dockerfile"},
		{"base image", at(pred, "buildDefinition", "resolvedDependencies", 0, "uri"), "pkg:docker/busybox@latest?platform=linux%2F" + runtimeArch(t, e)},
		{"base digest", at(pred, "buildDefinition", "resolvedDependencies", 0, "digest", "sha256"), strings.TrimPrefix(baseDigest, "sha256:")},
		{"git commit", at(pred, "runDetails", "metadata", "buildkit_metadata", "vcs", "revision"), strings.TrimSpace(string(commit))},
		{"git source", at(pred, "runDetails", "metadata", "buildkit_metadata", "vcs", "source"), "https://ci:xxxxx@git.example/app.git"},
		{"min: no build args", at(pred, "buildDefinition", "externalParameters", "request", "args"), nil},
		{"min: request incomplete", at(pred, "runDetails", "metadata", "buildkit_completeness", "request"), false},
		{"builder id", at(pred, "runDetails", "builder", "id"), "https://github.com/builderdev/builder"},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if strings.Contains(raw, secretValue) || strings.Contains(raw, "t0ken-in-url") {
		t.Errorf("a secret is in the provenance:\n%s", raw)
	}

	// mode=max: build args, labels and secret ids, and the Dockerfile.
	layout := filepath.Join(t.TempDir(), "layout")
	e.mustRun(append(common, "-t", "app:max", "--provenance", "mode=max", "-o", "type=oci-layout,dest="+layout)...)
	raw = e.mustRun("inspect", "--provenance", "app:max").stdout
	st = checkSLSAv1(t, []byte(raw))
	req := at(st, "predicate", "buildDefinition", "externalParameters", "request")
	if at(req, "args", "build-arg:GREETING") != "hello" || at(req, "args", "label:team") != "core" || at(req, "secrets", 0, "id") != "tok" {
		t.Errorf("max request: %v", req)
	}
	if strings.Contains(raw, secretValue) {
		t.Errorf("the secret value is in the provenance:\n%s", raw)
	}
	if data := at(st, "predicate", "runDetails", "metadata", "buildkit_metadata", "source", "infos", 0, "data"); data == nil {
		t.Errorf("max: no Dockerfile source")
	}
	var lidx map[string]any
	if data, err := os.ReadFile(filepath.Join(layout, "index.json")); err != nil || json.Unmarshal(data, &lidx) != nil {
		t.Fatalf("layout index.json: %v", err)
	}
	if at(lidx, "manifests", 0, "mediaType") != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("oci-layout output: %v, want the image index", lidx)
	}
	skopeoRaw(t, "oci:"+layout+":app:max") // readable whole

	// No provenance: a manifest, as before; a docker archive skips it.
	r := e.mustRun(append(common, "-t", "app:plain", "--provenance=false")...)
	if r := e.run("inspect", "--provenance", "app:plain"); r.code == 0 || !strings.Contains(r.stderr, "no provenance") {
		t.Errorf("inspect --provenance of a plain image: exit %d\n%s", r.code, r.stderr)
	}
	_ = r
	r = e.mustRun(append(common, "--provenance=true", "-o", "type=docker,dest="+filepath.Join(t.TempDir(), "d.tar"))...)
	if !strings.Contains(r.stderr, "cannot hold attestations") {
		t.Errorf("type=docker with provenance: no warning:\n%s", r.stderr)
	}
	if r := e.run(append(common, "--annotation", "index:a=b")...); r.code != 2 {
		t.Errorf("index annotation without an index: exit %d, want 2\n%s", r.code, r.stderr)
	}
}

// runtimeArch is the architecture of the store's busybox.
func runtimeArch(t *testing.T, e *env) string {
	_, cfg := regInspect(t, e, "busybox")
	arch, _ := cfg["architecture"].(string)
	return arch
}
