package e2e

// The step cache end to end: every "must miss" and "must hit" of the cache
// issue, each tested both ways, read from the CACHED/DONE state that
// `--progress plain` prints for each step. Store maintenance (prune, df,
// check) is in cache_gc_test.go, concurrent builds in
// cache_concurrency_test.go, SIGKILL recovery in cache_crash_test.go.

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/builderdev/builder/internal/testutil"
)

// stepDoneLine is the line plain progress prints when a step ends:
// "#3 [stage-0 2/4] COPY a /b CACHED 0.001s".
// A hit from an imported cache says where it came from: "CACHED (registry REF)".
var stepDoneLine = regexp.MustCompile(`^#\d+ \[[^\]]+\] (.*) (DONE|CACHED(?: \([^)]*\))?|ERROR|CANCELED) \d+\.\d+s$`)

// stepStates returns one letter per finished step other than FROM, in the
// order printed: H for CACHED (a hit), M for DONE (a miss: the step ran), E
// for ERROR, C for CANCELED.
func stepStates(stderr string) string {
	var b strings.Builder
	for _, l := range strings.Split(stderr, "\n") {
		m := stepDoneLine.FindStringSubmatch(l)
		if m == nil || strings.HasPrefix(m[1], "FROM ") {
			continue
		}
		state, _, _ := strings.Cut(m[2], " ")
		b.WriteByte(map[string]byte{"CACHED": 'H', "DONE": 'M', "ERROR": 'E', "CANCELED": 'C'}[state])
	}
	return b.String()
}

// summaryLine is the last line of a plain build: the image and manifest.
var summaryLine = regexp.MustCompile(`(?m)^built image (sha256:[0-9a-f]{64}) \(manifest (sha256:[0-9a-f]{64})\)`)

// manifestOf returns the manifest digest a build printed.
func manifestOf(t testing.TB, stderr string) string {
	t.Helper()
	m := summaryLine.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no summary line in build output:\n%s", stderr)
	}
	return m[2]
}

// buildStates runs a build of dir and returns the step states.
func (e *env) buildStates(t *testing.T, dir string, flags ...string) (string, result) {
	t.Helper()
	r := e.run(append([]string{"build", "--progress", "plain", dir}, flags...)...)
	if r.code != 0 {
		t.Fatalf("build %s %v: exit %d\n%s", dir, flags, r.code, r.stderr)
	}
	return stepStates(r.stderr), r
}

// wantStates builds and compares the step states with want.
func (e *env) wantStates(t *testing.T, what, dir, want string, flags ...string) result {
	t.Helper()
	got, r := e.buildStates(t, dir, flags...)
	if got != want {
		t.Fatalf("%s: step states %q, want %q (H = CACHED, M = ran)\n%s", what, got, want, r.stderr)
	}
	return r
}

func cacheWrite(t testing.TB, dir, rel, data string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// editFile replaces the one occurrence of old in dir/rel with new.
func cacheEdit(t testing.TB, dir, rel, old, new string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), old); n != 1 {
		t.Fatalf("edit %s: %q occurs %d times", rel, old, n)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

func cacheMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// cacheCase is a context, its first build, and changes made one after the
// other, each followed by a build whose step states must be want.
type cacheCase struct {
	name    string
	files   map[string]string
	args    map[string]string // --build-arg of every build; changes may edit it
	changes []cacheChange
}

type cacheChange struct {
	what  string
	apply func(t *testing.T, dir string, args map[string]string)
	want  string
}

func buildArgFlags(args map[string]string) []string {
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, "--build-arg", k+"="+args[k])
	}
	return out
}

func edit(rel, old, new string) func(*testing.T, string, map[string]string) {
	return func(t *testing.T, dir string, _ map[string]string) { cacheEdit(t, dir, rel, old, new) }
}

func setArg(k, v string) func(*testing.T, string, map[string]string) {
	return func(_ *testing.T, _ string, args map[string]string) { args[k] = v }
}

// run checks a case: the first build runs every step, an unchanged rebuild
// hits every step, and after each change the states are as wanted and a
// second unchanged rebuild hits every step again.
func (c cacheCase) run(t *testing.T, e *env) {
	dir := writeContext(t, c.files)
	args := map[string]string{}
	for k, v := range c.args {
		args[k] = v
	}
	first, r := e.buildStates(t, dir, buildArgFlags(args)...)
	if strings.Trim(first, "M") != "" || first == "" {
		t.Fatalf("first build: states %q, want every step to run\n%s", first, r.stderr)
	}
	allHit := strings.Repeat("H", len(first))
	e.wantStates(t, "unchanged rebuild", dir, allHit, buildArgFlags(args)...)
	for _, ch := range c.changes {
		if len(ch.want) != len(first) {
			t.Fatalf("%s: want %q has %d steps, the build has %d", ch.what, ch.want, len(ch.want), len(first))
		}
		ch.apply(t, dir, args)
		e.wantStates(t, ch.what, dir, ch.want, buildArgFlags(args)...)
		e.wantStates(t, ch.what+", rebuilt unchanged", dir, allHit, buildArgFlags(args)...)
	}
}

func TestCacheHitsAndMisses(t *testing.T) {
	e := newEnv(t)
	later := time.Now().Add(time.Hour)
	cases := []cacheCase{{
		name: "build args",
		files: map[string]string{
			"a.txt": "args case\n",
			"Dockerfile": "FROM busybox:latest\nCOPY a.txt /a.txt\nARG A\nRUN echo \"args-case A=$A\" > /a\n" +
				"ARG LATE\nRUN echo late > /late\n",
		},
		args: map[string]string{"A": "1", "LATE": "1", "UNUSED": "1"},
		changes: []cacheChange{
			{"unused build arg changed", setArg("UNUSED", "2"), "HHH"},
			{"build arg a RUN sees changed", setArg("A", "2"), "HMM"},
			{"build arg declared after the first RUN changed", setArg("LATE", "2"), "HHM"},
			{"build arg back to its first value: its record serves", setArg("A", "1"), "HHM"},
			{"new unused build arg", setArg("OTHER", "x"), "HHH"},
		},
	}, {
		name: "env",
		files: map[string]string{
			"e.txt":      "env case\n",
			"Dockerfile": "FROM busybox:latest\nCOPY e.txt /e.txt\nENV E=1\nRUN echo \"env-case $E\" > /e\nENV AFTER=1\n",
		},
		changes: []cacheChange{
			{"ENV after the RUN changed", edit("Dockerfile", "AFTER=1", "AFTER=2"), "HH"},
			// BuildKit: ENV changes the config, not the rootfs a COPY starts from.
			{"ENV before the RUN changed", edit("Dockerfile", "ENV E=1", "ENV E=2"), "HM"},
			{"ENV before the RUN added", edit("Dockerfile", "ENV E=2", "ENV E=2 F=3"), "HM"},
		},
	}, {
		name: "copy sources",
		files: map[string]string{
			"src/x.txt":  "x1\n",
			"src/y.txt":  "y1\n",
			"other.txt":  "not copied\n",
			"Dockerfile": "FROM busybox:latest\nRUN echo copy-case > /c\nCOPY src/ /src/\nRUN ls -ln /src > /listing\n",
		},
		changes: []cacheChange{
			{"mtime of a source touched", func(t *testing.T, dir string, _ map[string]string) {
				cacheMust(t, os.Chtimes(filepath.Join(dir, "src/x.txt"), later, later))
			}, "HHH"},
			{"mtime of the source dir touched", func(t *testing.T, dir string, _ map[string]string) {
				cacheMust(t, os.Chtimes(filepath.Join(dir, "src"), later, later))
			}, "HHH"},
			{"file beside the COPY source changed", edit("other.txt", "not", "still not"), "HHH"},
			{"source content changed", edit("src/x.txt", "x1", "x2"), "HMM"},
			{"source content changed, same size and mtime", func(t *testing.T, dir string, _ map[string]string) {
				p := filepath.Join(dir, "src/x.txt")
				fi, err := os.Stat(p)
				cacheMust(t, err)
				cacheMust(t, os.WriteFile(p, []byte("x3\n"), 0o644))
				cacheMust(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
			}, "HMM"},
			{"source mode changed", func(t *testing.T, dir string, _ map[string]string) {
				cacheMust(t, os.Chmod(filepath.Join(dir, "src/y.txt"), 0o755))
			}, "HMM"},
			// As BuildKit, which sends the context with owners reset to
			// root: a COPY gives its files root (or --chown) anyway.
			{"source owner changed", func(t *testing.T, dir string, _ map[string]string) {
				cacheMust(t, os.Lchown(filepath.Join(dir, "src/y.txt"), 1000, 1000))
			}, "HHH"},
			{"source file added", func(t *testing.T, dir string, _ map[string]string) {
				cacheWrite(t, dir, "src/z.txt", "z\n")
			}, "HMM"},
			// Back to the sources of an earlier build: its records serve.
			{"added file removed again", func(t *testing.T, dir string, _ map[string]string) {
				cacheMust(t, os.Remove(filepath.Join(dir, "src/z.txt")))
			}, "HHH"},
		},
	}, {
		name: "dockerignore",
		files: map[string]string{
			// The ignore file and the Dockerfile ignore themselves, so only
			// what they select can change the COPY.
			".dockerignore": "*.log\nsecret/\n.dockerignore\nDockerfile\n",
			"keep.txt":      "keep\n",
			"debug.log":     "log 1\n",
			"secret/key":    "k1\n",
			"Dockerfile":    "FROM busybox:latest\nCOPY . /app/\nRUN echo ignore-case > /i\n",
		},
		changes: []cacheChange{
			{"ignored file changed", edit("debug.log", "log 1", "log 2"), "HH"},
			{"file added in an ignored dir", func(t *testing.T, dir string, _ map[string]string) {
				cacheWrite(t, dir, "secret/new", "n\n")
			}, "HH"},
			{"ignored file added", func(t *testing.T, dir string, _ map[string]string) {
				cacheWrite(t, dir, "more.log", "m\n")
			}, "HH"},
			{"comment added to the ignore file", edit(".dockerignore", "secret/\n", "secret/\n# more\n"), "HH"},
			{"copied file changed", edit("keep.txt", "keep", "kept"), "MM"},
			{"logs no longer ignored", edit(".dockerignore", "*.log\n", ""), "MM"},
			{"formerly ignored file changed", edit("debug.log", "log 2", "log 3"), "MM"},
		},
	}, {
		name: "selection",
		files: map[string]string{
			"a.txt":           "a\n",
			"b.md":            "b\n",
			"conf/app.conf":   "app\n",
			"conf/other.conf": "other\n",
			"Dockerfile":      "FROM busybox:latest\nCOPY *.txt /t/\nCOPY conf/app.conf /app.conf\nRUN echo select-case\n",
		},
		changes: []cacheChange{
			{"file the glob does not match changed", edit("b.md", "b", "bb"), "HHH"},
			{"file beside a named source changed", edit("conf/other.conf", "other", "others"), "HHH"},
			{"named source changed", edit("conf/app.conf", "app", "apps"), "HMM"},
			{"file the glob matches changed", edit("a.txt", "a", "aa"), "MMM"},
			{"file the glob now matches added", func(t *testing.T, dir string, _ map[string]string) {
				cacheWrite(t, dir, "c.txt", "c\n")
			}, "MMM"},
		},
	}, {
		name: "shell user workdir",
		files: map[string]string{
			"s.txt": "meta case\n",
			"Dockerfile": "FROM busybox:latest\nCOPY s.txt /s.txt\nSHELL [\"/bin/sh\", \"-c\"]\nUSER nobody\nWORKDIR /tmp\n" +
				"RUN echo \"meta-case $(id -u) $PWD\"\nSHELL [\"/bin/sh\", \"-c\"]\nUSER root\n",
		},
		changes: []cacheChange{
			{"SHELL after the RUN changed", edit("Dockerfile", "-c\"]\nUSER root", "-ec\"]\nUSER root"), "HHH"},
			{"USER after the RUN changed", edit("Dockerfile", "USER root", "USER www"), "HHH"},
			{"SHELL before the RUN changed", edit("Dockerfile", "-c\"]\nUSER nobody", "-ec\"]\nUSER nobody"), "HHM"},
			{"USER before the RUN changed", edit("Dockerfile", "USER nobody", "USER www"), "HMM"},
			{"WORKDIR before the RUN changed", edit("Dockerfile", "WORKDIR /tmp", "WORKDIR /etc"), "HMM"},
		},
	}}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) { c.run(t, e) })
	}
}

// variantBusybox writes busybox:latest made from a copy of the busybox
// binary with bytes appended: same tag, same behaviour, new digest.
func variantBusybox(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("/bin/busybox")
	cacheMust(t, err)
	bin := filepath.Join(dir, "busybox")
	cacheMust(t, os.WriteFile(bin, append(data, []byte("\nvariant\n")...), 0o755))
	out := filepath.Join(dir, "variant.tar")
	cacheMust(t, testutil.WriteBusyboxImage(out, testutil.BusyboxOptions{Busybox: bin, Name: "busybox:latest"}))
	return out
}

func TestCacheBaseImageChange(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"f":          "base case\n",
		"Dockerfile": "FROM busybox:latest\nCOPY f /f\nRUN echo base-case > /b\nWORKDIR /w\nENV X=1\n",
	})
	e.wantStates(t, "first build", dir, "MMM")
	e.wantStates(t, "unchanged rebuild", dir, "HHH")
	e.mustRun("load", "-i", variantBusybox(t))
	e.wantStates(t, "base image replaced under the same tag", dir, "MMM")
	e.wantStates(t, "rebuild on the new base", dir, "HHH")
	e.mustRun("load", "-i", busyboxTar(t))
	e.wantStates(t, "original base loaded again", dir, "HHH")
}

func TestCacheNoCache(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"f":          "no-cache case\n",
		"Dockerfile": "FROM busybox:latest\nCOPY f /f\nRUN echo no-cache-case > /n\nWORKDIR /w\n",
	})
	sde := []string{"SOURCE_DATE_EPOCH=0"}
	build := func(flags ...string) result {
		r := e.runEnv(sde, "", append([]string{"build", "--progress", "plain", dir, "-t", "nc:v1"}, flags...)...)
		if r.code != 0 {
			t.Fatalf("build %v: exit %d\n%s", flags, r.code, r.stderr)
		}
		return r
	}
	r1 := build()
	if got := stepStates(r1.stderr); got != "MMM" {
		t.Fatalf("first build: %q\n%s", got, r1.stderr)
	}
	blobs := countBlobs(t, e)
	r2 := build("--no-cache")
	if got := stepStates(r2.stderr); got != "MMM" {
		t.Fatalf("--no-cache: states %q, want every step to run\n%s", got, r2.stderr)
	}
	// The same layers again, stored once: not one blob more.
	if m1, m2 := manifestOf(t, r1.stderr), manifestOf(t, r2.stderr); m1 != m2 {
		t.Fatalf("--no-cache rebuild with SOURCE_DATE_EPOCH=0: manifest %s, first build %s", m2, m1)
	}
	if n := countBlobs(t, e); n != blobs {
		t.Fatalf("--no-cache rebuild of identical layers: %d blobs, before %d", n, blobs)
	}
	if got := stepStates(build().stderr); got != "HHH" {
		t.Fatalf("build after --no-cache: states %q, want all hits", got)
	}
	// A different image (one more LABEL) from a fresh build: only its
	// config and manifest are new blobs.
	cacheEdit(t, dir, "Dockerfile", "WORKDIR /w\n", "WORKDIR /w\nLABEL variant=1\n")
	if got := stepStates(build("--no-cache").stderr); got != "MMM" {
		t.Fatalf("--no-cache with a label: states %q", got)
	}
	if n := countBlobs(t, e); n != blobs+2 {
		t.Fatalf("image with one more label, layers rebuilt: %d blobs, want %d (+config +manifest)", n, blobs+2)
	}
}

func TestCacheNoCacheFilter(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"f": "filter case\n",
		"Dockerfile": "FROM busybox:latest AS deps\nRUN echo deps-filter-case > /deps\n" +
			"FROM busybox:latest AS Build\nCOPY --from=deps /deps /deps\nCOPY f /f\nRUN echo build > /build\n" +
			"FROM build AS final\nRUN echo final > /final\n",
	})
	// Steps in order: deps RUN; Build COPY, COPY, RUN; final RUN.
	e.wantStates(t, "first build", dir, "MMMMM")
	e.wantStates(t, "unchanged rebuild", dir, "HHHHH")
	e.wantStates(t, "--no-cache-filter build", dir, "HMMMH", "--no-cache-filter", "build")
	e.wantStates(t, "--no-cache-filter BUILD (names match case-insensitively)", dir, "HMMMH", "--no-cache-filter", "BUILD")
	e.wantStates(t, "--no-cache-filter deps, final", dir, "MHHHM", "--no-cache-filter", "deps", "--no-cache-filter", "final")
	e.wantStates(t, "--no-cache-filter of an unknown stage", dir, "HHHHH", "--no-cache-filter", "nosuchstage")
	e.wantStates(t, "rebuild without filter", dir, "HHHHH")
	e.wantStates(t, "--no-cache", dir, "MMMMM", "--no-cache")
}

// countBlobs counts the files of the store's blob dir.
func countBlobs(t testing.TB, e *env) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.root, "blobs", "sha256"))
	cacheMust(t, err)
	return len(ents)
}

// A fully cached build opens records and nothing else: with every snapshot
// gone, a rebuild that hits every step must not unpack a single layer.
func TestCacheHitUnpacksNothing(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{
		"app/main.sh": "echo hi\n",
		"Dockerfile": "FROM busybox:latest AS src\nCOPY app/ /app/\nRUN echo unpack-case > /app/gen\n" +
			"FROM busybox:latest\nWORKDIR /srv\nCOPY --from=src /app/ /srv/\nCOPY app/main.sh /srv/again.sh\nRUN cat /srv/gen\n",
	})
	e.wantStates(t, "first build", dir, "MMMMMM")
	snaps := filepath.Join(e.root, "snapshots")
	cacheMust(t, os.RemoveAll(snaps))
	e.wantStates(t, "rebuild without snapshots", dir, "HHHHHH")
	ents, err := os.ReadDir(snaps)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, ent := range ents {
		if ent.Name() != "by-chain" && ent.Name() != "active" && ent.Name() != "tmp" && ent.Name() != "format" {
			t.Errorf("a fully cached build unpacked a layer: snapshots/%s exists", ent.Name())
		}
	}
	if sub, _ := os.ReadDir(filepath.Join(snaps, "by-chain")); len(sub) > 0 {
		t.Errorf("a fully cached build committed %d snapshots", len(sub))
	}
}
