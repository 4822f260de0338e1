package registry

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/builderdev/builder/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Blob sources are hints for cross-repository mounts: for each blob,
// <root>/registry/sources/<hex> lists the repositories ("host/repo", one a
// line) it was last pulled from or pushed to. They are only hints: a wrong
// or stale line costs one failed mount request, then the blob is uploaded.
const (
	sourcesDir = "registry/sources"
	maxSources = 8
)

func sourcesPath(store *oci.Store, d digest.Digest) (string, bool) {
	if checkDigest(d) != nil {
		return "", false
	}
	return filepath.Join(store.Root(), filepath.FromSlash(sourcesDir), d.Encoded()), true
}

// blobSources returns the repositories recorded for d, newest first.
func blobSources(store *oci.Store, d digest.Digest) []string {
	p, ok := sourcesPath(store, d)
	if !ok {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !slices.Contains(out, line) {
			out = append(out, line)
		}
	}
	slices.Reverse(out)
	return out
}

// recordSources notes that repo holds blobs. Best effort: errors are
// ignored, the records are hints.
func recordSources(store *oci.Store, repo string, blobs []ocispec.Descriptor) {
	for _, b := range blobs {
		p, ok := sourcesPath(store, b.Digest)
		if !ok {
			continue
		}
		old := blobSources(store, b.Digest)
		if len(old) > 0 && old[0] == repo {
			continue
		}
		lines := []string{repo}
		for _, r := range old {
			if r != repo && len(lines) < maxSources {
				lines = append(lines, r)
			}
		}
		slices.Reverse(lines) // oldest first, newest last
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = writeFileAtomic(p, []byte(strings.Join(lines, "\n")+"\n"))
	}
}
