package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/opencontainers/go-digest"
)

type skopeoInspect struct {
	Digest   digest.Digest
	RepoTags []string
	Layers   []string
}

func inspect(t *testing.T, args ...string) skopeoInspect {
	t.Helper()
	var out skopeoInspect
	if err := json.Unmarshal([]byte(run(t, "skopeo", append([]string{"inspect"}, args...)...)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func inspectDiffIDs(t *testing.T, ref string) []digest.Digest {
	t.Helper()
	var cfg struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal([]byte(run(t, "skopeo", "inspect", "--config", ref)), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.RootFS.DiffIDs
}

func TestExportFormats(t *testing.T) {
	requireTool(t, "skopeo")
	ctx := context.Background()
	s := openStore(t)
	img := makeImage(t, s, "app:v1", map[string]string{"hello.txt": "hello world\n", "etc/os": "test"})
	md, cd := img.Descriptor.Digest, img.Manifest.Config.Digest
	resolved, err := s.Resolve(t.Context(), "app:v1")
	if err != nil {
		t.Fatal(err)
	}
	images := []*Image{resolved}
	dir := t.TempDir()

	// The store itself is an OCI layout.
	if got := inspect(t, "oci:"+s.Root()+":app:v1"); got.Digest != md {
		t.Errorf("skopeo inspect store: digest %s, want %s", got.Digest, md)
	}

	ociTar := filepath.Join(dir, "app-oci.tar")
	if err := s.Export(ctx, ociTar, FormatOCI, images); err != nil {
		t.Fatal(err)
	}
	if got := inspect(t, "oci-archive:"+ociTar); got.Digest != md {
		t.Errorf("skopeo inspect oci-archive: digest %s, want %s", got.Digest, md)
	}
	if got := inspect(t, "oci-archive:"+ociTar+":app:v1"); got.Digest != md {
		t.Errorf("skopeo inspect oci-archive by name: digest %s", got.Digest)
	}

	dockerTar := filepath.Join(dir, "app-docker.tar")
	if err := s.Export(ctx, dockerTar, FormatDocker, images); err != nil {
		t.Fatal(err)
	}
	if got := inspect(t, "docker-archive:"+dockerTar+":app:v1"); len(got.Layers) != 1 {
		t.Errorf("skopeo inspect docker-archive = %+v", got)
	}
	if got := inspectDiffIDs(t, "docker-archive:"+dockerTar); !slices.Equal(got, img.Config.RootFS.DiffIDs) {
		t.Errorf("docker-archive diff_ids = %v", got)
	}

	layoutDir := filepath.Join(dir, "layout")
	if err := s.Export(ctx, layoutDir, FormatOCILayout, images); err != nil {
		t.Fatal(err)
	}
	if got := inspect(t, "oci:"+layoutDir+":app:v1"); got.Digest != md {
		t.Errorf("skopeo inspect oci layout: digest %s", got.Digest)
	}
	// Merging a second image keeps the first.
	other := makeImage(t, s, "other:v2", map[string]string{"x": "y"})
	if err := s.Export(ctx, layoutDir, FormatOCILayout, []*Image{other}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]digest.Digest{"app:v1": md, "other:v2": other.Descriptor.Digest} {
		if got := inspect(t, "oci:"+layoutDir+":"+name); got.Digest != want {
			t.Errorf("merged layout %s: digest %s", name, got.Digest)
		}
	}

	// Load every format back into a fresh store.
	for _, src := range []string{ociTar, dockerTar, layoutDir} {
		fresh := openStore(t)
		names, err := fresh.Load(ctx, src)
		if err != nil {
			t.Fatalf("Load %s: %v", src, err)
		}
		if !slices.Contains(names, "app:v1") {
			t.Errorf("Load %s = %v", src, names)
		}
		got, err := fresh.Resolve(t.Context(), "app:v1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Descriptor.Digest != md || got.Manifest.Config.Digest != cd {
			t.Errorf("Load %s: manifest %s config %s", src, got.Descriptor.Digest, got.Manifest.Config.Digest)
		}
	}

	// Exports are deterministic.
	again := filepath.Join(dir, "again.tar")
	if err := s.Export(ctx, again, FormatDocker, images); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, again), readFile(t, dockerTar)) {
		t.Error("two docker exports differ")
	}
	for _, f := range testutil.ReadTar(t, again) {
		h := f.Header
		if h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 || (h.Mode != 0o644 && h.Mode != 0o755) {
			t.Errorf("entry %s: mtime %v uid %d gid %d mode %o", h.Name, h.ModTime, h.Uid, h.Gid, h.Mode)
		}
	}
	if entries, _ := os.ReadDir(dir); slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.Contains(e.Name(), ".tmp-") }) {
		t.Error("temp files left next to the exports")
	}
}

func TestExportUnpack(t *testing.T) {
	requireTool(t, "skopeo")
	requireTool(t, "umoci")
	ctx := context.Background()
	s := openStore(t)
	img := makeImage(t, s, "app:v1", map[string]string{"hello.txt": "hello world\n"})
	dir := t.TempDir()
	ociTar := filepath.Join(dir, "app.tar")
	if err := s.Export(ctx, ociTar, FormatOCI, []*Image{img}); err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(dir, "copy")
	run(t, "skopeo", "copy", "-q", "oci-archive:"+ociTar, "oci:"+layout+":tag")
	bundle := filepath.Join(dir, "bundle")
	args := []string{"unpack", "--image", layout + ":tag", bundle}
	if os.Geteuid() != 0 {
		args = append([]string{"--rootless"}, args...)
		args[0], args[1] = args[1], args[0]
	}
	run(t, "umoci", args...)
	if got := string(readFile(t, filepath.Join(bundle, "rootfs", "hello.txt"))); got != "hello world\n" {
		t.Errorf("unpacked hello.txt = %q", got)
	}
	// skopeo kept the manifest as is.
	fresh := openStore(t)
	names, err := fresh.Load(ctx, layout)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"copy:tag"}) {
		t.Errorf("Load(skopeo layout) = %v", names)
	}
	got, err := fresh.Resolve(t.Context(), "copy:tag")
	if err != nil || got.Descriptor.Digest != img.Descriptor.Digest {
		t.Errorf("Resolve(copy:tag) = %+v, %v", got, err)
	}
}

func TestLoadSkopeoDockerArchive(t *testing.T) {
	requireTool(t, "skopeo")
	ctx := context.Background()
	s := openStore(t)
	img := makeImage(t, s, "app:v1", map[string]string{"hello.txt": "hello world\n", "a/b": "c"})
	dir := t.TempDir()
	ociTar := filepath.Join(dir, "app.tar")
	if err := s.Export(ctx, ociTar, FormatOCI, []*Image{img}); err != nil {
		t.Fatal(err)
	}
	dockerTar := filepath.Join(dir, "skopeo-docker.tar")
	run(t, "skopeo", "copy", "-q", "oci-archive:"+ociTar, "docker-archive:"+dockerTar+":example.com/team/app:v2")

	fresh := openStore(t)
	names, err := fresh.Load(ctx, dockerTar)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"example.com/team/app:v2"}) {
		t.Fatalf("Load = %v", names)
	}
	got, err := fresh.Resolve(t.Context(), "example.com/team/app:v2")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Config.RootFS.DiffIDs, img.Config.RootFS.DiffIDs) {
		t.Errorf("diff_ids %v, want %v", got.Config.RootFS.DiffIDs, img.Config.RootFS.DiffIDs)
	}
	if got.Manifest.Config.Digest != img.Manifest.Config.Digest {
		t.Errorf("config %s, want %s", got.Manifest.Config.Digest, img.Manifest.Config.Digest)
	}
	// Uncompressed layers: stored as is, digest == diff_id.
	l := got.Manifest.Layers[0]
	if l.MediaType != "application/vnd.oci.image.layer.v1.tar" || l.Digest != img.Config.RootFS.DiffIDs[0] {
		t.Errorf("layer = %+v", l)
	}
	rc, err := fresh.OpenBlob(t.Context(), l.Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	// And it round-trips through our own exports.
	out := filepath.Join(dir, "again.tar")
	if err := fresh.Export(ctx, out, FormatDocker, []*Image{got}); err != nil {
		t.Fatal(err)
	}
	if ids := inspectDiffIDs(t, "docker-archive:"+out); !slices.Equal(ids, img.Config.RootFS.DiffIDs) {
		t.Errorf("re-exported diff_ids = %v", ids)
	}
}
