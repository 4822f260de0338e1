//go:build linux

package layer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// overlay is a real overlay mount over lower for one test.
type overlay struct {
	lower, upper, work, merged string
	mounted                    bool
}

func mountOverlay(t *testing.T, lower string) *overlay {
	t.Helper()
	base := t.TempDir()
	o := &overlay{lower: lower, upper: filepath.Join(base, "upper"), work: filepath.Join(base, "work"), merged: filepath.Join(base, "merged")}
	for _, d := range []string{o.upper, o.work, o.merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,index=off,redirect_dir=off,metacopy=off", o.lower, o.upper, o.work)
	if err := unix.Mount("overlay", o.merged, "overlay", 0, opts); err != nil {
		t.Skipf("overlay mount not available: %v", err)
	}
	o.mounted = true
	t.Cleanup(o.unmount)
	return o
}

func (o *overlay) unmount() {
	if o.mounted {
		o.mounted = false
		_ = unix.Unmount(o.merged, unix.MNT_DETACH)
	}
}

// belowIn answers Changes' question from a lower directory.
func belowIn(lower string) Below {
	return func(name string) (fs.FileInfo, string, error) {
		p := filepath.Join(lower, filepath.FromSlash(name))
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil, "", nil
		}
		return fi, p, err
	}
}

// flatten applies lower and then the layer made of entries to a new dir.
func flatten(t *testing.T, lower string, entries []Entry) string {
	t.Helper()
	dir := t.TempDir()
	base, err := DirEntries(lower)
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := pack(t, base, PackOptions{})
	applyBytes(t, dir, blob, WhiteoutDelete)
	blob, _ = pack(t, entries, PackOptions{Compression: Zstd})
	applyBytes(t, dir, blob, WhiteoutDelete)
	return dir
}

// copyTree copies src into the new directory dst through a layer.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	es, err := DirEntries(src)
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := pack(t, es, PackOptions{})
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	applyBytes(t, dst, blob, WhiteoutReject)
}

func TestChangesMatchOverlay(t *testing.T) {
	requireRoot(t)
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x6c61796572))
			lower := t.TempDir()
			g := &treeGen{t: t, rng: rng}
			g.fill(lower, 0)
			o := mountOverlay(t, lower)
			var log []string
			for range 16 + rng.IntN(16) {
				log = append(log, g.mutate(o.merged))
			}
			want := treeState(t, o.merged, true)
			mergedCopy := filepath.Join(t.TempDir(), "copy")
			copyTree(t, o.merged, mergedCopy)
			o.unmount()

			changes, err := Changes(o.upper, belowIn(lower), ChangeOptions{})
			if err != nil {
				t.Fatalf("Changes: %v", err)
			}
			// The same with opaque dirs written as whiteouts of what they lost.
			perChild, err := Changes(o.upper, belowIn(lower), ChangeOptions{BelowDir: func(name string) ([]string, error) {
				ents, err := os.ReadDir(filepath.Join(lower, filepath.FromSlash(name)))
				names := make([]string, len(ents))
				for i, e := range ents {
					names[i] = e.Name()
				}
				return names, err
			}})
			if err != nil {
				t.Fatalf("Changes with BelowDir: %v", err)
			}
			diff, err := Diff(lower, mergedCopy)
			if err != nil {
				t.Fatalf("Diff: %v", err)
			}
			for name, entries := range map[string][]Entry{"Changes": changes, "Changes with BelowDir": perChild, "Diff": diff} {
				got := treeState(t, flatten(t, lower, entries), true)
				if d := diffStates(want, got); d != "" {
					t.Errorf("lower + %s differs from the merged view:\n%s\nmutations:\n  %s\nentries:\n%s",
						name, d, strings.Join(log, "\n  "), describe(entries))
				}
			}
		})
	}
}

func describe(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "  %s %v wh=%v opq=%v\n", e.Name, e.Mode, e.Whiteout, e.Opaque)
	}
	return b.String()
}

// treeGen makes random trees and random changes to them.
type treeGen struct {
	t   *testing.T
	rng *rand.Rand
	n   int
}

func (g *treeGen) must(err error) {
	g.t.Helper()
	if err != nil {
		g.t.Fatal(err)
	}
}

func (g *treeGen) name() string {
	return string(rune('a' + g.rng.IntN(6)))
}

func (g *treeGen) content() []byte {
	g.n++
	return bytes.Repeat([]byte(fmt.Sprintf("%d-", g.n)), g.rng.IntN(3000))
}

func (g *treeGen) fill(dir string, depth int) {
	for range 2 + g.rng.IntN(4) {
		p := filepath.Join(dir, g.name())
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		switch k := g.rng.IntN(10); {
		case k < 3 && depth < 3:
			g.must(os.Mkdir(p, 0o755))
			g.fill(p, depth+1)
		case k < 7:
			g.must(os.WriteFile(p, g.content(), 0o644))
		case k < 8:
			g.must(os.Symlink(g.name()+"/"+g.name(), p))
		case k < 9:
			g.must(unix.Mkfifo(p, 0o640))
		default:
			g.must(unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
		}
		g.meta(p)
	}
}

// meta randomizes owner, mode and xattrs of p.
func (g *treeGen) meta(p string) {
	st, err := os.Lstat(p)
	g.must(err)
	g.must(os.Lchown(p, []int{0, 1000, 65534}[g.rng.IntN(3)], []int{0, 1000, 42}[g.rng.IntN(3)]))
	if st.Mode()&fs.ModeSymlink != 0 {
		return
	}
	mode := []fs.FileMode{0o755, 0o700, 0o644, 0o600, 0o4755, 0o1777}[g.rng.IntN(6)]
	if mode&0o4000 != 0 {
		mode = mode&^0o4000 | fs.ModeSetuid
	}
	if mode&0o1000 != 0 {
		mode = mode&^0o1000 | fs.ModeSticky
	}
	g.must(os.Chmod(p, mode))
	if g.rng.IntN(4) == 0 && (st.IsDir() || st.Mode().IsRegular()) {
		g.must(unix.Lsetxattr(p, "user."+g.name(), []byte(g.name()), 0))
	}
}

// paths lists everything below root.
func (g *treeGen) paths(root string) []string {
	var out []string
	g.must(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			out = append(out, p)
		}
		return nil
	}))
	return out
}

func (g *treeGen) pick(root string, keep func(fs.FileInfo) bool) (string, fs.FileInfo, bool) {
	var cands []string
	var infos []fs.FileInfo
	for _, p := range g.paths(root) {
		st, err := os.Lstat(p)
		g.must(err)
		if keep == nil || keep(st) {
			cands, infos = append(cands, p), append(infos, st)
		}
	}
	if len(cands) == 0 {
		return "", nil, false
	}
	i := g.rng.IntN(len(cands))
	return cands[i], infos[i], true
}

func isDir(st fs.FileInfo) bool { return st.IsDir() }

// dirIn picks root or a directory below it.
func (g *treeGen) dirIn(root string) string {
	if p, _, ok := g.pick(root, isDir); ok && g.rng.IntN(3) > 0 {
		return p
	}
	return root
}

// mutate applies one random change through the merged view and says what.
func (g *treeGen) mutate(root string) string {
	rel := func(p string) string { r, _ := filepath.Rel(root, p); return r }
	switch g.rng.IntN(11) {
	case 0: // create or overwrite a file
		p := filepath.Join(g.dirIn(root), g.name())
		if st, err := os.Lstat(p); err == nil && !st.Mode().IsRegular() {
			return "skip create over " + rel(p)
		}
		g.must(os.WriteFile(p, g.content(), 0o644))
		return "write " + rel(p)
	case 1: // delete
		if p, _, ok := g.pick(root, nil); ok {
			g.must(os.RemoveAll(p))
			return "rm -rf " + rel(p)
		}
	case 2: // chmod, chown, xattr
		if p, _, ok := g.pick(root, nil); ok {
			g.meta(p)
			return "meta " + rel(p)
		}
	case 3: // rename
		p, _, ok := g.pick(root, nil)
		dst := filepath.Join(g.dirIn(root), g.name()+g.name())
		if !ok || strings.HasPrefix(dst+"/", p+"/") || strings.HasPrefix(p+"/", dst+"/") {
			return "skip rename"
		}
		if _, err := os.Lstat(dst); err == nil {
			g.must(os.RemoveAll(dst))
		}
		if err := os.Rename(p, dst); errors.Is(err, unix.EXDEV) {
			copyTree(g.t, p, dst) // what mv does without redirect_dir
			g.must(os.RemoveAll(p))
		} else {
			g.must(err)
		}
		return "mv " + rel(p) + " " + rel(dst)
	case 4: // file <-> dir
		if p, st, ok := g.pick(root, nil); ok {
			g.must(os.RemoveAll(p))
			if st.IsDir() {
				g.must(os.WriteFile(p, g.content(), 0o600))
				return "dir->file " + rel(p)
			}
			g.must(os.Mkdir(p, 0o750))
			g.must(os.WriteFile(filepath.Join(p, g.name()), g.content(), 0o644))
			return "file->dir " + rel(p)
		}
	case 5: // symlink retarget or new symlink
		p, _, ok := g.pick(root, func(st fs.FileInfo) bool { return st.Mode()&fs.ModeSymlink != 0 })
		if !ok {
			p = filepath.Join(g.dirIn(root), g.name())
			if _, err := os.Lstat(p); err == nil {
				return "skip symlink"
			}
		} else {
			g.must(os.Remove(p))
		}
		g.must(os.Symlink("/"+g.name()+g.name(), p))
		return "ln -s " + rel(p)
	case 6: // hardlink
		p, _, ok := g.pick(root, func(st fs.FileInfo) bool { return st.Mode().IsRegular() })
		dst := filepath.Join(g.dirIn(root), g.name()+"-link")
		if _, err := os.Lstat(dst); !ok || err == nil {
			return "skip hardlink"
		}
		g.must(os.Link(p, dst))
		return "ln " + rel(p) + " " + rel(dst)
	case 7: // rm -rf a directory and make it again, maybe reusing names
		if p, _, ok := g.pick(root, isDir); ok {
			g.must(os.RemoveAll(p))
			g.must(os.Mkdir(p, 0o755))
			g.fill(p, 2)
			return "rm -rf + mkdir " + rel(p)
		}
	case 8: // new subtree
		p := filepath.Join(g.dirIn(root), g.name()+"new")
		if _, err := os.Lstat(p); err == nil {
			return "skip mkdir"
		}
		g.must(os.Mkdir(p, 0o755))
		g.fill(p, 1)
		return "mkdir " + rel(p)
	case 9: // append to a file (copy-up of content)
		if p, _, ok := g.pick(root, func(st fs.FileInfo) bool { return st.Mode().IsRegular() }); ok {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			g.must(err)
			_, err = f.Write([]byte("more"))
			g.must(err)
			g.must(f.Close())
			return "append " + rel(p)
		}
	case 10: // empty a directory without removing it
		if p, _, ok := g.pick(root, isDir); ok {
			des, err := os.ReadDir(p)
			g.must(err)
			for _, de := range des {
				g.must(os.RemoveAll(filepath.Join(p, de.Name())))
			}
			return "empty " + rel(p)
		}
	}
	return "noop"
}

func TestChangesWhiteoutsAndOpaque(t *testing.T) {
	requireRoot(t)
	upper := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(unix.Mknod(filepath.Join(upper, "gone"), unix.S_IFCHR, 0))
	must(unix.Mknod(filepath.Join(upper, "never"), unix.S_IFCHR, 0))
	must(unix.Mknod(filepath.Join(upper, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Mkdir(filepath.Join(upper, "opq"), 0o755))
	must(unix.Lsetxattr(filepath.Join(upper, "opq"), "trusted.overlay.opaque", []byte("y"), 0))
	must(unix.Lsetxattr(filepath.Join(upper, "opq"), "trusted.overlay.origin", []byte("x"), 0))
	must(unix.Lsetxattr(filepath.Join(upper, "opq"), "trusted.other", []byte("kept"), 0))
	must(unix.Mknod(filepath.Join(upper, "opq/inner"), unix.S_IFCHR, 0))
	must(os.WriteFile(filepath.Join(upper, "opq/f"), []byte("x"), 0o644))
	must(filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		must(err)
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{{Sec: 7}, {Sec: 1234567890}}, unix.AT_SYMLINK_NOFOLLOW)
	}))
	lower := t.TempDir()
	must(os.WriteFile(filepath.Join(lower, "gone"), nil, 0o644))
	must(os.MkdirAll(filepath.Join(lower, "opq/inner"), 0o700))
	es, err := Changes(upper, belowIn(lower), ChangeOptions{})
	must(err)
	got := describe(es)
	want := "  gone ---------- wh=true opq=false\n" +
		"  null Dcrw-r--r-- wh=false opq=false\n" +
		"  opq drwxr-xr-x wh=false opq=true\n" +
		"  opq/f -rw-r--r-- wh=false opq=false\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if x := es[2].Xattrs; len(x) != 1 || x["trusted.other"] != "kept" {
		t.Errorf("opq xattrs %q, want only trusted.other", x)
	}
	blob, _ := pack(t, es, PackOptions{})
	checkGolden(t, "changes_listing.golden", listing(tarHeaders(t, blob)))

	_, err = Changes(upper, func(string) (fs.FileInfo, string, error) { return nil, "", errors.New("boom") }, ChangeOptions{})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("below error not returned: %v", err)
	}
}

func TestChangesRefusesRedirectAndMetacopy(t *testing.T) {
	requireRoot(t)
	for _, x := range []string{"trusted.overlay.redirect", "trusted.overlay.metacopy"} {
		upper := t.TempDir()
		p := filepath.Join(upper, "d")
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Lsetxattr(p, x, []byte("/elsewhere"), 0); err != nil {
			t.Fatal(err)
		}
		_, err := Changes(upper, belowIn(t.TempDir()), ChangeOptions{})
		if err == nil || !strings.Contains(err.Error(), x) || !strings.Contains(err.Error(), `"d"`) {
			t.Errorf("%s: err = %v", x, err)
		}
	}
}

func TestDiff(t *testing.T) {
	requireRoot(t)
	lower, newer := t.TempDir(), t.TempDir()
	for _, root := range []string{lower, newer} {
		for _, d := range []string{"same", "emptied", "partly", "gone/deep", "todir"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func(root, p, s string) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"same/f", "emptied/a", "emptied/b", "partly/a", "partly/b", "gone/deep/x", "todir/x", "content"} {
		write(lower, p, "v1")
	}
	write(newer, "same/f", "v1")
	write(newer, "partly/a", "v1")
	write(newer, "content", "v2")
	if err := os.RemoveAll(filepath.Join(newer, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(newer, "todir")); err != nil {
		t.Fatal(err)
	}
	write(newer, "todir", "file now")
	// Same content and second, different nanoseconds: unchanged.
	for _, root := range []string{lower, newer} {
		for _, p := range []string{"same/f", "partly/a", "content"} {
			ts := []unix.Timespec{{Sec: 5}, {Sec: 1e9, Nsec: int64(len(root))}}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, p), ts, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	es, err := Diff(lower, newer)
	if err != nil {
		t.Fatal(err)
	}
	got := describe(es)
	want := "  content -rw-r--r-- wh=false opq=false\n" +
		"  emptied drwxr-xr-x wh=false opq=true\n" +
		"  gone ---------- wh=true opq=false\n" +
		"  partly/b ---------- wh=true opq=false\n" +
		"  todir -rw-r--r-- wh=false opq=false\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	flat := flatten(t, lower, es)
	if d := diffStates(treeState(t, newer, true), treeState(t, flat, true)); d != "" {
		t.Errorf("lower + Diff != newer:\n%s", d)
	}
}

// An upper entry equal to the one below is left out, by BuildKit's rules:
// a file copied up unchanged (times without nanoseconds: the content
// decides), the same symlink, a directory copied up with another mtime
// unless something under it is recorded.
func TestChangesSkipsUnchanged(t *testing.T) {
	requireRoot(t)
	lower, upper := t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, root := range []string{lower, upper} {
		must(os.MkdirAll(filepath.Join(root, "d"), 0o755))
		must(os.WriteFile(filepath.Join(root, "d/same"), []byte("same"), 0o644))
		must(os.Symlink("same", filepath.Join(root, "d/link")))
		must(os.WriteFile(filepath.Join(root, "d/owner"), []byte("o"), 0o644))
		must(os.MkdirAll(filepath.Join(root, "mode"), 0o755))
		must(os.MkdirAll(filepath.Join(root, "quiet"), 0o755))
		must(os.WriteFile(filepath.Join(root, "quiet/same"), []byte("q"), 0o644))
	}
	must(os.WriteFile(filepath.Join(lower, "d/content"), []byte("aaaa"), 0o644))
	must(os.WriteFile(filepath.Join(upper, "d/content"), []byte("bbbb"), 0o644))
	must(os.WriteFile(filepath.Join(lower, "d/touched"), []byte("t"), 0o644))
	must(os.WriteFile(filepath.Join(upper, "d/touched"), []byte("t"), 0o644))
	must(os.WriteFile(filepath.Join(upper, "d/new"), []byte("n"), 0o644))
	must(os.Lchown(filepath.Join(upper, "d/owner"), 1, 1))
	must(os.Chmod(filepath.Join(upper, "mode"), 0o700))
	// Same times everywhere (whole seconds), but for the touched file and
	// the directory d, whose mtime differs and does not count.
	for _, root := range []string{lower, upper} {
		must(filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
			must(err)
			return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{{Sec: 7}, {Sec: 1000}}, unix.AT_SYMLINK_NOFOLLOW)
		}))
	}
	must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(upper, "d/touched"), []unix.Timespec{{Sec: 7}, {Sec: 2000}}, 0))
	must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(upper, "d"), []unix.Timespec{{Sec: 7}, {Sec: 2000}}, 0))
	must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(upper, "quiet"), []unix.Timespec{{Sec: 7}, {Sec: 2000}}, 0))
	var restored []string
	es, err := Changes(upper, belowIn(lower), ChangeOptions{SameDir: func(n string, _ fs.FileInfo) error {
		restored = append(restored, n)
		return nil
	}})
	must(err)
	var got []string
	for _, e := range es {
		got = append(got, e.Name)
	}
	// d is back as the parent of what is recorded under it.
	want := []string{"d", "d/content", "d/new", "d/owner", "d/touched", "mode"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("changes %q, want %q", got, want)
	}
	if strings.Join(restored, " ") != "quiet" {
		t.Fatalf("SameDir called for %q, want only quiet", restored)
	}
}

// SameAsBelow: an entry written again as the layers below have it.
func TestSameAsBelow(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	low := filepath.Join(dir, "f")
	if err := os.WriteFile(low, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1000, 0)
	if err := os.Chtimes(low, mt, mt); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(low)
	if err != nil {
		t.Fatal(err)
	}
	open := func(s string) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
	}
	epoch := time.Unix(500, 0)
	for _, tc := range []struct {
		name  string
		e     Entry
		clamp *time.Time
		want  bool
	}{
		{"same", Entry{Name: "f", Mode: 0o644, Size: 4, ModTime: mt, Open: open("data")}, nil, true},
		{"content", Entry{Name: "f", Mode: 0o644, Size: 4, ModTime: mt, Open: open("datb")}, nil, false},
		{"mode", Entry{Name: "f", Mode: 0o600, Size: 4, ModTime: mt, Open: open("data")}, nil, false},
		{"owner", Entry{Name: "f", Mode: 0o644, UID: 1, Size: 4, ModTime: mt, Open: open("data")}, nil, false},
		{"time", Entry{Name: "f", Mode: 0o644, Size: 4, ModTime: mt.Add(time.Second), Open: open("data")}, nil, false},
		{"clamped time", Entry{Name: "f", Mode: 0o644, Size: 4, ModTime: time.Unix(2000, 0), Open: open("data")}, &mt, true},
		{"older than the clamp", Entry{Name: "f", Mode: 0o644, Size: 4, ModTime: time.Unix(400, 0), Open: open("data")}, &epoch, false},
	} {
		got, err := SameAsBelow(tc.e, fi, low, tc.clamp)
		if err != nil || got != tc.want {
			t.Errorf("%s: SameAsBelow = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}
