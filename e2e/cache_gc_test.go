package e2e

// Store maintenance end to end: `builder prune` (default, --all,
// --keep-storage, --filter until=), `builder df`, and `builder check` on a
// store damaged on purpose, followed by builds that must recover.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cacheRecord is the part of a cache record file the tests read.
type cacheRecord struct {
	Key       string `json:"key"`
	Layer     string `json:"layer"`
	LayerSize int64  `json:"layerSize"`
	Created   string `json:"created"`
	path      string
}

// records reads every record file of the store.
func (e *env) records(t testing.TB) map[string]cacheRecord {
	t.Helper()
	dir := filepath.Join(e.root, "cache", "records", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string]cacheRecord{}
	for _, ent := range ents {
		p := filepath.Join(dir, ent.Name())
		data, err := os.ReadFile(p)
		cacheMust(t, err)
		var r cacheRecord
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("record %s: %v", ent.Name(), err)
		}
		r.path = p
		out[r.Key] = r
	}
	return out
}

// recordOf returns the one record whose layer is layer.
func (e *env) recordOf(t testing.TB, layer string) cacheRecord {
	t.Helper()
	var found []cacheRecord
	for _, r := range e.records(t) {
		if r.Layer == layer {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d records have layer %s, want 1", len(found), layer)
	}
	return found[0]
}

// manifestLayers returns the manifest digest and layer digests of ref.
func (e *env) manifestLayers(t testing.TB, ref string) (string, []string) {
	t.Helper()
	var v struct {
		Digest   string `json:"digest"`
		Manifest struct {
			Layers []struct {
				Digest string `json:"digest"`
			} `json:"layers"`
		} `json:"manifest"`
	}
	r := e.mustRun("inspect", ref)
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("inspect %s: %v\n%s", ref, err, r.stdout)
	}
	var layers []string
	for _, l := range v.Manifest.Layers {
		layers = append(layers, l.Digest)
	}
	return v.Digest, layers
}

func (e *env) blobPath(d string) string {
	return filepath.Join(e.root, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
}

func (e *env) hasBlob(d string) bool {
	_, err := os.Stat(e.blobPath(d))
	return err == nil
}

var dfLine = regexp.MustCompile(`(?m)^(Images|Build cache|Snapshots)\s+(\d+)\s`)

// df returns the counts `builder df` prints by type.
func (e *env) df(t testing.TB) map[string]int {
	t.Helper()
	r := e.mustRun("df")
	out := map[string]int{}
	for _, m := range dfLine.FindAllStringSubmatch(r.stdout, -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(out) != 3 {
		t.Fatalf("df output lacks a line:\n%s", r.stdout)
	}
	return out
}

var pruneLine = regexp.MustCompile(`^removed (\d+) cache records, (\d+) snapshots, (\d+) blobs, \d+ cache mounts; reclaimed `)

// prune runs `builder prune flags...` and returns the numbers it removed.
func (e *env) prune(t testing.TB, flags ...string) (records, snapshots, blobs int) {
	t.Helper()
	r := e.mustRun(append([]string{"prune"}, flags...)...)
	m := pruneLine.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("prune %v printed:\n%s", flags, r.stdout)
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	c, _ := strconv.Atoi(m[3])
	return a, b, c
}

// mustCheck runs `builder check` and fails unless the store is consistent.
func (e *env) mustCheck(t testing.TB) {
	t.Helper()
	r := e.run("check")
	if r.code != 0 || !strings.Contains(r.stdout, "store is consistent") {
		t.Fatalf("check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func recordKeys(m map[string]cacheRecord) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func TestCachePrune(t *testing.T) {
	e := newEnv(t)
	app := writeContext(t, map[string]string{
		"a.txt":      "app\n",
		"Dockerfile": "FROM busybox:latest\nCOPY a.txt /a.txt\nRUN echo prune-app > /p\n",
	})
	tmp := writeContext(t, map[string]string{
		"b.txt":      "tmp\n",
		"Dockerfile": "FROM busybox:latest\nCOPY b.txt /b.txt\nRUN echo prune-tmp > /p\n",
	})
	e.wantStates(t, "app", app, "MM", "-t", "app:v1")
	appKeys := recordKeys(e.records(t))
	e.wantStates(t, "tmp", tmp, "MM", "-t", "tmp:v1")
	var tmpRecs []cacheRecord
	for k, r := range e.records(t) {
		if !appKeys[k] {
			tmpRecs = append(tmpRecs, r)
		}
	}
	if len(appKeys) != 2 || len(tmpRecs) != 2 {
		t.Fatalf("records: app %d, tmp %d; want 2 each", len(appKeys), len(tmpRecs))
	}
	if got := e.df(t); got["Images"] != 3 || got["Build cache"] != 4 || got["Snapshots"] < 1 {
		t.Fatalf("df after two builds: %v", got)
	}
	// Everything is in use: nothing to prune.
	if n, _, _ := e.prune(t); n != 0 {
		t.Fatalf("prune with every layer tagged removed %d records", n)
	}
	e.mustRun("rmi", "tmp:v1")

	if n, _, _ := e.prune(t, "--filter", "until=1h"); n != 0 {
		t.Fatalf("prune --filter until=1h removed %d records made a moment ago", n)
	}
	if n, _, _ := e.prune(t, "--keep-storage", "1GB"); n != 0 {
		t.Fatalf("prune --keep-storage 1GB removed %d records of a few kB", n)
	}
	// Age one unused record by two days: only it is older than 24h.
	old := tmpRecs[0]
	data, err := os.ReadFile(old.path)
	cacheMust(t, err)
	aged := strings.Replace(string(data), old.Created, time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339Nano), 1)
	cacheMust(t, os.WriteFile(old.path, []byte(aged), 0o600))
	if n, _, _ := e.prune(t, "--filter", "until=24h"); n != 1 {
		t.Fatalf("prune --filter until=24h removed %d records, want the one aged record", n)
	}
	if _, ok := e.records(t)[old.Key]; ok {
		t.Fatalf("aged record %s survived prune --filter until=24h", old.Key)
	}
	if n, _, _ := e.prune(t, "--keep-storage", "1"); n != 1 {
		t.Fatalf("prune --keep-storage 1 removed %d records, want the last unused one", n)
	}
	for _, r := range tmpRecs {
		if e.hasBlob(r.Layer) {
			t.Errorf("layer %s of the removed image survived prune", r.Layer)
		}
	}
	if got := recordKeys(e.records(t)); len(got) != 2 || !got[sortedKeys(appKeys)[0]] || !got[sortedKeys(appKeys)[1]] {
		t.Fatalf("records after pruning tmp: %v, want app's %v", got, appKeys)
	}
	e.mustCheck(t)
	e.wantStates(t, "app after prune", app, "HH", "-t", "app:v1")
	e.wantStates(t, "tmp after prune", tmp, "MM", "-t", "tmp:v1")

	// Default prune: what no tagged image needs goes, records included.
	e.mustRun("rmi", "tmp:v1")
	if n, _, blobs := e.prune(t); n != 2 || blobs < 2 {
		t.Fatalf("prune after rmi: %d records, %d blobs removed; want 2 records and at least the 2 layers", n, blobs)
	}
	e.mustCheck(t)
	e.wantStates(t, "app after default prune", app, "HH", "-t", "app:v1")

	// --all: every record and snapshot; tagged images stay whole.
	n, snaps, _ := e.prune(t, "--all")
	if n != 2 || snaps < 1 {
		t.Fatalf("prune --all removed %d records, %d snapshots", n, snaps)
	}
	if got := e.df(t); got["Build cache"] != 0 || got["Snapshots"] != 0 || got["Images"] != 2 {
		t.Fatalf("df after prune --all: %v", got)
	}
	e.mustCheck(t)
	e.mustRun("inspect", "app:v1")
	e.wantStates(t, "app after prune --all", app, "MM", "-t", "app:v1")
	e.wantStates(t, "app rebuilt", app, "HH", "-t", "app:v1")
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCacheCheckDamage damages the store three ways; check must report
// each, and the next build must redo exactly the damaged step and make the
// same image.
func TestCacheCheckDamage(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"a.txt":      "check a\n",
		"b.txt":      "check b\n",
		"Dockerfile": "FROM busybox:latest\nCOPY a.txt /a.txt\nRUN echo check-case > /c\nCOPY b.txt /b.txt\n",
	})
	sde := []string{"SOURCE_DATE_EPOCH=0"}
	build := func(what, want string) {
		t.Helper()
		r := e.runEnv(sde, "", "build", "--progress", "plain", dir, "-t", "chk:v1")
		if r.code != 0 {
			t.Fatalf("%s: build failed: exit %d\n%s", what, r.code, r.stderr)
		}
		if got := stepStates(r.stderr); got != want {
			t.Fatalf("%s: step states %q, want %q\n%s", what, got, want, r.stderr)
		}
	}
	build("first build", "MMM")
	want, layers := e.manifestLayers(t, "chk:v1")
	layers = layers[len(layers)-3:]
	copyA, run, copyB := layers[0], layers[1], layers[2]
	e.mustCheck(t)
	checkReports := func(what, blob string) {
		t.Helper()
		r := e.run("check")
		if r.code != 1 || !strings.Contains(r.stdout, blob) {
			t.Fatalf("check after %s: exit %d, want 1 and a problem naming %s\n%s%s", what, r.code, blob, r.stdout, r.stderr)
		}
	}
	sameImage := func(what string) {
		t.Helper()
		if got, _ := e.manifestLayers(t, "chk:v1"); got != want {
			t.Fatalf("%s: chk:v1 is manifest %s, want %s", what, got, want)
		}
		e.mustCheck(t)
	}

	// 1. A byte flipped: same size, so only check (which hashes) sees it;
	// it removes the blob, and the build redoes the step.
	data, err := os.ReadFile(e.blobPath(copyA))
	cacheMust(t, err)
	data[len(data)/2] ^= 0xff
	cacheMust(t, os.WriteFile(e.blobPath(copyA), data, 0o644))
	checkReports("a flipped byte", copyA)
	build("after a corrupt blob", "MHH")
	sameImage("after a corrupt blob")

	// 2. A truncated blob: the build sees the wrong size by itself.
	rec := e.recordOf(t, copyB)
	cacheMust(t, os.Truncate(e.blobPath(copyB), rec.LayerSize/2))
	build("after a truncated blob", "HHM")
	sameImage("after a truncated blob")

	// 3. A record pointing at a deleted blob.
	cacheMust(t, os.Remove(e.blobPath(run)))
	checkReports("a deleted blob", run)
	build("after a deleted blob", "HMH")
	sameImage("after a deleted blob")

	// 4. A record file that is not a record is a miss.
	cacheMust(t, os.WriteFile(e.recordOf(t, copyB).path, []byte("{"), 0o600))
	build("after a garbled record", "HHM")
	sameImage("after a garbled record")
}
