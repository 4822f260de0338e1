package e2e

// Hostile archives: `builder load` refuses them whole and ADD either refuses
// them naming the entry or extracts them with nothing escaping the
// destination. Nothing is ever written outside the store, the output dir
// and the destination.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

// findEvil lists the files named evil* below dir, except below allowed.
func findEvil(t testing.TB, dir string, allowed ...string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, a := range allowed {
			if p == a || strings.HasPrefix(p, a+"/") {
				return nil
			}
		}
		if strings.HasPrefix(d.Name(), "evil") {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// layerEntry returns the index of the biggest blob of an OCI archive (the layer).
func biggestBlob(ents []testutil.TarEntry) int {
	best := -1
	for i, e := range ents {
		if strings.HasPrefix(e.Header.Name, "blobs/sha256/") && (best < 0 || len(e.Data) > len(ents[best].Data)) {
			best = i
		}
	}
	return best
}

func TestLoadHostileArchive(t *testing.T) {
	testutil.RequiresRoot(t)
	base := testutil.ReadTar(t, busyboxTar(t))
	li := biggestBlob(base)
	if li < 0 {
		t.Fatal("busybox archive has no blob")
	}
	manifest := ""
	for _, e := range base {
		if e.Header.Name == "index.json" {
			var idx struct{ Manifests []struct{ Digest string } }
			if err := json.Unmarshal(e.Data, &idx); err != nil || len(idx.Manifests) != 1 {
				t.Fatalf("busybox index.json: %s, %v", e.Data, err)
			}
			manifest = idx.Manifests[0].Digest
		}
	}
	work := t.TempDir()
	outside := filepath.Join(work, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	with := func(extra ...testutil.TarEntry) []testutil.TarEntry {
		return append(append([]testutil.TarEntry{}, base...), extra...)
	}
	replaced := func(e testutil.TarEntry) []testutil.TarEntry {
		ents := append([]testutil.TarEntry{}, base...)
		e.Header.Name = ents[li].Header.Name
		ents[li] = e
		return ents
	}
	flipped := append([]testutil.TarEntry{}, base...)
	flipped[li].Data = append([]byte{}, flipped[li].Data...)
	flipped[li].Data[len(flipped[li].Data)/2] ^= 0xff

	cases := []struct {
		name     string
		ents     []testutil.TarEntry
		truncate bool
		want     string // fragment of the error
		// ignorable: the bad entries are never read (no blob, no
		// metadata names them), so loading the image is fine too.
		ignorable bool
	}{
		{"dotdot entry", with(testutil.TarFile("../evil-dotdot", "x")), false, "../evil-dotdot", false},
		{"absolute entry", with(testutil.TarFile(filepath.Join(outside, "evil-abs"), "x")), false, "evil-abs", false},
		{"symlink dir escape", with(testutil.TarLink("evil-dir", outside, tar.TypeSymlink), testutil.TarFile("evil-dir/evil-through", "x")), false, "", true},
		{"blob symlink to host file", replaced(testutil.TarLink("", "/etc/passwd", tar.TypeSymlink)), false, "/etc/passwd", false},
		{"blob symlink up", replaced(testutil.TarLink("", "../../../../etc/passwd", tar.TypeSymlink)), false, "../../../../etc/passwd", false},
		{"blob hardlink up", replaced(testutil.TarLink("", "../../etc/passwd", tar.TypeLink)), false, "../../etc/passwd", false},
		{"wrong digest", flipped, false, "digest", false},
		{"truncated", base, true, "", false},
	}
	// A fresh store per case: blobs already present are skipped by load,
	// and the point is what a store that has nothing yet ingests.
	bin := testutil.BuildBinary(t)
	t.Run("missing input", func(t *testing.T) {
		e := &env{t: t, bin: bin, root: filepath.Join(t.TempDir(), "root")}
		r := e.run("load", "-i", filepath.Join(work, "nope.tar"))
		if msg := errorLine(r.stderr); r.code != 2 || !strings.Contains(msg, "nope.tar does not exist") {
			t.Errorf("exit %d, %q: want 2 and the missing file named", r.code, msg)
		}
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			e := &env{t: t, bin: bin, root: filepath.Join(dir, "root")}
			e.mustRun("images") // creates the store
			path := filepath.Join(dir, "hostile.tar")
			testutil.WriteTar(t, path, tc.ents...)
			if tc.truncate {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(path, fi.Size()/2); err != nil {
					t.Fatal(err)
				}
			}
			before := e.snapState(t)
			r := e.run("load", "-i", path)
			if r.code == 0 && tc.ignorable {
				// Loaded as the clean archive would be.
				idx, err := os.ReadFile(filepath.Join(e.root, "index.json"))
				if err != nil || !strings.Contains(string(idx), manifest) {
					t.Errorf("index.json = %s, %v: want manifest %s", idx, err, manifest)
				}
				e.mustRun("check")
				e.checkStore(t, nil)
				if evil := findEvil(t, work); len(evil) > 0 {
					t.Errorf("load wrote outside the store: %v", evil)
				}
				return
			}
			if r.code != 1 {
				t.Errorf("load: exit %d, want 1\nstdout:%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			msg := errorLine(r.stderr)
			if !strings.Contains(msg, "hostile.tar") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q: want the archive and %q named", msg, tc.want)
			}
			e.checkStore(t, &before)
			for _, d := range []string{dir, work} {
				if evil := findEvil(t, d); len(evil) > 0 {
					t.Errorf("load wrote outside the store: %v", evil)
				}
			}
			if imgs := e.mustRun("images").stdout; strings.Contains(imgs, "busybox") {
				t.Errorf("hostile archive was loaded:\n%s", imgs)
			}
		})
	}
}

// hostileTar is an archive an ADD must refuse naming entry, or extract
// with nothing outside its destination.
type hostileTar struct {
	name  string
	ents  []testutil.TarEntry
	entry string // the entry an error must name
}

// hostileTars are the archives ADD is tried with, as root and rootless.
func hostileTars() []hostileTar {
	return []hostileTar{
		{"dotdot", []testutil.TarEntry{testutil.TarFile("ok", "ok"), testutil.TarFile("../../evil-dotdot", "x")}, "../../evil-dotdot"},
		{"absolute", []testutil.TarEntry{testutil.TarFile("/abs/evil-abs", "x")}, "/abs/evil-abs"},
		{"symlink root", []testutil.TarEntry{testutil.TarLink("s", "/", tar.TypeSymlink), testutil.TarFile("s/evil-sym", "x")}, "s/evil-sym"},
		{"symlink up", []testutil.TarEntry{testutil.TarLink("u", "../../../..", tar.TypeSymlink), testutil.TarFile("u/evil-up", "x")}, "u/evil-up"},
		{"hardlink up", []testutil.TarEntry{testutil.TarLink("evil-hard", "../../etc/passwd", tar.TypeLink)}, "evil-hard"},
		{"hardlink abs", []testutil.TarEntry{testutil.TarLink("evil-hardabs", "/etc/passwd", tar.TypeLink)}, "evil-hardabs"},
	}
}

// hostPathsUntouched fails when an archive's entries landed at the host's
// root.
func hostPathsUntouched(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/abs/evil-abs", "/evil-dotdot", "/evil-sym", "/evil-up", "/evil-hard"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("host file %s created", p)
		}
	}
}

func TestAddHostileArchive(t *testing.T) {
	e := newEnv(t)
	host, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range hostileTars() {
		t.Run(tc.name, func(t *testing.T) {
			ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nADD hostile.tar /dst/\n"})
			testutil.WriteTar(t, filepath.Join(ctx, "hostile.tar"), tc.ents...)
			out := filepath.Join(t.TempDir(), "out")
			before := e.snapState(t)
			r := e.run("build", ctx, "-o", "type=local,dest="+out)
			t.Logf("exit %d: %s", r.code, errorLine(r.stderr))
			switch r.code {
			case 0:
				checkAddRootfs(t, out, host)
			case 1:
				msg := errorLine(r.stderr)
				if !strings.HasPrefix(msg, "error: Dockerfile:2: ADD hostile.tar /dst/: ") || !strings.Contains(msg, tc.entry) {
					t.Errorf("error %q: want Dockerfile:2 and the entry %q named", msg, tc.entry)
				}
				e.checkStore(t, &before)
			default:
				t.Errorf("exit %d, want 0 or 1:\n%s", r.code, r.stderr)
			}
			// Only <out>/dst may hold what the archive carries.
			for _, d := range []string{filepath.Dir(ctx), filepath.Dir(out), filepath.Dir(e.root)} {
				if evil := findEvil(t, d, filepath.Join(out, "dst"), filepath.Join(e.root, "snapshots")); len(evil) > 0 {
					t.Errorf("files escaped the destination: %v", evil)
				}
			}
			hostPathsUntouched(t)
			e.checkStore(t, nil)
		})
	}
}

// checkAddRootfs checks a rootfs made by ADD hostile.tar /dst/: every evil*
// file is below /dst, /etc/passwd is busybox's, and no file holds the
// host's /etc/passwd.
func checkAddRootfs(t *testing.T, out string, host []byte) {
	t.Helper()
	if evil := findEvil(t, out, filepath.Join(out, "dst")); len(evil) > 0 {
		t.Errorf("archive entries outside /dst: %v", evil)
	}
	pw, err := os.ReadFile(filepath.Join(out, "etc", "passwd"))
	if err != nil || !strings.Contains(string(pw), "www") || strings.Contains(string(pw), "evil") {
		t.Errorf("/etc/passwd = %q, %v: want busybox's", pw, err)
	}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Equal(data, host) {
			t.Errorf("%s holds the host's /etc/passwd", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
