package bench

import (
	"archive/tar"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
)

// floorResult is what this machine needs, at least, to turn the copy-big
// context into a layer: read it, hash it, compress it. Each figure is the
// median wall time of runs runs, in ms.
type floorResult struct {
	CatMS     float64 `json:"cat_ms"`      // cat of every file to /dev/null
	SHA256MS  float64 `json:"sha256_ms"`   // cat of every file | sha256sum
	TarGzipMS float64 `json:"tar_gzip_ms"` // tar + gzip to /dev/null (builder's compressor and level)
	FloorMS   float64 `json:"floor_ms"`    // one pass: read, tar, sha256 of the tar, gzip; one core
}

// measureFloor measures the floor on dir, runs times each.
func measureFloor(dir string, runs int) (floorResult, error) {
	var cat, sum, tgz, one []sample
	for range runs {
		s, _, err := measure(dir, "sh", "-c", "find . -type f -print0 | xargs -0 cat > /dev/null")
		if err != nil {
			return floorResult{}, err
		}
		cat = append(cat, s)
		if s, _, err = measure(dir, "sh", "-c", "find . -type f -print0 | xargs -0 cat | sha256sum > /dev/null"); err != nil {
			return floorResult{}, err
		}
		sum = append(sum, s)
		d, err := timeIt(func() error { return tarGzip(dir, io.Discard, false) })
		if err != nil {
			return floorResult{}, err
		}
		tgz = append(tgz, sample{WallMS: ms(d)})
		if d, err = timeIt(func() error { return tarGzip(dir, io.Discard, true) }); err != nil {
			return floorResult{}, err
		}
		one = append(one, sample{WallMS: ms(d)})
	}
	return floorResult{CatMS: medianOf(cat, wallOf), SHA256MS: medianOf(sum, wallOf),
		TarGzipMS: medianOf(tgz, wallOf), FloorMS: medianOf(one, wallOf)}, nil
}

func timeIt(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// tarGzip writes the regular files of dir as a tar stream, gzipped with
// builder's settings (klauspost gzip, default level), to w; with hash, the
// uncompressed stream is also hashed with sha256, in the same goroutine.
func tarGzip(dir string, w io.Writer, hash bool) error {
	gz, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	var sink io.Writer = gz
	if hash {
		sink = io.MultiWriter(gz, sha256.New())
	}
	tw := tar.NewWriter(sink)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name, _ = filepath.Rel(dir, path)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
