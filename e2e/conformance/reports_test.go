//go:build linux

package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/builderdev/builder/imagediff"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// OpenBlob makes an ociArchive an imagediff.BlobReader.
func (a ociArchive) OpenBlob(_ context.Context, d digest.Digest) (io.ReadCloser, error) {
	b, err := a.blob(string(d))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// diffImage loads the image of an OCI archive for imagediff.Compare.
func diffImage(file, name string) (imagediff.Image, error) {
	a, err := readOCIArchive(file)
	if err != nil {
		return imagediff.Image{}, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(a["index.json"], &idx); err != nil {
		return imagediff.Image{}, fmt.Errorf("decode index.json of %s: %w", file, err)
	}
	if len(idx.Manifests) != 1 {
		return imagediff.Image{}, fmt.Errorf("%s: want one manifest, index has %d", file, len(idx.Manifests))
	}
	return imagediff.Image{Name: name, Manifest: idx.Manifests[0], Blobs: a}, nil
}

// keepArchive wraps build so that each image it makes is also kept as
// dir/NAME.SUFFIX.tar (a hard link: the case's work dir is removed).
func keepArchive(build buildFunc, dir, suffix string) buildFunc {
	return func(ctx context.Context, c *testCase, ctxDir, out string) (int, string, error) {
		code, stderr, err := build(ctx, c, ctxDir, out)
		if err == nil && code == 0 {
			keep := filepath.Join(dir, c.name+"."+suffix+".tar")
			_ = os.Remove(keep)
			err = os.Link(out, keep)
		}
		return code, stderr, err
	}
}

// writeReports builds every case with builder too and writes imagediff's
// report of BuildKit's image against builder's as dir/NAME.diff.txt for
// each case whose images differ: the whole comparison (manifest, config,
// every tar entry attribute), beyond the golden summary. The archives stay
// in dir for `builder diff` or skopeo.
func writeReports(t *testing.T, cases []*testCase, dir, work string) {
	bwork := filepath.Join(work, "builder")
	if err := os.MkdirAll(bwork, 0o755); err != nil {
		t.Fatal(err)
	}
	build, base := builderBuild(t, bwork)
	_, errs := summarizeAll(t.Context(), cases, filepath.Join(work, "builder-cases"), base, 3,
		keepArchive(build, dir, "builder"))
	written := 0
	for i, c := range cases {
		if errs[i] != nil {
			t.Errorf("%s: builder: %v", c.name, errs[i])
			continue
		}
		a, errA := diffImage(filepath.Join(dir, c.name+".buildkit.tar"), "buildkit")
		b, errB := diffImage(filepath.Join(dir, c.name+".builder.tar"), "builder")
		if os.IsNotExist(errA) || os.IsNotExist(errB) {
			continue // a failed build: the golden comparison covers it
		}
		if errA != nil || errB != nil {
			t.Errorf("%s: %v %v", c.name, errA, errB)
			continue
		}
		r, err := imagediff.Compare(t.Context(), a, b, imagediff.Options{})
		if err != nil {
			t.Errorf("%s: compare: %v", c.name, err)
			continue
		}
		if r.Identical {
			continue
		}
		var text bytes.Buffer
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.name+".diff.txt"), text.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		written++
	}
	t.Logf("imagediff reports of %d differing images in %s", written, dir)
}
