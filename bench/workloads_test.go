package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// sizes scales the workloads: full size for `make bench`, tiny for QUICK.
type sizes struct {
	bigFiles   int   // copy-big: number of files
	bigBytes   int64 // copy-big: total bytes
	smallFiles int   // small-files: number of 1-4 KB files
	layers     int   // many-layers: RUN steps
	runSteps   int   // run-true: RUN steps
	srcFiles   int   // multistage: files under src/
	aptQuick   bool  // apt: no downloads (dpkg-query instead of apt-get install)
	hugeLarge  int   // huge: large files (half text, half random)
	hugeBytes  int64 // huge: bytes of each large file
	hugeSmall  int   // huge: small files of 1-64 KB
}

var (
	fullSizes = sizes{bigFiles: 20000, bigBytes: 500 << 20, smallFiles: 50000, layers: 40, runSteps: 20, srcFiles: 200,
		hugeLarge: 4, hugeBytes: 2400 << 20, hugeSmall: 10000}
	quickSizes = sizes{bigFiles: 200, bigBytes: 4 << 20, smallFiles: 500, layers: 8, runSteps: 20, srcFiles: 20, aptQuick: true}
)

// A workload is a Dockerfile and, for some, a generated context. The
// Dockerfile names its base image through the local registry, whose port
// changes per run, so it is written by every run; the context is generated
// once per size and kept under bench/workloads/ (git ignores it).
type workload struct {
	name, desc string
	base       string // "busybox" or "debian"
	// dockerfile renders the Dockerfile for FROM image base; its last line
	// is a RUN when changeFile is empty.
	dockerfile func(base string, sz sizes) string
	// generate writes the context files (nil: the context is the Dockerfile).
	generate func(dir string, sz sizes) error
	// changeFile is the context file one-change edits; empty means the
	// one-change scenario edits the last RUN line of the Dockerfile.
	changeFile string
	// huge: full runs only (a quick run neither generates nor builds it),
	// builder only (a peer would take most of the run), no one-change and
	// no fresh-runner scenarios unless -fresh names it.
	huge bool
}

func workloads() []workload {
	return []workload{
		{name: "meta", desc: "FROM busybox, 10 metadata instructions and one tiny RUN", base: "busybox", dockerfile: metaDockerfile},
		{name: "run-true", desc: "FROM busybox and 20 `RUN true` steps", base: "busybox", dockerfile: runTrueDockerfile},
		{name: "copy-big", desc: "COPY of a context of mixed-size files, part text, part random", base: "busybox",
			dockerfile: copyDockerfile, generate: genBig, changeFile: "d07/e03/f00067.dat"},
		{name: "small-files", desc: "COPY of 1-4 KB files", base: "busybox",
			dockerfile: copyDockerfile, generate: genSmall, changeFile: "d001/f00123.txt"},
		{name: "many-layers", desc: "RUN steps that create, modify and delete files across layers (whiteouts, opaque dirs)",
			base: "busybox", dockerfile: manyLayersDockerfile},
		{name: "multistage", desc: "three stages, ARG, COPY --from, a RUN in each", base: "busybox",
			dockerfile: multistageDockerfile, generate: genSrc, changeFile: "src/f0007.txt"},
		{name: "apt", desc: "Debian bookworm minbase, apt-get update && apt-get install curl ca-certificates", base: "debian",
			dockerfile: aptDockerfile},
		{name: "huge", desc: "COPY of a 10 GB context: four 2.4 GiB files (two text, two random) and 10,000 files of 1-64 KB; " +
			"builder only, full runs only", base: "busybox", dockerfile: copyDockerfile, generate: genHuge, huge: true},
	}
}

// metaDockerfile: the ten instructions only change the config (WORKDIR
// names a dir the base has, so it makes no layer); the RUN is the one step
// that runs, which the RUN overhead figure relies on.
func metaDockerfile(base string, _ sizes) string {
	return "FROM " + base + `
LABEL org.example.app=meta org.example.tier=bench
ENV APP_HOME=/root PATH=/root/bin:/usr/sbin:/usr/bin:/sbin:/bin
ARG VERSION=1.0
ENV VERSION=$VERSION
WORKDIR /root
USER root
EXPOSE 8080/tcp
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hello"]
RUN echo meta > /root/meta.txt
`
}

func runTrueDockerfile(base string, sz sizes) string {
	var b strings.Builder
	b.WriteString("FROM " + base + "\n")
	for range sz.runSteps {
		b.WriteString("RUN true\n")
	}
	return b.String()
}

func copyDockerfile(base string, _ sizes) string {
	return "FROM " + base + "\nCOPY . /data/\n"
}

// manyLayersDockerfile cycles through four kinds of step: make a dir of
// files, modify a file and add 1 MB, delete files (whiteouts), replace a
// dir by a new one (an opaque dir).
func manyLayersDockerfile(base string, sz sizes) string {
	var b strings.Builder
	b.WriteString("FROM " + base + "\n")
	for i := range sz.layers {
		d := fmt.Sprintf("/work/d%02d", i-i%4)
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "RUN mkdir -p %s && for j in $(seq 1 50); do echo \"file $j of step %d\" > %s/f$j; done\n", d, i, d)
		case 1:
			fmt.Fprintf(&b, "RUN echo modified >> %s/f1 && dd if=/dev/zero of=/work/blob%02d bs=64k count=16 2>/dev/null\n", d, i)
		case 2:
			fmt.Fprintf(&b, "RUN rm -f %s/f2 %s/f3 /work/blob%02d\n", d, d, i-1)
		case 3:
			fmt.Fprintf(&b, "RUN rm -rf %s && mkdir %s && echo replaced > %s/only\n", d, d, d)
		}
	}
	if sz.layers%4 != 0 {
		b.WriteString("RUN ls -R /work > /work/listing\n")
	}
	return b.String()
}

func multistageDockerfile(base string, _ sizes) string {
	return "ARG GREETING=hello\n" +
		"FROM " + base + ` AS gen
ARG GREETING
COPY src/ /src/
RUN mkdir -p /out && cat /src/*.txt | wc -c > /out/size && echo "$GREETING" > /out/greeting
FROM ` + base + ` AS tools
RUN mkdir -p /tools && for i in $(seq 1 100); do echo "tool $i" > /tools/t$i; done
FROM ` + base + `
COPY --from=gen /out/ /app/
COPY --from=tools /tools/ /app/tools/
RUN ls -R /app > /app/manifest.txt
`
}

func aptDockerfile(base string, sz sizes) string {
	if sz.aptQuick {
		// QUICK: the Debian base and its dpkg, without a download.
		return "FROM " + base + "\nRUN dpkg-query -W > /packages.txt && apt-get --version > /apt-version.txt\n"
	}
	return "FROM " + base + "\nRUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates\n"
}

// withChange returns df with its last line (a RUN) edited for run n.
func withChange(df string, n int) string {
	return strings.TrimSuffix(df, "\n") + fmt.Sprintf(" # change %d\n", n)
}

// genBig writes sz.bigFiles files of mixed sizes (many small, a few large;
// total sz.bigBytes): even files are text, odd files random bytes, so gzip
// has real work on half of them.
func genBig(dir string, sz sizes) error {
	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'i', 'g'}))
	weights := make([]float64, sz.bigFiles)
	var sum float64
	for i := range weights {
		weights[i] = rng.ExpFloat64() * rng.ExpFloat64() // heavy tail
		sum += weights[i]
	}
	text := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789\n", 64))
	var written int64
	for i := range sz.bigFiles {
		size := int64(weights[i] / sum * float64(sz.bigBytes))
		if i == sz.bigFiles-1 {
			size = max(sz.bigBytes-written, 0)
		}
		written += size
		name := filepath.Join(dir, fmt.Sprintf("d%02d/e%02d/f%05d.dat", i%20, i/20%10, i))
		if err := writeGenerated(name, size, i%2 == 0, text, rng); err != nil {
			return err
		}
	}
	return nil
}

// genSmall writes sz.smallFiles files of 1-4 KB, 100 per dir.
func genSmall(dir string, sz sizes) error {
	rng := rand.New(rand.NewChaCha8([32]byte{'s', 'm', 'a', 'l', 'l'}))
	text := []byte(strings.Repeat("lorem ipsum dolor sit amet, consectetur adipiscing elit\n", 80))
	for i := range sz.smallFiles {
		name := filepath.Join(dir, fmt.Sprintf("d%03d/f%05d.txt", i/100, i))
		if err := writeGenerated(name, int64(1024+rng.IntN(3072)), i%4 != 0, text, rng); err != nil {
			return err
		}
	}
	return nil
}

// genHuge writes sz.hugeLarge files of sz.hugeBytes (even ones text, odd
// ones random) and sz.hugeSmall files of 1-64 KB, 200 per dir.
func genHuge(dir string, sz sizes) error {
	rng := rand.New(rand.NewChaCha8([32]byte{'h', 'u', 'g', 'e'}))
	text := []byte(strings.Repeat("pack my box with five dozen liquor jugs 0123456789\n", 64))
	for i := range sz.hugeLarge {
		if err := writeGenerated(filepath.Join(dir, fmt.Sprintf("large/l%d.bin", i)), sz.hugeBytes, i%2 == 0, text, rng); err != nil {
			return err
		}
	}
	for i := range sz.hugeSmall {
		name := filepath.Join(dir, fmt.Sprintf("small/s%03d/f%05d.dat", i/200, i))
		if err := writeGenerated(name, int64(1024+rng.IntN(63<<10)), i%2 == 0, text, rng); err != nil {
			return err
		}
	}
	return nil
}

// genSrc writes the multistage workload's src/ files of 4 KB of text.
func genSrc(dir string, sz sizes) error {
	text := []byte(strings.Repeat("func main() { println(\"hello\") }\n", 130))
	for i := range sz.srcFiles {
		name := filepath.Join(dir, fmt.Sprintf("src/f%04d.txt", i))
		if err := writeGenerated(name, 4096, true, text, nil); err != nil {
			return err
		}
	}
	return nil
}

// writeGenerated writes size bytes to name: repeated text, or random bytes
// from rng.
func writeGenerated(name string, size int64, isText bool, text []byte, rng *rand.Rand) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		chunk := buf[:n]
		if isText {
			for off := 0; off < len(chunk); off += copy(chunk[off:], text) {
			}
		} else {
			for j := range chunk {
				if j%8 == 0 {
					v := rng.Uint64()
					for k := 0; k < 8 && j+k < len(chunk); k++ {
						chunk[j+k] = byte(v >> (8 * k))
					}
				}
			}
		}
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	return f.Close()
}

// prepareContext makes (or reuses) the context of w at size sz under root
// and writes its Dockerfile for base. It returns the context dir.
func prepareContext(root string, w workload, sz sizes, base string) (string, error) {
	dir := filepath.Join(root, w.name)
	stamp := stampPath(root, w.name)
	want := fmt.Sprintf("generator v1 %+v\n", sz)
	if w.generate != nil {
		if got, err := os.ReadFile(stamp); err != nil || string(got) != want {
			if err := os.RemoveAll(dir); err != nil {
				return "", err
			}
			if err := w.generate(dir, sz); err != nil {
				return "", fmt.Errorf("generate workload %s: %w", w.name, err)
			}
			if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
				return "", err
			}
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(w.dockerfile(base, sz)), 0o644)
}

// stampPath names the file that records how the context of workload name
// under root was generated.
func stampPath(root, name string) string { return filepath.Join(root, name+".stamp") }

// contextSize counts the files and bytes of dir.
func contextSize(dir string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += info.Size()
		return nil
	})
	return files, bytes, err
}
