//go:build linux

package e2e

// Hostile input, bounded (issue 17): sparse entries written with holes, a
// gzip bomb refused, an opaque marker at a layer's root hiding the layers
// below, an ARG doubling chain stopped at its line. Every hostile input is
// made here, never downloaded.

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// hostileLayer is a layer blob (gzip) and the diffID its config lists.
type hostileLayer struct {
	blob   []byte
	diffID digest.Digest
}

// gzipLayer gzips an uncompressed tar into a layer.
func gzipLayer(t *testing.T, tarBytes []byte) hostileLayer {
	t.Helper()
	return hostileLayer{blob: gzipOf(t, tarBytes), diffID: digest.FromBytes(tarBytes)}
}

// stackedImage writes an OCI archive of busybox:latest with layers added
// on top, named name (repo:tag), and returns its path.
func stackedImage(t *testing.T, name string, layers ...hostileLayer) string {
	t.Helper()
	ents := testutil.ReadTar(t, busyboxTar(t))
	blobs := map[string][]byte{}
	var index ocispec.Index
	for _, e := range ents {
		if d, ok := strings.CutPrefix(e.Header.Name, "blobs/sha256/"); ok && d != "" {
			blobs["sha256:"+d] = e.Data
		}
		if e.Header.Name == "index.json" {
			if err := json.Unmarshal(e.Data, &index); err != nil {
				t.Fatal(err)
			}
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(blobs[index.Manifests[0].Digest.String()], &m); err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(blobs[m.Config.Digest.String()], &cfg); err != nil {
		t.Fatal(err)
	}
	out := []testutil.TarEntry{testutil.TarDir("blobs/"), testutil.TarDir("blobs/sha256/")}
	addBlob := func(b []byte) digest.Digest {
		d := digest.FromBytes(b)
		out = append(out, testutil.TarFile("blobs/sha256/"+d.Encoded(), string(b)))
		return d
	}
	for _, l := range m.Layers {
		addBlob(blobs[l.Digest.String()])
	}
	for i, l := range layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: addBlob(l.blob), Size: int64(len(l.blob))})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		cfg.History = append(cfg.History, ocispec.History{CreatedBy: fmt.Sprintf("hostile layer %d", i)})
	}
	cfgJSON, _ := json.Marshal(cfg)
	m.Config.Digest, m.Config.Size = addBlob(cfgJSON), int64(len(cfgJSON))
	mJSON, _ := json.Marshal(m)
	repo, tag, _ := strings.Cut(name, ":")
	index.Manifests[0].Digest, index.Manifests[0].Size = addBlob(mJSON), int64(len(mJSON))
	index.Manifests[0].Annotations = map[string]string{"io.containerd.image.name": repo + ":" + tag, ocispec.AnnotationRefName: tag}
	idxJSON, _ := json.Marshal(index)
	out = append(out, testutil.TarFile("index.json", string(idxJSON)), testutil.TarFile("oci-layout", `{"imageLayoutVersion":"1.0.0"}`))
	p := filepath.Join(t.TempDir(), strings.ReplaceAll(name, ":", "-")+".tar")
	testutil.WriteTar(t, p, out...)
	return p
}

// sparseEntry writes a GNU PAX 1.0 sparse entry: name, of apparent size
// size, holding data at each offset. archive/tar cannot write one, so the
// GNU.sparse.* records are written under a same-length stand-in name and
// renamed in the header bytes (the checksum covers the header block only).
func sparseEntry(t testing.TB, tw *bytes.Buffer, name string, size int64, data map[int64]string) {
	t.Helper()
	offs := make([]int64, 0, len(data))
	for off := range data {
		offs = append(offs, off)
	}
	slices.Sort(offs)
	var m bytes.Buffer
	fmt.Fprintf(&m, "%d\n", len(offs))
	var stored []byte
	for _, off := range offs {
		fmt.Fprintf(&m, "%d\n%d\n", off, len(data[off]))
		stored = append(stored, data[off]...)
	}
	for m.Len()%512 != 0 {
		m.WriteByte(0)
	}
	var raw bytes.Buffer
	w := tar.NewWriter(&raw)
	err := w.WriteHeader(&tar.Header{Name: "GNUSparseFile.0/" + name, Typeflag: tar.TypeReg, Mode: 0o644,
		Size: int64(m.Len() + len(stored)), ModTime: time.Unix(1e9, 0), Format: tar.FormatPAX,
		PAXRecords: map[string]string{"XNU.sparse.major": "1", "XNU.sparse.minor": "0",
			"XNU.sparse.name": name, "XNU.sparse.realsize": strconv.FormatInt(size, 10)}})
	if err != nil {
		t.Fatal(err)
	}
	tw.Write(bytes.ReplaceAll(raw.Bytes(), []byte("XNU.sparse."), []byte("GNU.sparse.")))
	tw.Write(m.Bytes())
	tw.Write(stored)
	for tw.Len()%512 != 0 {
		tw.WriteByte(0)
	}
}

// sparseTarBytes is an uncompressed tar with a 1 TiB sparse file "big" and
// a small plain file.
func sparseTarBytes(t testing.TB) []byte {
	var b bytes.Buffer
	sparseEntry(t, &b, "big", 1<<40, map[int64]string{0: "head", 1 << 39: "middle", 1<<40 - 4: "tail"})
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "small", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3, ModTime: time.Unix(1e9, 0)}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("ok\n"))
	tw.Close()
	return b.Bytes()
}

// diskUse is the disk space the files below dir take (hard links once).
func diskUse(t testing.TB, dir string) int64 {
	t.Helper()
	var total int64
	seen := map[uint64]bool{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a temp file removed meanwhile
			}
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !seen[st.Ino] {
			seen[st.Ino] = true
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// primeBusybox unpacks busybox's layer into the store, so that what a test
// measures next is only its own layers.
func (e *env) primeBusybox(t *testing.T) {
	t.Helper()
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"})
	e.mustRun("build", dir)
}

// checkSparseFile checks that the 1 TiB file at p costs < 1 MiB of disk.
func checkSparseFile(t *testing.T, p string) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 1<<40 || st.Blocks*512 > 1<<20 {
		t.Errorf("%s: size %d, %d bytes of disk: want 1 TiB in < 1 MiB", p, st.Size, st.Blocks*512)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 6)
	if _, err := f.ReadAt(b, 1<<39); err != nil || string(b) != "middle" {
		t.Errorf("%s at 512 GiB: %q, %v", p, b, err)
	}
}

func TestSparseLayer(t *testing.T) {
	e := newEnv(t)
	e.primeBusybox(t)
	img := stackedImage(t, "sparse:latest", gzipLayer(t, sparseTarBytes(t)))
	before := diskUse(t, e.root)
	start := time.Now()
	e.mustRun("load", "-i", img)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM sparse\nRUN echo \"size=$(stat -c %s /big)\" && echo \"small=$(cat /small)\" && echo \"middle=$(dd if=/big bs=1 skip=549755813888 count=6 2>/dev/null)\"\n"})
	out := filepath.Join(t.TempDir(), "out")
	r := e.mustRun("build", "--progress", "plain", dir, "-o", "type=local,dest="+out)
	t.Logf("load and build: %v", time.Since(start))
	wantOutputs(t, r.stderr, map[string]string{"size": "1099511627776", "small": "ok", "middle": "middle"})
	grown := diskUse(t, e.root) - before
	t.Logf("store grew by %d bytes", grown)
	if grown > 1<<20 {
		t.Errorf("store grew by %d bytes for a 1 TiB sparse layer: want < 1 MiB", grown)
	}
	checkSparseFile(t, filepath.Join(out, "big"))
}

func TestSparseAdd(t *testing.T) {
	e := newEnv(t)
	e.primeBusybox(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD sparse.tar.gz /s/\n" +
		"RUN echo \"size=$(stat -c %s /s/big)\" && echo \"middle=$(dd if=/s/big bs=1 skip=549755813888 count=6 2>/dev/null)\"\n"})
	if err := os.WriteFile(filepath.Join(dir, "sparse.tar.gz"), gzipOf(t, sparseTarBytes(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	before := diskUse(t, e.root)
	out := filepath.Join(t.TempDir(), "out")
	start := time.Now()
	r := e.mustRun("build", "--progress", "plain", dir, "-t", "added:v1", "-o", "type=local,dest="+out)
	t.Logf("build: %v", time.Since(start))
	wantOutputs(t, r.stderr, map[string]string{"size": "1099511627776", "middle": "middle"})
	grown := diskUse(t, e.root) - before
	t.Logf("store grew by %d bytes", grown)
	if grown > 1<<20 {
		t.Errorf("store grew by %d bytes for ADD of a 1 TiB sparse file: want < 1 MiB", grown)
	}
	checkSparseFile(t, filepath.Join(out, "s", "big"))
	// The ADD layer itself carries the file as a sparse entry (the RUN
	// changed nothing: an empty layer).
	if img := e.runInspect("added:v1"); len(img.Manifest.Layers) != 3 {
		t.Errorf("layers: %+v", img.Manifest.Layers)
	} else if fi, err := os.Stat(e.blobPath(img.Manifest.Layers[1].Digest)); err != nil || fi.Size() > 64<<10 {
		t.Errorf("ADD layer blob: %v, %v: want a small sparse entry", fi.Size(), err)
	}
}

// zeroBomb returns a gzip layer of a tar holding one file of n zero bytes
// (n a multiple of 1 MiB), about n/1000 bytes, made without compressing n
// bytes: a deflate block of 1 MiB of zeros that refers back only to
// zeros is repeated. The config's diffID is not the real one: hashing n
// bytes would take seconds, and the unpack must stop long before it could
// check it.
func zeroBomb(t *testing.T, n int64) hostileLayer {
	t.Helper()
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: n, ModTime: time.Unix(1e9, 0), Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	zeros := n + 1024 // the file, then the end-of-archive blocks
	var out bytes.Buffer
	out.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}) // gzip header
	fw, _ := flate.NewWriter(&out, flate.BestCompression)
	fw.Write(hdr.Bytes())
	fw.Write(make([]byte, 64<<10))
	fw.Flush()
	left := zeros - 64<<10
	window := make([]byte, 32<<10)
	var chunk bytes.Buffer
	cw, _ := flate.NewWriterDict(&chunk, flate.BestCompression, window)
	cw.Write(make([]byte, 1<<20))
	cw.Flush()
	for ; left >= 1<<20; left -= 1 << 20 {
		out.Write(chunk.Bytes())
	}
	last, _ := flate.NewWriterDict(&out, flate.BestCompression, window)
	last.Write(make([]byte, left))
	last.Close()
	crc := crc32.ChecksumIEEE(hdr.Bytes())
	buf := make([]byte, 1<<20)
	for z := zeros; z > 0; z -= int64(len(buf)) {
		crc = crc32.Update(crc, crc32.IEEETable, buf[:min(z, int64(len(buf)))])
	}
	binary.Write(&out, binary.LittleEndian, crc)
	binary.Write(&out, binary.LittleEndian, uint32(int64(hdr.Len())+zeros))
	return hostileLayer{blob: out.Bytes(), diffID: digest.FromString("not checked: the unpack stops long before the end")}
}

func TestLayerBomb(t *testing.T) {
	e := newEnv(t)
	e.primeBusybox(t)
	bomb := zeroBomb(t, 8<<30)
	t.Logf("8 GiB of zeros: %d bytes of gzip", len(bomb.blob))
	img := stackedImage(t, "bomb:latest", bomb)
	e.mustRun("load", "-i", img)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM bomb\nRUN true\n"})
	state := e.snapState(t)
	before := diskUse(t, e.root)
	start := time.Now()
	r := e.run("build", dir)
	took := time.Since(start)
	msg := errorLine(r.stderr)
	t.Logf("exit %d after %v: %s", r.code, took, msg)
	layerDigest := digest.FromBytes(bomb.blob)
	if r.code != 1 || !strings.Contains(msg, "unpack layer "+layerDigest.String()) ||
		!strings.Contains(msg, "archive exceeds the unpack bounds") || !strings.Contains(msg, "at most 64x + 64.0 MiB") {
		t.Errorf("exit %d, %q: want 1 and the layer and bound named", r.code, msg)
	}
	if took > 10*time.Second {
		t.Errorf("refused after %v", took)
	}
	e.checkStore(t, &state)
	if grown := diskUse(t, e.root) - before; grown > 1<<20 {
		t.Errorf("store grew by %d bytes: partial snapshot left", grown)
	}

	t.Run("ADD", func(t *testing.T) {
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD bomb.tar.gz /b/\nRUN true\n"})
		if err := os.WriteFile(filepath.Join(dir, "bomb.tar.gz"), zeroBomb(t, 1<<30).blob, 0o644); err != nil {
			t.Fatal(err)
		}
		state := e.snapState(t)
		before := diskUse(t, e.root)
		r := e.run("build", dir)
		msg := errorLine(r.stderr)
		t.Logf("exit %d: %s", r.code, msg)
		if r.code != 1 || !strings.HasPrefix(msg, "error: Dockerfile:2: ADD bomb.tar.gz /b/: ") || !strings.Contains(msg, "archive exceeds the unpack bounds") {
			t.Errorf("exit %d, %q: want 1 and the ADD line and bound named", r.code, msg)
		}
		e.checkStore(t, &state)
		if grown := diskUse(t, e.root) - before; grown > 1<<20 {
			t.Errorf("store grew by %d bytes: the partial extraction was left", grown)
		}
	})
}

func TestOpaqueRootLayer(t *testing.T) {
	e := newEnv(t)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	top := testutil.TarBytes(t,
		testutil.TarFile(".wh..wh..opq", ""),
		testutil.TarEntry{Header: tar.Header{Name: "busybox", Typeflag: tar.TypeReg, Mode: 0o755}, Data: bb})
	e.mustRun("load", "-i", stackedImage(t, "opq:latest", gzipLayer(t, top)))
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM opq\n" +
		`RUN ["/busybox", "sh", "-c", "echo root=$(/busybox ls / | /busybox tr '\\n' ' '); echo etc=$(/busybox ls /etc | /busybox tr '\\n' ' '); echo bin=$(/busybox test -e /bin/sh && echo present || echo absent)"]` + "\n"})
	out := filepath.Join(t.TempDir(), "out")
	r := e.mustRun("build", "--progress", "plain", dir, "-o", "type=local,dest="+out)
	got := runOutputs(t, r.stderr)
	t.Logf("RUN saw / = %q, /etc = %q", got["root"], got["etc"])
	// Besides busybox, only what the sandbox mounts: /dev, /proc, /sys and
	// /etc for its generated hosts, hostname and resolv.conf.
	if got["bin"] != "absent" {
		t.Errorf("/bin/sh of the lower layer is visible")
	}
	for _, name := range strings.Fields(got["root"]) {
		if !slices.Contains([]string{"busybox", "dev", "etc", "proc", "sys"}, name) {
			t.Errorf("RUN sees /%s: the lower layer is not hidden (ls / = %q)", name, got["root"])
		}
	}
	for _, name := range strings.Fields(got["etc"]) {
		if !slices.Contains([]string{"hostname", "hosts", "resolv.conf"}, name) {
			t.Errorf("RUN sees /etc/%s of the lower layer", name)
		}
	}
	if names := listNames(t, out); !slices.Equal(names, []string{"busybox"}) {
		t.Errorf("-o type=local holds %v, want only busybox", names)
	}
}

func TestExpansionBomb(t *testing.T) {
	testutil.RequiresRoot(t)
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Skip("GNU time not installed")
	}
	e := &env{t: t, bin: testutil.BuildBinary(t), root: filepath.Join(t.TempDir(), "root")}
	var df strings.Builder
	df.WriteString("FROM scratch\nARG a0=x\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&df, "ARG a%d=${a%d}${a%d}\n", i, i-1, i-1)
	}
	df.WriteString("RUN true\n")
	dir := writeContext(t, map[string]string{"Dockerfile": df.String()})
	e.prefix = []string{"/usr/bin/time", "-f", "rss_kb=%M wall=%e"}
	start := time.Now()
	r := e.run("build", dir)
	took := time.Since(start)
	msg := errorLine(r.stderr)
	m := regexp.MustCompile(`rss_kb=(\d+) wall=`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no GNU time report:\n%s", r.stderr)
	}
	rss, _ := strconv.Atoi(m[1])
	t.Logf("exit %d after %v, peak RSS %d MiB: %s", r.code, took, rss>>10, msg)
	// a20 is 1 MiB; a21 (line 23) would be 2 MiB.
	if r.code != 1 || !strings.HasPrefix(msg, "error: Dockerfile:23: ARG a21=${a20}${a20}: ") || !strings.Contains(msg, "more than the 1.0 MiB a word may take") {
		t.Errorf("exit %d, %q: want 1 and line 23 named", r.code, msg)
	}
	// The bound is memory (below); time only catches a hang (a busy CI
	// machine must not fail it).
	if took > 30*time.Second {
		t.Errorf("took %v", took)
	}
	if rss > 100<<10 {
		t.Errorf("peak RSS %d MiB, want < 100 MiB", rss>>10)
	}
}
