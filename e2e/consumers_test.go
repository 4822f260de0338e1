//go:build linux

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// consumerDockerfile exercises what consumers must get right: a multi-stage
// build, owners, modes (setuid, sticky, 0600), symlinks, an empty file, a
// deleted base file (whiteout) and a dir replaced by a new one (opaque).
const consumerDockerfile = `FROM busybox AS build
RUN mkdir -p /out/bin /out/shared && echo built > /out/artifact.txt \
 && ln -s artifact.txt /out/link && chmod 0600 /out/artifact.txt \
 && chown 1000:1000 /out/artifact.txt && : > /out/empty \
 && cp /bin/busybox /out/bin/tool && chmod 4755 /out/bin/tool && chmod 1777 /out/shared
FROM busybox
COPY --from=build /out /app/
COPY app /srv/
RUN rm /bin/vi && rm -rf /var && mkdir -p /var/new && echo new > /var/new/file
USER www
CMD ["/bin/cat", "/app/artifact.txt"]
`

var consumerContext = map[string]string{
	"Dockerfile":       consumerDockerfile,
	"app/hello.txt":    "hello consumers\n",
	"app/sub/deep.txt": "deep\n",
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("skipping: %s is not installed (make deps installs it)", name)
	}
	return p
}

// tool runs an external program and returns its stdout.
func consumerTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(needTool(t, name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// inspectImage returns builder inspect's manifest digest, config digest and config.
func (e *env) inspectImage(ref string) (manifest, id string, cfg map[string]any) {
	e.t.Helper()
	var out struct {
		Digest string         `json:"digest"`
		ID     string         `json:"id"`
		Config map[string]any `json:"config"`
	}
	r := e.mustRun("inspect", ref)
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("parse inspect %s: %v", ref, err)
	}
	return out.Digest, out.ID, out.Config
}

func TestConsumers(t *testing.T) {
	needTool(t, "skopeo")
	e := newEnv(t)
	dir := t.TempDir()
	ociTar, dockerTar, local := filepath.Join(dir, "out.tar"), filepath.Join(dir, "docker.tar"), filepath.Join(dir, "local")
	e.mustRun("build", writeContext(t, consumerContext), "-t", "app:v1",
		"-o", "type=oci,dest="+ociTar, "-o", "type=docker,dest="+dockerTar, "-o", "type=local,dest="+local)
	manifest, id, cfg := e.inspectImage("app:v1")
	diffIDs := cfg["rootfs"].(map[string]any)["diff_ids"].([]any)

	t.Run("skopeo-inspect-oci-archive", func(t *testing.T) {
		got := skopeoInspect(t, "oci-archive:"+ociTar)
		if got.Digest != manifest || len(got.Layers) != len(diffIDs) || got.Architecture != cfg["architecture"] {
			t.Fatalf("skopeo sees digest %s, %d layers, arch %s; want %s, %d, %s",
				got.Digest, len(got.Layers), got.Architecture, manifest, len(diffIDs), cfg["architecture"])
		}
	})
	t.Run("umoci-unpack", func(t *testing.T) {
		needTool(t, "umoci")
		layout := filepath.Join(t.TempDir(), "layout")
		consumerTool(t, "skopeo", "--insecure-policy", "copy", "-q", "oci-archive:"+ociTar, "oci:"+layout+":app")
		bundle := filepath.Join(t.TempDir(), "bundle")
		consumerTool(t, "umoci", "unpack", "--image", layout+":app", bundle)
		compareTrees(t, local, filepath.Join(bundle, "rootfs"))
	})
	t.Run("skopeo-inspect-docker-archive", func(t *testing.T) {
		got := skopeoInspect(t, "docker-archive:"+dockerTar)
		if len(got.Layers) != len(diffIDs) || got.Architecture != cfg["architecture"] {
			t.Fatalf("skopeo sees %d layers, arch %s; want %d, %s", len(got.Layers), got.Architecture, len(diffIDs), cfg["architecture"])
		}
		// The image ID (config digest) survives the docker format.
		raw := consumerTool(t, "skopeo", "inspect", "--raw", "docker-archive:"+dockerTar)
		var m struct {
			Config struct{ Digest string } `json:"config"`
		}
		if err := json.Unmarshal([]byte(raw), &m); err != nil || m.Config.Digest != id {
			t.Fatalf("docker-archive config digest %q (err %v), want %s", m.Config.Digest, err, id)
		}
	})
	t.Run("skopeo-inspect-store", func(t *testing.T) {
		got := skopeoInspect(t, "oci:"+e.root+":app:v1")
		if got.Digest != manifest {
			t.Fatalf("oci:<root>:app:v1 has digest %s, want %s", got.Digest, manifest)
		}
	})
	t.Run("save-load", func(t *testing.T) {
		for _, format := range []string{"oci", "docker"} {
			saved := filepath.Join(t.TempDir(), format+".tar")
			e.mustRun("save", "--format", format, "-o", saved, "app:v1")
			fresh := &env{t: t, bin: e.bin, root: filepath.Join(t.TempDir(), "root")}
			fresh.mustRun("load", "-i", saved)
			gotManifest, gotID, _ := fresh.inspectImage("app:v1")
			if gotID != id {
				t.Errorf("%s: loaded image ID %s, want %s", format, gotID, id)
			}
			if format == "oci" && gotManifest != manifest {
				t.Errorf("oci: loaded manifest %s, want %s", gotManifest, manifest)
			}
		}
	})
}

type skopeoImage struct {
	Digest       string
	Architecture string
	Layers       []string
}

func skopeoInspect(t *testing.T, ref string) skopeoImage {
	t.Helper()
	var img skopeoImage
	out := consumerTool(t, "skopeo", "inspect", ref)
	if err := json.Unmarshal([]byte(out), &img); err != nil {
		t.Fatalf("parse skopeo inspect %s: %v\n%s", ref, err, out)
	}
	return img
}

// compareTrees checks that two rootfs trees hold the same paths with the
// same type, mode, owner, size, link target and content.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	index := func(root string) map[string]string {
		m := map[string]string{}
		for _, e := range listTree(t, root) {
			line := e.line
			if strings.HasPrefix(line, "f ") || strings.HasPrefix(line, "h ") {
				data, err := os.ReadFile(filepath.Join(root, e.path))
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(data)
				line += " sha256:" + hex.EncodeToString(sum[:8])
			}
			m[e.path] = line
		}
		return m
	}
	w, g := index(want), index(got)
	if len(w) < 100 {
		t.Fatalf("our export has only %d paths", len(w))
	}
	for p, wl := range w {
		if gl, ok := g[p]; !ok {
			t.Errorf("missing in consumer's rootfs: %s", wl)
		} else if gl != wl {
			t.Errorf("differs:\n ours:     %s\n consumer: %s", wl, gl)
		}
	}
	for p, gl := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("only in consumer's rootfs: %s", gl)
		}
	}
	for _, p := range []string{"/bin/vi", "/var/new/file", "/app/bin/tool", "/srv/sub/deep.txt"} {
		_, inW := w[p]
		if (p == "/bin/vi") == inW {
			t.Errorf("%s: present=%t in our export, wrong", p, inW)
		}
	}
}

// TestReproducible builds one Dockerfile in two fresh stores from two
// copies of its context made at different times: with SOURCE_DATE_EPOCH
// the manifests are identical, with gzip and with zstd layers.
func TestReproducible(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	ctxA := writeContext(t, consumerContext)
	ctxB := writeContext(t, consumerContext)
	epoch := []string{"SOURCE_DATE_EPOCH=0"}
	var gz string
	for _, comp := range []string{"gzip", "zstd"} {
		var digests []string
		for i, e := range []*env{a, b} {
			ctx := []string{ctxA, ctxB}[i]
			r := e.runEnv(epoch, "", "build", ctx, "-t", "repro:"+comp, "--compression", comp)
			if r.code != 0 {
				t.Fatalf("build %s: exit %d\n%s", comp, r.code, r.stderr)
			}
			m, _, cfg := e.inspectImage("repro:" + comp)
			if cfg["created"] != "1970-01-01T00:00:00Z" {
				t.Errorf("%s: created %v, want the epoch", comp, cfg["created"])
			}
			digests = append(digests, m)
		}
		if digests[0] != digests[1] {
			t.Errorf("%s: two builds gave manifests %s and %s", comp, digests[0], digests[1])
		}
		if comp == "gzip" {
			gz = digests[0]
		} else if digests[0] == gz {
			t.Errorf("zstd and gzip builds have the same manifest %s", gz)
		}
	}
	// The zstd layers we made are zstd.
	raw := a.mustRun("inspect", "repro:zstd").stdout
	if !strings.Contains(raw, "application/vnd.oci.image.layer.v1.tar+zstd") {
		t.Errorf("repro:zstd has no zstd layer:\n%s", raw)
	}
}
