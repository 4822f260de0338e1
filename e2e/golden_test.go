//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/builderdev/builder/internal/fsmode"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestGolden")

// The golden cases live in ../testdata/dockerfiles/<name>/: a Dockerfile,
// its context files, an optional `args` file (build flags, one per line:
// "--build-arg X=1", "--target t", "-f sub/Other.Dockerfile") and the goldens:
//
//	config.golden.json  the image config, normalized (see normalizeConfig)
//	files.golden        what the build added to its base: "type mode uid:gid size path [-> link]"
//	contents.golden     contents of the small text files among them (when any)
//	warnings.golden     WARNING lines the build must print (when any; it may
//	                    print more)
//
// Each case is tagged cases/<name>; a Dockerfile that names cases/<other>
// (FROM, --from) gets that case built first. Files git cannot hold
// (hardlinks, setuid bits, archives, empty dirs) are made by caseSetup in a
// copy of the context.
const casesDir = "../testdata/dockerfiles"

// goldenFiles are the names in a case dir that are not build context.
var goldenFiles = map[string]bool{
	"args": true, "config.golden.json": true, "files.golden": true,
	"contents.golden": true, "warnings.golden": true,
}

func TestGolden(t *testing.T) {
	names := caseNames(t)
	if len(names) < 40 {
		t.Fatalf("%d golden cases, want at least 40", len(names))
	}
	g := &goldenRun{e: newEnv(t), done: map[string]bool{}}
	g.base = g.baseListing(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) { g.check(t, name) })
	}
}

func caseNames(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(casesDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// goldenRun is the state shared by the cases: one store, the busybox listing.
type goldenRun struct {
	e    *env
	base map[string]string // path -> listing line of busybox:latest
	done map[string]bool   // cases built (and tagged) so far
}

// baseListing exports busybox:latest and lists it.
func (g *goldenRun) baseListing(t *testing.T) map[string]string {
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n"})
	out := t.TempDir()
	g.e.mustRun("build", ctx, "-o", "type=local,dest="+out)
	m := map[string]string{}
	for _, l := range listTree(t, out) {
		m[l.path] = l.line
	}
	return m
}

var caseRef = regexp.MustCompile(`cases/([a-z0-9][a-z0-9._-]*)`)

// build builds case name once (its dependencies first) and returns what it made.
func (g *goldenRun) build(t *testing.T, name string) (caseBuild, error) {
	t.Helper()
	dir := filepath.Join(casesDir, name)
	df, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		// -f cases keep their Dockerfile elsewhere; dependencies are by name.
		df = nil
	}
	for _, m := range caseRef.FindAllStringSubmatch(string(df), -1) {
		if dep := m[1]; dep != name && !g.done[dep] {
			if _, err := g.build(t, dep); err != nil {
				return caseBuild{}, fmt.Errorf("dependency %s: %w", dep, err)
			}
		}
	}
	ctx := filepath.Join(t.TempDir(), "ctx")
	copyTree(t, dir, ctx)
	if setup := caseSetup[name]; setup != nil {
		setup(t, ctx)
	}
	args := []string{"build", ctx, "-t", "cases/" + name}
	extra, err := readArgs(filepath.Join(dir, "args"))
	if err != nil {
		return caseBuild{}, err
	}
	for i := 0; i < len(extra); i++ {
		if (extra[i] == "-f" || extra[i] == "--file") && i+1 < len(extra) {
			extra[i+1] = filepath.Join(ctx, extra[i+1])
		}
	}
	out := filepath.Join(t.TempDir(), "rootfs")
	args = append(args, "-o", "type=local,dest="+out)
	args = append(args, extra...)
	r := g.e.run(args...)
	if r.code != 0 {
		return caseBuild{}, fmt.Errorf("builder %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	g.done[name] = true
	return caseBuild{rootfs: out, stderr: r.stderr}, nil
}

type caseBuild struct {
	rootfs string
	stderr string
}

func (g *goldenRun) check(t *testing.T, name string) {
	b, err := g.build(t, name)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(casesDir, name)
	ins := g.e.mustRun("inspect", "cases/"+name)
	cfg := normalizeConfig(t, ins.stdout)
	files, contents := g.addedFiles(t, b.rootfs)
	contents = strings.ReplaceAll(contents, runtime.GOARCH, "$ARCH")
	warnings := warningLines(b.stderr)
	goldens := []struct {
		file, got string
		optional  bool
		subset    bool // the golden's lines must all be in got
	}{
		{"config.golden.json", cfg, false, false},
		{"files.golden", files, false, false},
		{"contents.golden", contents, true, false},
		{"warnings.golden", warnings, true, true},
	}
	for _, gf := range goldens {
		p := filepath.Join(dir, gf.file)
		if *update {
			if gf.optional && gf.got == "" {
				os.Remove(p)
				continue
			}
			if err := os.WriteFile(p, []byte(gf.got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(p)
		if err != nil && !(gf.optional && os.IsNotExist(err)) {
			t.Errorf("%s: %v (run go test ./e2e -run TestGolden -update)", gf.file, err)
			continue
		}
		if gf.subset {
			for _, l := range strings.SplitAfter(string(want), "\n") {
				if l != "" && !strings.Contains(gf.got, l) {
					t.Errorf("%s: missing warning %q; got:\n%s", gf.file, l, gf.got)
				}
			}
			continue
		}
		if string(want) != gf.got {
			t.Errorf("%s differs:\n%s", gf.file, lineDiff(string(want), gf.got))
		}
	}
}

// normalizeConfig keeps the config of `builder inspect` without the values
// that change between runs: created times, diff_ids (their count stays) and
// the host architecture (written $ARCH).
func normalizeConfig(t *testing.T, inspect string) string {
	t.Helper()
	var out struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal([]byte(inspect), &out); err != nil {
		t.Fatalf("parse inspect output: %v\n%s", err, inspect)
	}
	c := out.Config
	delete(c, "created")
	if h, ok := c["history"].([]any); ok {
		for _, e := range h {
			delete(e.(map[string]any), "created")
		}
	}
	if rf, ok := c["rootfs"].(map[string]any); ok {
		if ids, ok := rf["diff_ids"].([]any); ok {
			rf["diff_ids"] = len(ids)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(buf.String(), runtime.GOARCH, "$ARCH")
}

// treeEntry is one listed path.
type treeEntry struct {
	path, line string
	content    []byte // small regular files only
}

// listTree lists every path below root (root itself excluded), sorted:
// "type mode uid:gid size path [-> link]". Types: d f l (symlink, -> target)
// h (a hardlink, -> the first path of its inode) c b p s. Size is "-" for
// anything but regular files.
func listTree(t *testing.T, root string) []treeEntry {
	t.Helper()
	var out []treeEntry
	inodes := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, root+"/"))
		typ, size, link := "?", "-", ""
		var content []byte
		m := fi.Mode()
		switch {
		case m.IsDir():
			typ = "d"
		case m&fs.ModeSymlink != 0:
			typ = "l"
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			link = " -> " + target
		case m.IsRegular():
			typ, size = "f", fmt.Sprint(fi.Size())
			if st.Nlink > 1 {
				id := [2]uint64{uint64(st.Dev), st.Ino}
				if first, ok := inodes[id]; ok {
					typ, link = "h", " -> "+first
				} else {
					inodes[id] = rel
				}
			}
			if fi.Size() <= 512 {
				if content, err = os.ReadFile(p); err != nil {
					return err
				}
			}
		case m&fs.ModeCharDevice != 0:
			typ = "c"
		case m&fs.ModeDevice != 0:
			typ = "b"
		case m&fs.ModeNamedPipe != 0:
			typ = "p"
		case m&fs.ModeSocket != 0:
			typ = "s"
		}
		line := fmt.Sprintf("%s %04o %d:%d %s %s%s", typ, fsmode.ToUnix(m), st.Uid, st.Gid, size, rel, link)
		out = append(out, treeEntry{path: rel, line: line, content: content})
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", root, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// addedFiles lists what rootfs has beyond busybox:latest: new or changed
// paths, and "gone <path>" for busybox paths that disappeared. A scratch
// image has none of busybox's paths, so its whole tree is listed.
func (g *goldenRun) addedFiles(t *testing.T, rootfs string) (files, contents string) {
	t.Helper()
	list := listTree(t, rootfs)
	have := map[string]bool{}
	scratch := true
	for _, e := range list {
		have[e.path] = true
		if e.path == "/bin/busybox" {
			scratch = false
		}
	}
	var fb, cb strings.Builder
	for _, e := range list {
		if !scratch && g.base[e.path] == e.line {
			continue
		}
		fb.WriteString(e.line + "\n")
		if e.content != nil && utf8.Valid(e.content) && !bytes.ContainsRune(e.content, 0) {
			fmt.Fprintf(&cb, "%s: %q\n", e.path, e.content)
		}
	}
	if !scratch {
		var gone []string
		for p := range g.base {
			if !have[p] {
				gone = append(gone, "gone "+p)
			}
		}
		sort.Strings(gone)
		for _, p := range gone {
			fb.WriteString(p + "\n")
		}
	}
	return fb.String(), cb.String()
}

// warningLines keeps the WARNING lines of a build's stderr.
func warningLines(stderr string) string {
	var b strings.Builder
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "WARNING:") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// readArgs reads an args file: one flag per line ("--build-arg X=1"), split
// at the first space; blank lines and # comments are skipped.
func readArgs(p string) ([]string, error) {
	data, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		flag, val, ok := strings.Cut(l, " ")
		out = append(out, flag)
		if ok {
			out = append(out, strings.TrimSpace(val))
		}
	}
	return out, nil
}

// copyTree copies a case dir (without its goldens) keeping modes and symlinks.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if filepath.Dir(rel) == "." && goldenFiles[rel] {
			return nil
		}
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, fi.Mode().Perm())
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, fi.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatalf("copy context %s: %v", src, err)
	}
}

// lineDiff shows the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	inW, inG := map[string]int{}, map[string]int{}
	for _, l := range w {
		inW[l]++
	}
	for _, l := range g {
		inG[l]++
	}
	var b strings.Builder
	for _, l := range w {
		if inG[l] == 0 {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if inW[l] == 0 {
			b.WriteString("+ " + l + "\n")
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order or count)\n--- want\n" + want + "--- got\n" + got
	}
	return b.String()
}
