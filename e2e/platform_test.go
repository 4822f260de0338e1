//go:build linux

package e2e

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/builderdev/builder/snapshot/sandbox"
)

// Multi-platform builds (issue 20): one build for linux/amd64 and
// linux/arm64 makes one image index; RUN for arm64 runs under QEMU
// user-mode emulation (Debian's qemu-user-static, through binfmt_misc),
// on a busybox image whose arm64 half is Debian's arm64 busybox-static.

const multiImage = "busybox:multi"

var (
	multiOnce sync.Once
	multiTar  string
	multiErr  error
)

// multiBusybox returns an OCI archive tagging busybox:multi, an image
// index of the host's busybox (amd64) and Debian's arm64 busybox-static,
// on a host that now runs arm64 binaries (testutil.ForeignBusybox).
func multiBusybox(t *testing.T) string {
	t.Helper()
	arm64 := testutil.ForeignBusybox(t, "arm64")
	if _, err := sandbox.CanRun("arm64"); err != nil {
		t.Fatalf("after registering qemu-aarch64: %v", err)
	}
	multiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "builder-e2e-multi-")
		if err != nil {
			multiErr = err
			return
		}
		multiTar = filepath.Join(dir, "busybox-multi.tar")
		multiErr = testutil.WriteBusyboxImage(multiTar, testutil.BusyboxOptions{Name: multiImage, Tag: "multi",
			Others: []testutil.BusyboxPlatform{{Arch: "arm64", Busybox: arm64}}})
	})
	if multiErr != nil {
		t.Fatalf("make the multi-platform busybox image: %v", multiErr)
	}
	return multiTar
}

// multiEnv is a fresh store with busybox:multi loaded, on a host that runs
// arm64 binaries.
func multiEnv(t *testing.T) *env {
	t.Helper()
	e := regEmptyEnv(t)
	e.mustRun("load", "-i", multiBusybox(t))
	return e
}

// layerFile returns the content of name in the first layer of an OCI
// layout's only image that has it.
func layerFile(t *testing.T, layout, name string) string {
	t.Helper()
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	blob := func(d string) string {
		return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
	}
	readJSON := func(p string, v any) {
		data, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(data, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	readJSON(filepath.Join(layout, "index.json"), &idx)
	var man struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	readJSON(blob(idx.Manifests[0].Digest), &man)
	for _, l := range man.Layers {
		f, err := os.Open(blob(l.Digest))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimPrefix(h.Name, "./") == name {
				data, _ := io.ReadAll(tr)
				return string(data)
			}
		}
	}
	t.Fatalf("no /%s in the image of %s", name, layout)
	return ""
}

// TestPlatformIndex: amd64 + arm64 in one build, one index; pushed as an
// index and pulled back per platform by skopeo; the arm64 RUN ran as
// aarch64. Exports hold the index (docker refuses), a second build is
// fully cached for both, and a base without a platform names the others.
func TestPlatformIndex(t *testing.T) {
	needTool(t, "skopeo")
	e := multiEnv(t)
	reg := testutil.StartRegistry(t)
	ref := reg + "/plat:v1"
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + multiImage + "\nARG TARGETPLATFORM\nRUN echo \"$TARGETPLATFORM $(uname -m)\" > /arch\nCMD [\"cat\", \"/arch\"]\n",
	})
	ociTar := filepath.Join(t.TempDir(), "plat.tar")
	r := e.mustRun("build", dir, "--platform", "linux/amd64,linux/arm64", "-t", ref, "--push", "-o", "type=oci,dest="+ociTar)
	// BuildKit's names: each platform's steps are their own vertices.
	for _, want := range []string{"[linux/amd64 stage-0 2/2] RUN", "[linux/arm64 stage-0 2/2] RUN"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("progress lacks %q:\n%s", want, r.stderr)
		}
	}

	var idx struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	for _, src := range []string{"docker://" + ref, "oci-archive:" + ociTar, "oci:" + e.root + ":" + ref} {
		raw := regSkopeo(t, "inspect", "--raw", "--tls-verify=false", src)
		if strings.HasPrefix(src, "oci") {
			raw = regSkopeo(t, "inspect", "--raw", src)
		}
		if err := json.Unmarshal([]byte(raw), &idx); err != nil {
			t.Fatalf("%s: %v\n%s", src, err, raw)
		}
		if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Manifests) != 2 ||
			idx.Manifests[0].Platform.Architecture != "amd64" || idx.Manifests[1].Platform.Architecture != "arm64" {
			t.Fatalf("%s is not an amd64+arm64 index:\n%s", src, raw)
		}
	}
	for arch, want := range map[string]string{"amd64": "linux/amd64 x86_64\n", "arm64": "linux/arm64 aarch64\n"} {
		layout := filepath.Join(t.TempDir(), arch)
		regSkopeo(t, "--insecure-policy", "--override-arch", arch, "copy", "-q", "--src-tls-verify=false", "docker://"+ref, "oci:"+layout+":x")
		if got := layerFile(t, layout, "arch"); got != want {
			t.Errorf("%s image: /arch = %q, want %q", arch, got, want)
		}
	}

	t.Run("cached", func(t *testing.T) {
		r := e.mustRun("build", dir, "--platform", "linux/amd64,linux/arm64", "--expect-cached", "-t", "again:v1")
		if n := strings.Count(r.stderr, "CACHED"); n != 2 {
			t.Errorf("%d CACHED steps, want 2 (the RUN of each platform):\n%s", n, r.stderr)
		}
	})
	t.Run("tag and push", func(t *testing.T) {
		// A stored index is tagged, saved and pushed whole.
		ref2 := reg + "/plat:v2"
		e.mustRun("tag", ref, ref2)
		e.mustRun("push", ref2)
		if a, b := regSkopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+ref2), regSkopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+ref); a != b {
			t.Errorf("pushed again, the index differs:\n%s\n%s", a, b)
		}
		saved := filepath.Join(t.TempDir(), "saved.tar")
		e.mustRun("save", "--format", "oci", "-o", saved, ref2)
		if raw := regSkopeo(t, "inspect", "--raw", "oci-archive:"+saved); !strings.Contains(raw, `"architecture":"arm64"`) {
			t.Errorf("save wrote no index:\n%s", raw)
		}
	})
	t.Run("docker refuses", func(t *testing.T) {
		r := e.run("build", dir, "--platform", "linux/amd64,linux/arm64", "-o", "type=docker,dest="+filepath.Join(t.TempDir(), "d.tar"))
		if r.code != 2 || !strings.Contains(r.stderr, "use -o type=oci") {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("missing platform", func(t *testing.T) {
		r := e.run("build", dir, "--platform", "linux/amd64,linux/s390x")
		if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:1") || !strings.Contains(r.stderr, "available: linux/amd64, linux/arm64") {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}

// TestPlatformCrossCompile: the cross-compiling pattern. The BUILDPLATFORM
// stage's steps that do not depend on the target run once for both
// targets, the step after ARG TARGETARCH once per target, all natively
// (uname -m in them says x86_64 also when compiling for arm64); the final
// stages only copy, so nothing runs under emulation. The cache exported
// by one store rebuilds both platforms in a fresh one with no step run.
func TestPlatformCrossCompile(t *testing.T) {
	e := multiEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": `FROM --platform=$BUILDPLATFORM ` + multiImage + ` AS build
RUN echo "download on $(uname -m)" && echo deps > /deps
ARG TARGETARCH
RUN echo "compile for $TARGETARCH on $(uname -m)" && echo "$TARGETARCH" > /app

FROM ` + multiImage + `
COPY --from=build /app /app
`,
	})
	out := filepath.Join(t.TempDir(), "out")
	cacheDir := filepath.Join(t.TempDir(), "cache")
	r := e.mustRun("build", dir, "--platform", "linux/amd64,linux/arm64", "-o", "type=local,dest="+out,
		"--cache-to", "type=local,dest="+cacheDir+",mode=max")
	runs := func(stderr, step string) int {
		return len(regexp.MustCompile(`(?m)^#\d+ \[[^\]]*\] RUN echo "`+step+` .* DONE `).FindAllString(stderr, -1))
	}
	if n := runs(r.stderr, "download"); n != 1 {
		t.Errorf("the shared step ran %d times, want 1:\n%s", n, r.stderr)
	}
	if n := runs(r.stderr, "compile"); n != 2 {
		t.Errorf("the per-target step ran %d times, want 2:\n%s", n, r.stderr)
	}
	for _, want := range []string{"download on x86_64", "compile for amd64 on x86_64", "compile for arm64 on x86_64"} {
		if strings.Count(r.stderr, want) != 1 {
			t.Errorf("output lacks %q once:\n%s", want, r.stderr)
		}
	}
	for _, arch := range []string{"amd64", "arm64"} {
		if data, err := os.ReadFile(filepath.Join(out, "linux_"+arch, "app")); err != nil || string(data) != arch+"\n" {
			t.Errorf("linux_%s/app = %q, %v", arch, data, err)
		}
	}

	f := regEmptyEnv(t)
	f.mustRun("load", "-i", multiBusybox(t))
	r = f.mustRun("build", dir, "--platform", "linux/amd64,linux/arm64", "--expect-cached", "--cache-from", "type=local,src="+cacheDir)
	if n := strings.Count(r.stderr, " CACHED"); n != 5 {
		t.Errorf("%d cached steps from the imported cache, want 5 (download, 2 compiles, 2 copies):\n%s", n, r.stderr)
	}
}
