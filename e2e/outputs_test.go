package e2e

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarNames lists the entry names of a plain tar and the content of want.
func tarNames(t *testing.T, data []byte, want string) (names []string, content string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, content
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		names = append(names, h.Name)
		if h.Name == want {
			b, _ := io.ReadAll(tr)
			content = string(b)
		}
	}
}

// Outputs as BuildKit has them: the rootfs as one tar (type=tar, and
// `-o -`), archives written to stdout with dest=-, and refusals that name
// the conflict.
func TestOutputsToStdoutAndTar(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo made > /made && rm /bin/ls\n",
	})
	for _, spec := range []string{"-", "type=tar,dest=-"} {
		r := e.mustRun("build", "--progress", "quiet", "-o", spec, dir)
		names, made := tarNames(t, []byte(r.stdout), "made")
		if made != "made\n" {
			t.Fatalf("-o %s: /made = %q in %d entries", spec, made, len(names))
		}
		for _, n := range names {
			if n == "bin/ls" || strings.Contains(n, ".wh.") {
				t.Fatalf("-o %s: the rootfs tar has %q: whiteouts must be applied, not written", spec, n)
			}
		}
	}
	file := filepath.Join(t.TempDir(), "rootfs.tar")
	e.mustRun("build", "--progress", "quiet", "-o", "type=tar,dest="+file, dir)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, made := tarNames(t, data, "made"); made != "made\n" {
		t.Fatalf("type=tar,dest=FILE: /made = %q", made)
	}

	// An OCI archive on stdout is what a file output would have written.
	r := e.mustRun("build", "--progress", "quiet", "-o", "type=oci,dest=-", dir)
	ociFile := filepath.Join(t.TempDir(), "img.tar")
	e.mustRun("build", "--progress", "quiet", "-o", "type=oci,dest="+ociFile, dir)
	want, err := os.ReadFile(ociFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal([]byte(r.stdout), want) {
		t.Fatalf("type=oci,dest=- wrote %d bytes, type=oci,dest=FILE %d: they differ", len(r.stdout), len(want))
	}
	if r := e.mustRun("build", "--progress", "quiet", "-o", "type=docker,dest=-", dir); !strings.Contains(r.stdout, "manifest.json") {
		t.Fatalf("type=docker,dest=- wrote no manifest.json (%d bytes)", len(r.stdout))
	}

	for _, tc := range []struct{ args, msg string }{
		{"-q -o -", "--quiet prints the image ID"},
		{"-o type=oci,dest=- -o type=tar,dest=-", "only one --output"},
		{"-o type=local,dest=-", "only type=oci, docker or tar"},
	} {
		args := append([]string{"build"}, strings.Fields(tc.args)...)
		r := e.run(append(args, dir)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.msg) || r.stdout != "" {
			t.Errorf("build %s: exit %d, stdout %d bytes, stderr %q; want exit 2 naming %q", tc.args, r.code, len(r.stdout), r.stderr, tc.msg)
		}
	}
}

// The ID `build -q` prints names the image even when nothing tags it, as
// docker's dangling images; prune drops such images.
func TestUntaggedBuildID(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo untagged > /u\n"})
	id := strings.TrimSpace(e.mustRun("build", "-q", dir).stdout)
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("build -q printed %q", id)
	}
	if r := e.mustRun("inspect", id); !strings.Contains(r.stdout, id) {
		t.Fatalf("inspect %s does not show the ID:\n%s", id, r.stdout)
	}
	e.mustRun("save", "-o", filepath.Join(t.TempDir(), "s.tar"), id)
	short := strings.TrimPrefix(id, "sha256:")[:12]
	e.mustRun("inspect", short)
	if r := e.mustRun("run", short, "cat", "/u"); r.stdout != "untagged\n" {
		t.Fatalf("run %s: %q", short, r.stdout)
	}

	if r := e.mustRun("prune"); !strings.Contains(r.stdout, "removed 1 untagged images") {
		t.Fatalf("prune did not drop the untagged image:\n%s", r.stdout)
	}
	if r := e.run("inspect", id); r.code == 0 {
		t.Fatalf("inspect %s after prune succeeded", id)
	}

	// Tagged by ID, it is an image like any other and prune keeps it.
	id = strings.TrimSpace(e.mustRun("build", "-q", dir).stdout)
	e.mustRun("tag", id, "kept:v1")
	if r := e.mustRun("prune"); strings.Contains(r.stdout, "untagged") {
		t.Fatalf("prune dropped an image once tagged:\n%s", r.stdout)
	}
	e.mustRun("inspect", "kept:v1")
	e.mustRun("inspect", id)
}
