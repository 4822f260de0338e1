//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// diffReport is the part of `builder diff --format json` the tests read.
type diffReport struct {
	Identical bool `json:"identical"`
	Config    []struct {
		Path string          `json:"path"`
		A    json.RawMessage `json:"a"`
		B    json.RawMessage `json:"b"`
	} `json:"config"`
	Layers []struct {
		Index       int  `json:"index"`
		SameContent bool `json:"same_content"`
		Files       []struct {
			Path   string `json:"path"`
			Change string `json:"change"`
			Attrs  []struct {
				Name string `json:"name"`
				A, B string
			} `json:"attrs"`
		} `json:"files"`
	} `json:"layers"`
}

func (e *env) diffJSON(a, b string) (diffReport, result) {
	e.t.Helper()
	r := e.run("diff", "--format", "json", a, b)
	var rep diffReport
	if r.code == 0 || r.code == 1 {
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			e.t.Fatalf("diff %s %s: %v\n%s", a, b, err, r.stdout)
		}
	}
	return rep, r
}

// fileChanges lists "change path attr,attr" for every file of every layer.
func (rep diffReport) fileChanges() []string {
	var out []string
	for _, l := range rep.Layers {
		for _, f := range l.Files {
			s := f.Change + " " + f.Path
			var names []string
			for _, a := range f.Attrs {
				names = append(names, a.Name)
			}
			if len(names) > 0 {
				s += " " + strings.Join(names, ",")
			}
			out = append(out, s)
		}
	}
	return out
}

// TestDiff compares images of the store with each other and with their
// exports: OCI tar, OCI layout dir, docker-archive tar.
func TestDiff(t *testing.T) {
	e := newEnv(t)
	base := map[string]string{"Dockerfile": "FROM busybox\nCOPY . /app/\nRUN rm /app/gone && chmod 600 /app/mode\n",
		"same": "same\n", "changed": "one\n", "gone": "x\n", "mode": "m\n"}
	v2 := map[string]string{"Dockerfile": base["Dockerfile"] + "ENV V=2\n",
		"same": "same\n", "changed": "two\n", "gone": "x\n", "mode": "m\n", "added": "new\n"}
	dir := t.TempDir()
	ociTar, dockerTar, layout := filepath.Join(dir, "v1.tar"), filepath.Join(dir, "v1-docker.tar"), filepath.Join(dir, "layout")
	e.mustRun("build", writeContext(t, base), "-t", "app:v1", "--source-date-epoch", epoch,
		"-o", "type=oci,dest="+ociTar, "-o", "type=docker,dest="+dockerTar, "-o", "type=oci-layout,dest="+layout)
	e.mustRun("build", writeContext(t, v2), "-t", "app:v2", "--source-date-epoch", epoch)

	manifest, _, _ := e.inspectImage("app:v1")
	for _, other := range []string{"app:v1", ociTar, "oci-archive:" + ociTar, layout, "oci:" + layout} {
		r := e.run("diff", "app:v1", other)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "identical: "+manifest {
			t.Errorf("diff app:v1 %s: exit %d, want 0 and identical\n%s%s", other, r.code, r.stdout, r.stderr)
		}
	}
	// A docker-archive holds the same config and layer blobs; loading it
	// gives back the same OCI manifest.
	if r := e.run("diff", "app:v1", "docker-archive:"+dockerTar); r.code != 0 {
		t.Errorf("diff with its docker-archive: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}

	rep, r := e.diffJSON("app:v1", "app:v2")
	if r.code != 1 || rep.Identical {
		t.Fatalf("diff app:v1 app:v2: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	got := strings.Join(rep.fileChanges(), "\n")
	for _, want := range []string{"added /app/added", "changed /app/changed content"} {
		if !strings.Contains(got, want) {
			t.Errorf("file changes lack %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"/app/same", "/app/mode", "/app/gone"} {
		if strings.Contains(got, not+"\n") || strings.HasSuffix(got, not) {
			t.Errorf("%s did not change, but is listed:\n%s", not, got)
		}
	}
	hasEnv := false
	for _, c := range rep.Config {
		hasEnv = hasEnv || strings.HasPrefix(c.Path, "config.Env")
	}
	if !hasEnv {
		t.Errorf("config differences lack config.Env: %+v", rep.Config)
	}
	text := e.run("diff", "app:v1", "app:v2")
	if text.code != 1 || !strings.Contains(text.stdout, "changed /app/changed: content sha256:") {
		t.Errorf("text diff: exit %d\n%s", text.code, text.stdout)
	}

	// Trouble is exit 2, with the reason.
	for _, args := range [][]string{{"app:v1", "nosuch:v9"}, {"app:v1", "oci-archive:" + filepath.Join(dir, "missing.tar")}} {
		r := e.run(append([]string{"diff"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "error:") {
			t.Errorf("diff %v: exit %d, want 2 and an error\n%s", args, r.code, r.stderr)
		}
	}
	garbage := filepath.Join(dir, "garbage.tar")
	if err := os.WriteFile(garbage, []byte("not a tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.run("diff", "app:v1", garbage); r.code != 2 {
		t.Errorf("diff with garbage: exit %d, want 2\n%s", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "tmp")); len(ents) != 0 {
		t.Errorf("diff left scratch stores in tmp: %v", ents)
	}
}

// TestDiffBuildah: diff reads images made by another builder. Two buildah
// builds of one Dockerfile differ in their times (buildah stamps them);
// the file that RUN wrote from the clock is named.
func TestDiffBuildah(t *testing.T) {
	buildah := needTool(t, "buildah")
	e := newEnv(t)
	dir := t.TempDir()
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM oci-archive:" + busyboxTar(t) + "\nCOPY hello /hello\nRUN date +%s%N > /stamp && echo same > /same\n",
		"hello":      "hello\n",
	})
	store := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs"}
	t.Cleanup(func() { _ = exec.Command(buildah, append(store, "rmi", "--all", "--force")...).Run() })
	var tars []string
	for i, format := range []string{"oci-archive", "docker-archive"} {
		tag := "localhost/b:" + format
		out, err := exec.Command(buildah, append(store, "bud", "--isolation", "chroot", "--layers=false", "-t", tag, ctx)...).CombinedOutput()
		if err != nil {
			t.Fatalf("buildah bud: %v\n%s", err, out)
		}
		tar := filepath.Join(dir, format+".tar")
		if out, err := exec.Command(buildah, append(store, "push", tag, format+":"+tar)...).CombinedOutput(); err != nil {
			t.Fatalf("buildah push %d: %v\n%s", i, err, out)
		}
		tars = append(tars, tar)
	}
	if r := e.run("diff", tars[0], tars[0]); r.code != 0 || !strings.HasPrefix(r.stdout, "identical: sha256:") {
		t.Errorf("buildah image vs itself: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	rep, r := e.diffJSON(tars[0], tars[1])
	if r.code != 1 {
		t.Fatalf("two buildah builds: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	changes := strings.Join(rep.fileChanges(), "\n")
	if !strings.Contains(changes, "changed /stamp") || strings.Contains(changes, "/hello") {
		t.Errorf("two buildah builds: want /stamp changed and /hello not:\n%s", r.stdout)
	}
	created := false
	for _, c := range rep.Config {
		created = created || c.Path == "created"
	}
	if !created {
		t.Errorf("two buildah builds: config created does not differ:\n%s", r.stdout)
	}
	// Loading keeps buildah's blobs: the stored image is its archive's.
	name := strings.TrimSpace(e.mustRun("load", "-i", tars[0]).stdout)
	name = name[strings.LastIndex(name, " ")+1:]
	if r := e.run("diff", name, tars[0]); r.code != 0 {
		t.Errorf("loaded buildah image vs its archive: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Against our build of the COPY alone: buildah recompressed the base
	// layer (same content), and its one squashed layer holds the RUN's
	// files and the sandbox's /etc mount points (which ours never do).
	ours := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY hello /hello\n", "hello": "hello\n"})
	e.mustRun("build", ours, "-t", "ours")
	rep, r = e.diffJSON("ours", tars[0])
	if r.code != 1 || len(rep.Layers) != 2 || !rep.Layers[0].SameContent {
		t.Fatalf("ours vs buildah: exit %d, want 1, base layer same content, layer 1 differing\n%s%s", r.code, r.stdout, r.stderr)
	}
	changes = strings.Join(rep.fileChanges(), "\n")
	for _, want := range []string{"added /stamp", "added /same", "added /etc/hosts"} {
		if !strings.Contains(changes, want) {
			t.Errorf("ours vs buildah: %q not listed:\n%s", want, changes)
		}
	}
}
