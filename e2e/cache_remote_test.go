package e2e

// Cache that travels: --cache-to in one store (a CI runner), --cache-from
// in another, empty one (the next runner), against a real registry or a
// directory. Imports are lazy: a layer blob is downloaded only when a
// later step or the kept image needs its bytes.

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

// The two-stage Dockerfile of these tests: 2 layers in the build stage,
// 3 in the final image on top of busybox's.
const remoteDockerfile = `FROM busybox:latest AS build
COPY src /src
RUN cat /src/a /src/b > /out && echo stage >> /out
FROM busybox:latest
COPY --from=build /out /out
RUN echo final > /final
COPY app /app
`

func remoteContext(t *testing.T, app string) string {
	t.Helper()
	return writeContext(t, map[string]string{"Dockerfile": remoteDockerfile, "src/a": "a\n", "src/b": "b\n", "app": app})
}

var (
	importLine = regexp.MustCompile(`(?m)^cache: imported (\d+) records from (\S+ \S+); fetched (\d+) layers`)
	exportLine = regexp.MustCompile(`(?m)^cache: exported (\d+) records to (\S+ \S+); uploaded (\d+) layers`)
	notKept    = "not kept in the store"
)

// fetched is the number of layer blobs the build downloaded from its cache.
func fetched(t *testing.T, stderr string) int {
	t.Helper()
	m := importLine.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no cache import line:\n%s", stderr)
	}
	n, _ := strconv.Atoi(m[3])
	return n
}

// freshEnv is another runner: a new store with only busybox loaded.
func freshEnv(t *testing.T, e *env) *env {
	t.Helper()
	other := &env{t: t, bin: e.bin, root: filepath.Join(t.TempDir(), "root"), env: e.env}
	other.mustRun("load", "-i", busyboxTar(t))
	return other
}

func TestCacheRegistryFreshRunner(t *testing.T) {
	a := newEnv(t)
	reg := testutil.StartRegistry(t)
	cacheRef := reg + "/cache:main"
	dir := remoteContext(t, "app v1\n")

	// Runner A: a cold build exporting every step of every stage.
	r := a.mustRun("build", "--progress", "plain", dir, "-t", "app:a", "--cache-to", "type=registry,ref="+cacheRef+",mode=max")
	want := manifestOf(t, r.stderr)
	if m := exportLine.FindStringSubmatch(r.stderr); m == nil || m[1] != "5" {
		t.Fatalf("export: want 5 records exported:\n%s", r.stderr)
	}

	// Runner B pushes to the same registry: every step a hit, the same
	// image, and not one layer downloaded (mounted from the cache's repo).
	b := freshEnv(t, a)
	r = b.mustRun("build", "--progress", "plain", dir, "-t", reg+"/app:b", "--push", "--cache-from", "type=registry,ref="+cacheRef)
	if got := stepStates(r.stderr); got != "HHHHH" {
		t.Errorf("fresh runner: states %q, want every step cached\n%s", got, r.stderr)
	}
	if got := manifestOf(t, r.stderr); got != want {
		t.Errorf("fresh runner built %s, runner A %s", got, want)
	}
	if !strings.Contains(r.stderr, "CACHED (registry "+cacheRef+")") {
		t.Errorf("progress does not say where the hits came from:\n%s", r.stderr)
	}
	if n := fetched(t, r.stderr); n != 0 {
		t.Errorf("pushed to the cache's registry: %d layer blobs downloaded, want 0\n%s", n, r.stderr)
	}
	lines := regBlobLines(r.stderr, "push", reg+"/app:b")
	if countLines(strings.Join(lines, "\n"), "mounted from cache") != 3 {
		t.Errorf("push: want the 3 layers of the build mounted from the cache repository:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(r.stderr, notKept) {
		t.Errorf("an image whose layers are only in the registry was kept in the store:\n%s", r.stderr)
	}
	b.mustCheck(t)
	regSkopeo(t, "inspect", "--tls-verify=false", "docker://"+reg+"/app:b")

	// Runner C keeps the image: exactly the final image's 3 layers are
	// downloaded (never the build stage's 2), and the store is a complete
	// OCI layout that skopeo copies the image out of.
	c := freshEnv(t, a)
	r = c.mustRun("build", "--progress", "plain", dir, "-t", "app:c", "--cache-from", "type=registry,ref="+cacheRef)
	if got := stepStates(r.stderr); got != "HHHHH" {
		t.Errorf("kept: states %q, want every step cached\n%s", got, r.stderr)
	}
	if got := manifestOf(t, r.stderr); got != want {
		t.Errorf("kept: built %s, runner A %s", got, want)
	}
	if n := fetched(t, r.stderr); n != 3 {
		t.Errorf("kept: %d layer blobs downloaded, want the final image's 3\n%s", n, r.stderr)
	}
	c.mustCheck(t)
	regSkopeo(t, "copy", "oci:"+c.root+":app:c", "oci-archive:"+filepath.Join(t.TempDir(), "c.tar"))
	// The records of fetched layers are local ones now: a rebuild with the
	// same --cache-from downloads nothing more, and without it only the
	// build stage's first step (whose layer nothing needed) runs again.
	r = c.mustRun("build", "--progress", "plain", dir, "-t", "app:c", "--cache-from", "type=registry,ref="+cacheRef)
	if got := stepStates(r.stderr); got != "HHHHH" || fetched(t, r.stderr) != 0 {
		t.Errorf("rebuild with the cache: states %q, want all cached and nothing fetched\n%s", got, r.stderr)
	}
	if got, _ := c.buildStates(t, dir, "-t", "app:c"); got != "MHHHH" {
		t.Errorf("rebuild without the cache: states %q, want only the unfetched first step to run", got)
	}

	// A changed file misses from its step on; only that step's parents
	// (the final stage's 2 layers below it) are downloaded.
	d := freshEnv(t, a)
	dir2 := remoteContext(t, "app v2\n")
	r = d.mustRun("build", "--progress", "plain", dir2, "-t", "app:d", "--cache-from", "type=registry,ref="+cacheRef)
	if got := stepStates(r.stderr); got != "HHHHM" {
		t.Errorf("one change: states %q, want the last COPY to miss\n%s", got, r.stderr)
	}
	if n := fetched(t, r.stderr); n != 2 {
		t.Errorf("one change: %d layer blobs downloaded, want the 2 below the changed step\n%s", n, r.stderr)
	}
	d.mustCheck(t)
}

func TestCacheLocalDir(t *testing.T) {
	a := newEnv(t)
	cacheDir := filepath.Join(t.TempDir(), "ci-cache")
	dir := remoteContext(t, "app v1\n")
	r := a.mustRun("build", "--progress", "plain", dir, "-t", "app:a", "--cache-to", "type=local,dest="+cacheDir+",mode=max")
	want := manifestOf(t, r.stderr)
	// A second export to the same dir (as the next CI job does) keeps it valid.
	a.mustRun("build", "--progress", "plain", dir, "-t", "app:a", "--cache-to", "type=local,dest="+cacheDir+",mode=max")
	if raw := regSkopeo(t, "inspect", "--raw", "oci:"+cacheDir+":builder/cache:latest"); !strings.Contains(raw, "application/vnd.builder.cache.v1+json") {
		t.Errorf("the cache dir is not an OCI layout holding the cache manifest:\n%s", raw)
	}

	b := freshEnv(t, a)
	r = b.mustRun("build", "--progress", "plain", dir, "-t", "app:b", "--cache-from", "type=local,src="+cacheDir)
	if got := stepStates(r.stderr); got != "HHHHH" {
		t.Errorf("local cache: states %q\n%s", got, r.stderr)
	}
	if got := manifestOf(t, r.stderr); got != want {
		t.Errorf("local cache: built %s, want %s", got, want)
	}
	if n := fetched(t, r.stderr); n != 3 {
		t.Errorf("local cache: %d blobs copied, want the final image's 3", n)
	}
	b.mustCheck(t)

	// mode=min (the default) holds the final image's steps only.
	minDir := filepath.Join(t.TempDir(), "min")
	r = a.mustRun("build", "--progress", "plain", dir, "-t", "app:a", "--cache-to", "type=local,dest="+minDir)
	if m := exportLine.FindStringSubmatch(r.stderr); m == nil || m[1] != "3" {
		t.Errorf("mode=min: want the final image's 3 records exported:\n%s", r.stderr)
	}
}

func TestCacheInline(t *testing.T) {
	a := newEnv(t)
	reg := testutil.StartRegistry(t)
	dir := remoteContext(t, "app v1\n")
	r := a.mustRun("build", "--progress", "plain", dir, "-t", reg+"/app:latest", "--push", "--cache-to", "type=inline")
	first := manifestOf(t, r.stderr)

	// The next runner names the previous image: no separate cache ref.
	b := freshEnv(t, a)
	r = b.mustRun("build", "--progress", "plain", dir, "-t", "app:b", "--cache-from", reg+"/app:latest", "--cache-to", "type=inline")
	// Inline holds the final image's steps: the build stage runs, the final
	// stage (whose COPY --from key does not depend on the build's output) hits.
	if got := stepStates(r.stderr); got != "MMHHH" {
		t.Errorf("inline: states %q, want the build stage to run and the final stage cached\n%s", got, r.stderr)
	}
	if got := manifestOf(t, r.stderr); got != first {
		t.Errorf("inline: built %s, first runner %s", got, first)
	}
	b.mustCheck(t)
}

func TestCacheRemoteFaults(t *testing.T) {
	a := newEnv(t)
	// Steps rebuilt on another runner make the same image only with fixed
	// created times (else their history says when they ran).
	a.env = []string{"SOURCE_DATE_EPOCH=1700000000"}
	reg := testutil.StartRegistry(t)
	proxy := testutil.StartRegistryProxy(t, reg)
	cacheRef := proxy.Addr + "/cache:faults"
	dir := remoteContext(t, "app v1\n")
	r := a.mustRun("build", "--progress", "plain", dir, "-t", "app:a", "--cache-to", "type=registry,ref="+cacheRef+",mode=max")
	want := manifestOf(t, r.stderr)

	t.Run("no such ref", func(t *testing.T) {
		b := freshEnv(t, a)
		r := b.mustRun("build", "--progress", "plain", dir, "-t", "app:b", "--cache-from", "type=registry,ref="+proxy.Addr+"/cache:nothing")
		if got := stepStates(r.stderr); got != "MMMMM" || !strings.Contains(r.stderr, "WARNING: ") {
			t.Errorf("missing cache ref: states %q, want a warning and a cold build\n%s", got, r.stderr)
		}
	})

	t.Run("corrupt blob", func(t *testing.T) {
		// The registry serves the cache's records intact but one of the
		// image's layers corrupt (zeros of the right length).
		layer := cacheLayers(t, cacheRef)[0]
		proxy.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+layer.Digest) {
				return false
			}
			w.Header().Set("Content-Length", strconv.FormatInt(layer.Size, 10))
			_, _ = w.Write(make([]byte, layer.Size))
			return true
		})
		b := freshEnv(t, a)
		r := b.run("build", "--progress", "plain", dir, "-t", "app:b", "--cache-from", "type=registry,ref="+cacheRef)
		proxy.SetHook(nil)
		if r.code != 0 || !strings.Contains(r.stderr, "WARNING: cache registry "+cacheRef+": layer "+layer.Digest) {
			t.Fatalf("a corrupt cache layer: exit %d, want a warning naming it and a build\n%s", r.code, r.stderr)
		}
		if got := manifestOf(t, r.stderr); got != want {
			t.Errorf("a corrupt cache layer: built %s, want the same image %s (its step rebuilt)", got, want)
		}
		// That layer is also the build stage's RUN output: that RUN ran again,
		// so its parent (the build stage's COPY) was fetched too.
		if n := fetched(t, r.stderr); n != 3 {
			t.Errorf("a corrupt cache layer: fetched %d good layers, want the image's other 2 and the rebuilt RUN's parent", n)
		}
		b.mustCheck(t)
	})

	t.Run("deleted blob", func(t *testing.T) {
		// Delete one of the image's layers from the cache's repository.
		gone := cacheLayers(t, cacheRef)[0].Digest
		req, _ := http.NewRequest(http.MethodDelete, "http://"+reg+"/v2/cache/blobs/"+gone, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("delete blob: %v %v", err, resp)
		}
		resp.Body.Close()
		b := freshEnv(t, a)
		r := b.run("build", "--progress", "plain", dir, "-t", "app:b", "--cache-from", "type=registry,ref="+cacheRef)
		if r.code != 0 || !strings.Contains(r.stderr, "WARNING: ") || !strings.Contains(r.stderr, gone) {
			t.Fatalf("deleted cache blob: exit %d, want a warning naming %s\n%s", r.code, gone, r.stderr)
		}
		if got := manifestOf(t, r.stderr); got != want {
			t.Errorf("deleted cache blob: built %s, want %s", got, want)
		}
		b.mustCheck(t)
		// A's next export puts the blob back.
		a.mustRun("build", "--progress", "plain", dir, "-t", "app:a", "--cache-to", "type=registry,ref="+cacheRef+",mode=max")
	})

	t.Run("registry dies mid-export", func(t *testing.T) {
		// Every upload to the cache repository fails after the first: the
		// export fails (a warning: the image is built), and the ref still
		// names the previous, whole cache.
		before := regSkopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+cacheRef)
		n := 0
		proxy.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				return false
			}
			if n++; n > 1 {
				hj, ok := w.(http.Hijacker)
				if !ok {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return true
				}
				conn, _, _ := hj.Hijack()
				conn.Close()
				return true
			}
			return false
		})
		dir2 := remoteContext(t, "app v2, which the dead registry never gets\n")
		// As in buildx, a failed export fails the build; ignore-error=true
		// makes it a warning.
		r := a.run("build", "--progress", "plain", dir2, "-t", "app:a2", "--cache-to", "type=registry,ref="+cacheRef+",mode=max")
		if r.code != 1 || !strings.Contains(r.stderr, "export cache to registry "+cacheRef) {
			t.Errorf("export to a dying registry: exit %d, want 1 and the export named\n%s", r.code, r.stderr)
		}
		r = a.run("build", "--progress", "plain", dir2, "-t", "app:a2", "--cache-to", "type=registry,ref="+cacheRef+",mode=max,ignore-error=true")
		proxy.SetHook(nil)
		if r.code != 0 || !strings.Contains(r.stderr, "WARNING: ") {
			t.Fatalf("export with ignore-error=true to a dying registry: exit %d, want the build to succeed with a warning\n%s", r.code, r.stderr)
		}
		if after := regSkopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+cacheRef); after != before {
			t.Fatalf("a failed export changed the cache ref")
		}
		b := freshEnv(t, a)
		if got, _ := b.buildStates(t, dir, "--cache-from", "type=registry,ref="+cacheRef); got != "HHHHH" {
			t.Errorf("after the failed export the previous cache is whole: states %q", got)
		}
		// The next export, the registry well again, succeeds.
		a.mustRun("build", "--progress", "plain", dir2, "-t", "app:a2", "--cache-to", "type=registry,ref="+cacheRef+",mode=max")
	})

	t.Run("older key version", func(t *testing.T) {
		// A local cache written with the keys of an older builder.
		cacheDir := filepath.Join(t.TempDir(), "old")
		a.mustRun("build", "--progress", "plain", dir, "-t", "app:a", "--cache-to", "type=local,dest="+cacheDir)
		rewriteKeyVersion(t, cacheDir, "builder.step.v3")
		b := freshEnv(t, a)
		r := b.mustRun("build", "--progress", "plain", dir, "-t", "app:b", "--cache-from", "type=local,src="+cacheDir)
		if got := stepStates(r.stderr); got != "MMMMM" || !strings.Contains(r.stderr, "builder.step.v3") {
			t.Errorf("old key version: states %q, want a cold build and a warning naming the version\n%s", got, r.stderr)
		}
	})
}

type layerDesc struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// cacheLayers lists the layers of a registry cache; mode=max lists the
// image's first.
func cacheLayers(t *testing.T, ref string) []layerDesc {
	t.Helper()
	var m struct {
		Layers []layerDesc `json:"layers"`
	}
	if err := json.Unmarshal([]byte(regSkopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+ref)), &m); err != nil || len(m.Layers) < 3 {
		t.Fatalf("cache manifest of %s: %v, %d layers", ref, err, len(m.Layers))
	}
	return m.Layers
}

// rewriteKeyVersion rewrites the records of a local cache dir as if an
// older builder had written them (config, manifest and index updated).
func rewriteKeyVersion(t *testing.T, dir, version string) {
	t.Helper()
	blob := func(d string) string { return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	put := func(data []byte) string {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
		if err := os.WriteFile(blob(d), data, 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	var idx map[string]any
	readJSON(t, filepath.Join(dir, "index.json"), &idx)
	mans := idx["manifests"].([]any)
	man := mans[len(mans)-1].(map[string]any)
	var m map[string]any
	readJSON(t, blob(man["digest"].(string)), &m)
	cfg := m["config"].(map[string]any)
	var c map[string]any
	readJSON(t, blob(cfg["digest"].(string)), &c)
	c["keyVersion"] = version
	data, _ := json.Marshal(c)
	cfg["digest"], cfg["size"] = put(data), len(data)
	data, _ = json.Marshal(m)
	man["digest"], man["size"] = put(data), len(data)
	data, _ = json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}
