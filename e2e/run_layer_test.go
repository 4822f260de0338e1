package e2e

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runEntry is one entry of a layer tar, with the body of small files.
type runEntry struct {
	name     string // clean, no "./" prefix or trailing "/"
	typ      byte
	mode     int64 // permission and setuid/setgid/sticky bits
	uid, gid int
	size     int64
	link     string
	data     string
}

// readRunLayer lists the entries of a gzip (or uncompressed) layer blob.
func readRunLayer(t testing.TB, path string) []runEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if zr, err := gzip.NewReader(f); err == nil {
		defer zr.Close()
		r = zr
	} else if _, serr := f.Seek(0, io.SeekStart); serr != nil {
		t.Fatal(serr)
	}
	var out []runEntry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read layer %s: %v", path, err)
		}
		e := runEntry{
			name: strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"),
			typ:  h.Typeflag, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, size: h.Size, link: h.Linkname,
		}
		if h.Typeflag == tar.TypeReg && h.Size < 1<<16 {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			e.data = string(b)
		}
		out = append(out, e)
	}
}

// runLayerEntries lists the entries of layer i of img (negative: from the
// end) read from the store's blob.
func (e *env) runLayerEntries(img runImage, i int) []runEntry {
	e.t.Helper()
	ls := img.Manifest.Layers
	if i < 0 {
		i += len(ls)
	}
	if i < 0 || i >= len(ls) {
		e.t.Fatalf("image has %d layers, no layer %d", len(ls), i)
	}
	hex := strings.TrimPrefix(ls[i].Digest, "sha256:")
	return readRunLayer(e.t, filepath.Join(e.root, "blobs", "sha256", hex))
}

func findRunEntry(ents []runEntry, name string) *runEntry {
	for i := range ents {
		if ents[i].name == name {
			return &ents[i]
		}
	}
	return nil
}

func runEntryNames(ents []runEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.name)
	}
	return out
}

func TestRunLayerChanges(t *testing.T) {
	e := newEnv(t)
	steps := []struct {
		run   string
		names []string // the layer's entries; nil: the RUN adds no layer (empty: an empty one)
		check func(t *testing.T, ents []runEntry)
	}{
		{
			run:   "mkdir -p /d/sub /kd && echo a >/d/sub/f && echo gone >/gone && echo k >/keep && echo g2 >/kd/gone2 && echo s >/kd/stay",
			names: []string{"d", "d/sub", "d/sub/f", "gone", "kd", "kd/gone2", "kd/stay", "keep"},
		},
		{
			run:   "rm /gone /kd/gone2",
			names: []string{".wh.gone", "kd", "kd/.wh.gone2"},
		},
		{
			// As BuildKit's differ: a dir made anew is a whiteout for each
			// entry it lost (not an opaque marker), then what it holds.
			run:   "rm -rf /d && mkdir /d && echo n >/d/new",
			names: []string{"d", "d/new", "d/.wh.sub"},
			check: func(t *testing.T, ents []runEntry) {
				if n := findRunEntry(ents, "d/new"); n.data != "n\n" {
					t.Errorf("d/new = %q", n.data)
				}
			},
		},
		{
			run:   "chmod 600 /keep",
			names: []string{"keep"},
			check: func(t *testing.T, ents []runEntry) {
				if k := ents[0]; k.typ != tar.TypeReg || k.mode != 0o600 || k.data != "k\n" {
					t.Errorf("chmod'ed file: %+v, want a regular file 0600 with the same content", k)
				}
			},
		},
		{
			run:   "echo h >/h1 && ln /h1 /h2 && ln -s h1 /sym && mkfifo -m 640 /fifo",
			names: []string{"fifo", "h1", "h2", "sym"},
			check: func(t *testing.T, ents []runEntry) {
				if h := findRunEntry(ents, "h2"); h.typ != tar.TypeLink || h.link != "h1" {
					t.Errorf("h2: %+v, want a hardlink to h1", h)
				}
				if h := findRunEntry(ents, "h1"); h.typ != tar.TypeReg || h.data != "h\n" {
					t.Errorf("h1: %+v", h)
				}
				if s := findRunEntry(ents, "sym"); s.typ != tar.TypeSymlink || s.link != "h1" {
					t.Errorf("sym: %+v", s)
				}
				if f := findRunEntry(ents, "fifo"); f.typ != tar.TypeFifo || f.mode != 0o640 {
					t.Errorf("fifo: %+v, want a fifo 0640", f)
				}
			},
		},
		{
			run:   "echo s >/suid && chmod 4755 /suid && mkdir /sgid && chmod 2775 /sgid && chown 1000:10 /sgid",
			names: []string{"sgid", "suid"},
			check: func(t *testing.T, ents []runEntry) {
				if s := findRunEntry(ents, "suid"); s.mode != 0o4755 {
					t.Errorf("suid: mode %o, want 4755", s.mode)
				}
				if s := findRunEntry(ents, "sgid"); s.typ != tar.TypeDir || s.mode != 0o2775 || s.uid != 1000 || s.gid != 10 {
					t.Errorf("sgid: %+v, want a dir 2775 owned by 1000:10", s)
				}
			},
		},
		// The sandbox's mount points and bound files never reach the layer:
		// a RUN that changes nothing has an empty layer (as BuildKit's).
		{run: "true", names: []string{}},
		{run: "echo changed >/etc/hosts && echo x >/etc/hostname && echo nameserver 10.9.9.9 >/etc/resolv.conf && ls /dev /proc /sys >/dev/null", names: []string{}},
		{run: "touch /etc/foo", names: []string{"etc", "etc/foo"}},
		// As BuildKit's differ: a dir copied up for a file made and removed
		// again is left out, and so is a file opened but not changed.
		{run: "touch /tmp/x && rm /tmp/x && : >> /etc/group && echo 1 > /one", names: []string{"one"}},
	}
	var df strings.Builder
	df.WriteString("FROM busybox\n")
	for _, s := range steps {
		df.WriteString("RUN " + s.run + "\n")
	}
	dir := writeContext(t, map[string]string{"Dockerfile": df.String()})
	e.mustRun("build", dir, "-t", "changes:v1")
	img := e.runInspect("changes:v1")

	// Walk the history: each RUN either added the next layer or none.
	layer := 1 // layer 0 is busybox
	runs := 0
	for _, h := range img.Config.History {
		if !strings.HasPrefix(h.CreatedBy, "RUN ") {
			continue
		}
		s := steps[runs]
		runs++
		if !strings.Contains(h.CreatedBy, s.run) {
			t.Fatalf("history %q, want RUN %s", h.CreatedBy, s.run)
		}
		if s.names == nil {
			if !h.EmptyLayer {
				t.Errorf("RUN %s added a layer: %v", s.run, runEntryNames(e.runLayerEntries(img, layer)))
				layer++
			}
			continue
		}
		if h.EmptyLayer {
			t.Errorf("RUN %s added no layer", s.run)
			continue
		}
		ents := e.runLayerEntries(img, layer)
		layer++
		if got := runEntryNames(ents); !slices.Equal(got, s.names) {
			t.Errorf("RUN %s: layer entries %q, want %q", s.run, got, s.names)
			continue
		}
		for _, w := range ents {
			if strings.HasPrefix(w.name, ".wh.") || strings.Contains(w.name, "/.wh.") {
				if w.typ != tar.TypeReg || w.size != 0 {
					t.Errorf("RUN %s: whiteout %+v is not an empty regular file", s.run, w)
				}
			}
		}
		if s.check != nil {
			s.check(t, ents)
		}
	}
	if runs != len(steps) || layer != len(img.Manifest.Layers) {
		t.Errorf("%d RUN history entries and %d layers used, want %d and %d", runs, layer, len(steps), len(img.Manifest.Layers))
	}
}

// As runc under BuildKit, a RUN makes its working directory when it is
// missing (a WORKDIR an earlier RUN removed), as written: the next RUN's
// layer has it.
func TestRunMakesMissingWorkdir(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nWORKDIR /w/x\nRUN rm -rf /w\nRUN pwd > /pwd\n"})
	e.mustRun("build", dir, "-t", "cwd:v1")
	img := e.runInspect("cwd:v1")
	ents := e.runLayerEntries(img, len(img.Manifest.Layers)-1)
	if got := runEntryNames(ents); !slices.Equal(got, []string{"pwd", "w", "w/x"}) {
		t.Fatalf("last RUN's layer: %q, want the working dir it made and /pwd", got)
	}
	if p := findRunEntry(ents, "pwd"); p == nil || p.data != "/w/x\n" {
		t.Fatalf("/pwd = %+v", p)
	}
}
