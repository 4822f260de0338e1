package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

// speculateContext is a context whose COPY makes a layer of a few hundred
// KB: big enough that the layer made while the key is hashed is still
// being written when the key is known.
func speculateContext(t *testing.T, dockerfile string) string {
	files := map[string]string{"Dockerfile": dockerfile}
	for i := range 200 {
		files[fmt.Sprintf("d%02d/f%03d.txt", i%10, i)] = strings.Repeat(fmt.Sprintf("line %d of file %d\n", i, i), 100+i)
	}
	return writeContext(t, files)
}

// TestSpeculativeCopy: a COPY in a store with no cache record makes its
// layer while its key is hashed (speculate.go). The image is the one a
// store with records builds after the key; a step that then hits (a
// stage that repeats another) drops the layer made ahead, and neither
// leaves an ingest behind.
func TestSpeculativeCopy(t *testing.T) {
	const epoch = "1700000000"
	ctx := speculateContext(t, "FROM busybox\nCOPY . /data/\nRUN cat /data/d03/f013.txt > /copied\n")

	cold := newEnv(t) // no record: the COPY speculates
	cold.mustRun("build", "--source-date-epoch", epoch, "-t", "app:v1", ctx)
	coldDigest, coldLayers := cold.manifestLayers(t, "app:v1")

	warm := newEnv(t) // a record first: the COPY packs after its key
	warm.mustRun("build", "--source-date-epoch", epoch, "-t", "other:v1",
		writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo other > /other\n"}))
	warm.mustRun("build", "--source-date-epoch", epoch, "-t", "app:v1", ctx)
	warmDigest, warmLayers := warm.manifestLayers(t, "app:v1")
	if coldDigest != warmDigest || strings.Join(coldLayers, ",") != strings.Join(warmLayers, ",") {
		t.Errorf("speculative build %s %v, after-the-key build %s %v: want the same image", coldDigest, coldLayers, warmDigest, warmLayers)
	}
	if r := cold.mustRun("run", "--rm", "app:v1", "cat", "/copied"); !strings.Contains(r.stdout, "line 13 of file 13") {
		t.Errorf("the layer made ahead lacks the copied file: %q", r.stdout)
	}

	// Two stages with the same COPY on the same base: the second one's
	// key is the first one's, recorded by this build.
	twice := speculateContext(t, "FROM busybox AS a\nCOPY . /data/\n"+
		"FROM busybox AS b\nCOPY . /data/\n"+
		"FROM busybox\nCOPY --from=a /data/d01/f011.txt /a\nCOPY --from=b /data/d01/f011.txt /b\n")
	e := newEnv(t)
	r := e.mustRun("build", "--progress", "plain", "-t", "twice:v1", twice)
	if !strings.Contains(r.stderr, "CACHED") {
		t.Logf("no stage hit the other's record (they ran at once, one followed the other):\n%s", r.stderr)
	}
	for _, s := range []*env{cold, warm, e} {
		if left := testutil.BlobIngests(s.root); len(left) != 0 {
			t.Errorf("ingests left in %s: %v", s.root, left)
		}
		if tmp, _ := os.ReadDir(filepath.Join(s.root, "tmp")); len(tmp) != 0 {
			t.Errorf("temp files left in %s: %v", s.root, tmp)
		}
	}
	if r := e.mustRun("run", "--rm", "twice:v1", "cat", "/a", "/b"); strings.Count(r.stdout, "line 11 of file 11") != 2*111 {
		t.Errorf("twice:v1 /a and /b: %d lines of file 11, want 222", strings.Count(r.stdout, "line 11 of file 11"))
	}
}
