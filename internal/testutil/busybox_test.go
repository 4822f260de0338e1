package testutil

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(defaultBusybox); err != nil {
		t.Skipf("skipping: %s not found (apt-get install busybox-static): %v", defaultBusybox, err)
	}
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("skipping: %s not installed: %v", name, err)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func writeBusybox(t *testing.T, opts BusyboxOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "busybox.tar")
	if err := WriteBusyboxImage(path, opts); err != nil {
		t.Fatalf("WriteBusyboxImage: %v", err)
	}
	return path
}

// readArchive returns the regular files of a tar by name.
func readArchive(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := make(map[string][]byte)
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[hdr.Name] = b
		}
	}
}

func blob(t *testing.T, files map[string][]byte, d digest.Digest, v any) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+d.Encoded()]
	if !ok {
		t.Fatalf("blob %s missing from archive", d)
	}
	if got := digest.FromBytes(b); got != d {
		t.Fatalf("blob %s has digest %s", d, got)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("decode blob %s: %v", d, err)
		}
	}
	return b
}

func TestWriteBusyboxImageDeterministic(t *testing.T) {
	requireBusybox(t)
	a := writeBusybox(t, BusyboxOptions{})
	b := writeBusybox(t, BusyboxOptions{})
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatalf("two writes differ: %d vs %d bytes", len(ab), len(bb))
	}
	c := writeBusybox(t, BusyboxOptions{Name: "example.com/bb:v1", Tag: "v1"})
	cb, _ := os.ReadFile(c)
	if bytes.Equal(ab, cb) {
		t.Fatal("a different name gave the same archive")
	}
}

func TestWriteBusyboxImageContent(t *testing.T) {
	requireBusybox(t)
	tests := []struct {
		opts      BusyboxOptions
		name, tag string
	}{
		{BusyboxOptions{}, "busybox:latest", "latest"},
		{BusyboxOptions{Busybox: defaultBusybox, Name: "localhost/bb:1", Tag: "1"}, "localhost/bb:1", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := readArchive(t, writeBusybox(t, tt.opts))
			if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
				t.Errorf("oci-layout = %s", got)
			}
			var index ocispec.Index
			if err := json.Unmarshal(files["index.json"], &index); err != nil {
				t.Fatalf("decode index.json: %v", err)
			}
			if len(index.Manifests) != 1 {
				t.Fatalf("index has %d manifests, want 1", len(index.Manifests))
			}
			md := index.Manifests[0]
			if md.MediaType != ocispec.MediaTypeImageManifest ||
				md.Annotations[ocispec.AnnotationRefName] != tt.tag ||
				md.Annotations["io.containerd.image.name"] != tt.name {
				t.Errorf("index entry = %+v", md)
			}
			var m ocispec.Manifest
			blob(t, files, md.Digest, &m)
			if len(m.Layers) != 1 || m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
				t.Fatalf("manifest layers = %+v", m.Layers)
			}
			var cfg ocispec.Image
			blob(t, files, m.Config.Digest, &cfg)
			if cfg.Architecture != runtime.GOARCH || cfg.OS != "linux" ||
				strings.Join(cfg.Config.Cmd, " ") != "sh" || len(cfg.Config.Env) != 1 ||
				len(cfg.History) != 1 || len(cfg.RootFS.DiffIDs) != 1 {
				t.Errorf("config = %+v", cfg)
			}
			compressed := blob(t, files, m.Layers[0].Digest, nil)
			zr, err := gzip.NewReader(bytes.NewReader(compressed))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if got := digest.FromBytes(raw); got != cfg.RootFS.DiffIDs[0] {
				t.Errorf("diffID = %s, config says %s", got, cfg.RootFS.DiffIDs[0])
			}
			checkLayer(t, raw)
		})
	}
}

// checkLayer compares the layer listing, without the applet symlinks, with
// the golden file and checks there is one symlink per applet.
func checkLayer(t *testing.T, raw []byte) {
	t.Helper()
	applets, err := busyboxApplets(defaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]bool)
	for _, a := range applets {
		want["bin/"+a] = true
	}
	var listing strings.Builder
	prev := ""
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name <= prev {
			t.Errorf("entry %s after %s: not sorted", hdr.Name, prev)
		}
		prev = hdr.Name
		if hdr.Uname != "" || hdr.Gname != "" || !hdr.ModTime.Equal(fixedTime()) {
			t.Errorf("%s: uname %q gname %q mtime %v", hdr.Name, hdr.Uname, hdr.Gname, hdr.ModTime)
		}
		if want[hdr.Name] {
			if hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != "busybox" {
				t.Errorf("%s: type %c link %q, want symlink to busybox", hdr.Name, hdr.Typeflag, hdr.Linkname)
			}
			delete(want, hdr.Name)
			continue
		}
		body, _ := io.ReadAll(tr)
		sum := ""
		if hdr.Typeflag == tar.TypeReg && hdr.Name != "bin/busybox" {
			sum = " " + digest.FromBytes(body).Encoded()[:12]
		}
		kind := map[byte]string{tar.TypeDir: "d", tar.TypeReg: "-", tar.TypeSymlink: "l"}[hdr.Typeflag]
		if kind == "" {
			kind = "?" + string(hdr.Typeflag)
		}
		fmt.Fprintf(&listing, "%s %04o %d:%d %s%s\n", kind, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Name, sum)
	}
	if len(want) != 0 {
		t.Errorf("%d applets have no symlink, e.g. %v", len(want), want)
	}
	golden := filepath.Join("testdata", "busybox-layer.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(listing.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantListing, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if listing.String() != string(wantListing) {
		t.Errorf("layer listing differs from %s:\n got:\n%s\nwant:\n%s", golden, listing.String(), wantListing)
	}
}

func TestWriteBusyboxImageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts BusyboxOptions
	}{
		{"missing busybox", filepath.Join(dir, "a.tar"), BusyboxOptions{Busybox: filepath.Join(dir, "nope")}},
		{"not busybox", filepath.Join(dir, "b.tar"), BusyboxOptions{Busybox: "/bin/false"}},
		{"missing output dir", filepath.Join(dir, "no", "c.tar"), BusyboxOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteBusyboxImage(tt.path, tt.opts); err == nil {
				t.Fatal("no error")
			}
			if _, err := os.Stat(tt.path); !os.IsNotExist(err) {
				t.Errorf("output exists after failure: %v", err)
			}
		})
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".busybox-*")); len(leftovers) != 0 {
		t.Errorf("temp files left: %v", leftovers)
	}
}

func TestBusyboxSkopeoInspect(t *testing.T) {
	requireBusybox(t)
	skopeo := requireTool(t, "skopeo")
	path := writeBusybox(t, BusyboxOptions{})
	var info struct {
		Digest       digest.Digest
		Architecture string
		Os           string
		Layers       []string
	}
	if err := json.Unmarshal([]byte(run(t, skopeo, "inspect", "oci-archive:"+path)), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Layers) != 1 || info.Architecture != runtime.GOARCH || info.Os != "linux" {
		t.Errorf("skopeo inspect = %+v, want 1 layer, %s/linux", info, runtime.GOARCH)
	}
}
